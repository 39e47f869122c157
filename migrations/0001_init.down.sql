-- Dropping a partitioned table drops its partitions.
DROP TABLE IF EXISTS edges;
DROP TABLE IF EXISTS services;
DROP TABLE IF EXISTS rollups;
DROP TABLE IF EXISTS operations;
DROP TABLE IF EXISTS spans;
