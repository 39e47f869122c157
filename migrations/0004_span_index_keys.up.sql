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
-- - duration: by service and duration bucket, duration_ns >> 20 (about
--   1 ms). Durations are random, so an index on exact durations takes each
--   span at a random place; with buckets, a new span's entry goes after the
--   others of its bucket (equal keys are ordered by heap position), in one
--   of a few hot pages, and equal keys share a posting list. A query names
--   both the bucket, which the index searches, and the exact bound, which
--   the rows found are checked against: d >= m implies
--   (d >> 20) >= (m >> 20), so the answer is the same.
-- - request ID: a hash index (equality is the only lookup; it stores a
--   4-byte hash per span instead of the whole ID).
--
-- The indexes are rebuilt on every stored partition under a lock that
-- holds span writes back: on a large store, run it when ingest can wait.
DROP INDEX spans_request_id;
CREATE INDEX spans_request_id ON spans USING hash (request_id) WHERE request_id <> '';
DROP INDEX spans_service_start;
CREATE INDEX spans_service_start ON spans ((hashtext(service)), start_ns);
DROP INDEX spans_service_duration;
CREATE INDEX spans_service_duration ON spans ((hashtext(service)), (duration_ns >> 20));
