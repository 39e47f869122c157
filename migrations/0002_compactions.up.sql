-- Compactions: the merge of every rollup of a service and direction over a
-- minute or an hour (period_s 60 or 3600), built by queries on first use.
-- A compaction is current while its gen equals the period's generation in
-- rollup_generations, which every rollup write bumps.

CREATE TABLE rollup_generations (
    service  text        NOT NULL,
    period_s integer     NOT NULL,
    start    timestamptz NOT NULL,
    gen      bigint      NOT NULL,
    PRIMARY KEY (service, period_s, start)
);
CREATE INDEX rollup_generations_start ON rollup_generations (start);

CREATE TABLE rollup_compactions (
    service   text        NOT NULL,
    direction text        NOT NULL,
    period_s  integer     NOT NULL,
    start     timestamptz NOT NULL,
    gen       bigint      NOT NULL,
    count     bigint      NOT NULL,
    total     text        NOT NULL,
    upstream  text        NOT NULL,
    overhead  text        NOT NULL,
    PRIMARY KEY (service, period_s, start, direction)
);
CREATE INDEX rollup_compactions_start ON rollup_compactions (start);
