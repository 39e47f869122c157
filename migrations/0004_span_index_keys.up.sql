-- Cheaper span index keys: the span ingest spent most of its server time
-- maintaining the three secondary indexes of 0001, whose every comparison
-- went through a text column (service, or the 36-character request ID).
-- The same lookups, on keys that compare as integers:
--
-- - service plus time and service plus duration: the service as
--   hashtext(service), an int4, first. A query names both
--   hashtext(service) = hashtext($1), which the index finds, and
--   service = $1, which settles the rare two services of one hash.
--   hashtext is the hash PostgreSQL's own hash indexes store, so it is the
--   same across releases and pg_upgrade.
-- - duration: by service and duration bucket, duration_ns >> 16 (65.5 µs).
--   Durations are random, so an index on exact durations takes each span
--   at a random place; with buckets, a new span's entry goes after the
--   others of its bucket (equal keys are ordered by heap position), in one
--   of fewer hot pages, and equal keys share a posting list. A query names
--   both the bucket, which the index searches, and the exact bound, which
--   the rows found are checked against: d >= m implies
--   (d >> 16) >= (m >> 16), so the answer is the same, and at most 65.5 µs
--   of durations beyond a bound are read and dropped. (2^20 ns buckets were
--   as fast to write, but a bound then read up to 1 ms of durations more:
--   half as many rows again for "over 49 ms" among durations up to 50 ms.)
-- - request ID: a hash index (equality is the only lookup; it stores a
--   4-byte hash per span instead of the whole ID).
--
-- The new indexes are built on every stored partition before the old ones
-- are dropped: span reads go on during the builds, span writes wait (the
-- builds take a SHARE lock, the drops an ACCESS EXCLUSIVE one, held
-- briefly till the commit). On a large store, run it when ingest can wait.
CREATE INDEX spans_request_id_0004 ON spans USING hash (request_id) WHERE request_id <> '';
CREATE INDEX spans_service_start_0004 ON spans ((hashtext(service)), start_ns);
CREATE INDEX spans_service_duration_0004 ON spans ((hashtext(service)), (duration_ns >> 16));
DROP INDEX spans_request_id, spans_service_start, spans_service_duration;
ALTER INDEX spans_request_id_0004 RENAME TO spans_request_id;
ALTER INDEX spans_service_start_0004 RENAME TO spans_service_start;
ALTER INDEX spans_service_duration_0004 RENAME TO spans_service_duration;
