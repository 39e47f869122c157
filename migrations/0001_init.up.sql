-- meshlens schema v1: spans, operations, per-minute HDR rollups, services, edges.
-- Spans and rollups are partitioned by day; the store creates the daily
-- partitions (spans_pYYYYMMDD, rollups_pYYYYMMDD) ahead of need and drops
-- whole old ones for retention.
-- Times are Unix nanoseconds (bigint) so spans keep OTLP's precision; rollup
-- minutes are timestamptz.

CREATE TABLE spans (
    trace_id       text   NOT NULL,
    span_id        text   NOT NULL,
    parent_span_id text   NOT NULL,
    service        text   NOT NULL,
    name           text   NOT NULL,
    kind           text   NOT NULL,
    start_ns       bigint NOT NULL,
    duration_ns    bigint NOT NULL,
    status_code    text   NOT NULL,
    status_msg     text   NOT NULL,
    request_id     text   NOT NULL,
    attributes     jsonb,
    -- a span sent twice is stored once (the partition key must be part of
    -- every unique index; a span's start does not change between sends)
    PRIMARY KEY (trace_id, span_id, start_ns)
) PARTITION BY RANGE (start_ns);

-- lookup by request ID
CREATE INDEX spans_request_id ON spans (request_id) WHERE request_id <> '';
-- trace search: service plus time, service plus duration
CREATE INDEX spans_service_start ON spans (service, start_ns);
CREATE INDEX spans_service_duration ON spans (service, duration_ns);

CREATE TABLE operations (
    service text NOT NULL,
    name    text NOT NULL,
    kind    text NOT NULL,
    PRIMARY KEY (service, name, kind)
);

CREATE TABLE rollups (
    minute       timestamptz NOT NULL,
    service      text        NOT NULL,
    direction    text        NOT NULL,
    peer         text        NOT NULL,
    route        text        NOT NULL,
    method       text        NOT NULL,
    status_class text        NOT NULL,
    source       text        NOT NULL,
    count        bigint      NOT NULL,
    -- HdrHistogram V2 compressed encodings, base64, microseconds
    total        text        NOT NULL,
    upstream     text        NOT NULL,
    overhead     text        NOT NULL,
    PRIMARY KEY (service, minute, direction, peer, route, method, status_class, source)
) PARTITION BY RANGE (minute);

CREATE TABLE services (
    name          text    PRIMARY KEY,
    first_seen_ns bigint  NOT NULL,
    last_seen_ns  bigint  NOT NULL,
    has_proxy     boolean NOT NULL
);

CREATE TABLE edges (
    caller        text   NOT NULL,
    callee        text   NOT NULL,
    first_seen_ns bigint NOT NULL,
    last_seen_ns  bigint NOT NULL,
    PRIMARY KEY (caller, callee)
);
