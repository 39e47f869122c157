DROP TABLE IF EXISTS rollup_compactions;
DROP TABLE IF EXISTS rollup_generations;
