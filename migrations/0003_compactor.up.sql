-- Compactions built in the background as periods close (store/rollup
-- Compactor, run by the collector), and request counts per status class in
-- compactions, so that /api/v1/latency reads no rollup of a closed period.
--
-- rollup_generations.built is the generation whose compactions are stored;
-- a period whose gen differs has rollups its compactions lack ("dirty"), and
-- the partial index finds those without scanning every period.
--
-- Compactions are a cache of merges: the ones built before this version lack
-- the new columns, so they are dropped and built again (every period starts
-- dirty, built 0).
TRUNCATE rollup_compactions;
ALTER TABLE rollup_compactions ADD COLUMN rollups bigint NOT NULL DEFAULT 0;
ALTER TABLE rollup_compactions ADD COLUMN by_class text NOT NULL DEFAULT '';
ALTER TABLE rollup_generations ADD COLUMN built bigint NOT NULL DEFAULT 0;
CREATE INDEX rollup_generations_dirty ON rollup_generations (start) WHERE built <> gen;
