-- The span indexes of 0001.
DROP INDEX spans_request_id;
CREATE INDEX spans_request_id ON spans (request_id) WHERE request_id <> '';
DROP INDEX spans_service_start;
CREATE INDEX spans_service_start ON spans (service, start_ns);
DROP INDEX spans_service_duration;
CREATE INDEX spans_service_duration ON spans (service, duration_ns);
