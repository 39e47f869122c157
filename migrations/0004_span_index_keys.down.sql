-- The span indexes of 0001, built before the ones of 0004 are dropped (see
-- the up file).
CREATE INDEX spans_request_id_0001 ON spans (request_id) WHERE request_id <> '';
CREATE INDEX spans_service_start_0001 ON spans (service, start_ns);
CREATE INDEX spans_service_duration_0001 ON spans (service, duration_ns);
DROP INDEX spans_request_id, spans_service_start, spans_service_duration;
ALTER INDEX spans_request_id_0001 RENAME TO spans_request_id;
ALTER INDEX spans_service_start_0001 RENAME TO spans_service_start;
ALTER INDEX spans_service_duration_0001 RENAME TO spans_service_duration;
