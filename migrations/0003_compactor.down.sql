DROP INDEX IF EXISTS rollup_generations_dirty;
ALTER TABLE rollup_generations DROP COLUMN IF EXISTS built;
ALTER TABLE rollup_compactions DROP COLUMN IF EXISTS by_class;
ALTER TABLE rollup_compactions DROP COLUMN IF EXISTS rollups;
