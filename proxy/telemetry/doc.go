// Package telemetry turns the data plane's finished requests into HDR
// histograms (flushed to the collector) and OTLP spans. It never blocks
// traffic: what it cannot send in time it drops and counts.
//
// # API for the data plane and cmd/meshproxy
//
//	t, err := telemetry.New(cfg telemetry.Config, service string, reg prometheus.Registerer, logger *slog.Logger)
//	    // cfg is defaulted (Config.Defaults) and validated inside New; reg may be nil.
//	t.Start(ctx context.Context) error       // starts the flush and span-export loops (ctx is not retained)
//	t.ShouldSample(traceID [16]byte) bool    // head sampling for a trace this proxy starts (deterministic on the trace ID)
//	t.Finish(h *telemetry.Hop)               // implements Sink: record, maybe queue a span; never blocks, never allocates
//	t.StatsHandler() http.Handler            // GET /stats: JSON per hop key (the Stats document)
//	t.Stats() telemetry.Stats                // the same figures as a value (for the demo's live print)
//	t.Shutdown(ctx context.Context) error    // final flush of the partial interval and queued spans, bounded by ctx
//	t.Instance() string                      // the random instance ID sent with every histogram batch
//
// New registers the package's Prometheus collectors into reg (names below).
//
// # What the data plane must do
//
//   - Fill Hop.Key with a bounded vocabulary: Route the matched route template
//     (not the raw path), Method one of the known HTTP methods (anything else
//     as "_OTHER"), StatusClass via model.StatusClass or, for gRPC,
//     model.GRPCStatusClass. Routes past Config.MaxRoutesPerService per
//     service are folded into model.OtherRoute here, and peers past 256 per
//     service and direction into "unknown" (a caller names itself inbound).
//   - Set Hop.Sampled: the incoming traceparent's sampled flag when the trace
//     is continued, ShouldSample(traceID) when this proxy starts the trace.
//     With sampling_ratio 0 no span is exported at all, whatever the flag.
//   - Hop's strings are copied by value into the span queue for sampled hops:
//     they must be ordinary immutable Go strings, not unsafe views of reused
//     buffers.
//
// # Histograms
//
// Every hop is recorded (whatever the sampling) in three HDR histograms per
// hop key, values in microseconds: total, upstream and overhead (total −
// upstream per request). Upstream and overhead count only the requests an
// upstream answered (Hop.Upstream > 0); total counts all of them. Every
// Config.FlushInterval the interval histograms are rotated and queued as one
// model.Interval (empty intervals included, so seq has no gaps) and sent as
// docs/histogram-wire.md describes. Unsent intervals wait in a backlog of
// Backlog/FlushInterval intervals, the oldest dropped first and counted.
//
// # Spans
//
// Sampled hops become OTLP spans (SERVER for inbound, CLIENT for outbound),
// encoded directly in OTLP protobuf and POSTed to {collector}/v1/traces in
// batches of up to 512. The queue holds Config.SpanQueueSize spans; past it
// spans are dropped and counted. A failing batch is tried three times, then
// dropped and counted.
//
// Why not the OpenTelemetry SDK: on the request path the SDK's
// tracer.Start/End with these attributes costs 17 allocations (4.3 KB) per
// span and microseconds of CPU, and its OTLP exporter another 50
// allocations per span; queuing a copy of the Hop costs no allocation and
// about as much as the histogram recording, and the field-by-field protobuf
// encoding costs none (BenchmarkFinish, BenchmarkSpanEncode,
// BenchmarkSpanExport against BenchmarkSDKSpan in bench_test.go). The
// output is standard OTLP, checked against the generated OTLP types and the
// collector's pdata (FuzzSpanEncode).
//
// # Memory
//
// An active hop key records into one dense set of three histograms (188 KB
// each with the 1 µs – 1 h, 3-digit geometry: recording stays an array
// increment). At rotation the interval set is encoded, merged into the
// key's cumulative set and reset for reuse; the cumulative set, which
// /stats reads, is sparse (hdr.Packed: a few KB, growing with the buckets
// populated, never with the request count), with the same counts, so its
// percentiles are exact. A key whose whole interval was empty gives its
// dense set back to a small pool (at most two kept) and takes one again on
// its next request. Route and peer folding bound the number of keys.
//
// # Prometheus metrics
//
//	meshproxy_hop_requests_total{service,direction,peer,route,method,status_class}  counter
//	meshproxy_telemetry_dropped_total{signal,reason}     counter  signal: histograms (intervals) | spans
//	meshproxy_telemetry_sent_total{signal}               counter  intervals / spans the collector took
//	meshproxy_telemetry_flush_errors_total{signal,reason} counter reason: network | status_4xx | status_5xx | encode
//	meshproxy_telemetry_backlog_intervals                gauge    histogram intervals waiting to be sent
//	meshproxy_telemetry_span_queue_length                gauge    spans waiting to be exported
//	meshproxy_telemetry_route_folds_total{service}       counter  requests recorded under route "other"
//	meshproxy_telemetry_peer_folds_total{service}        counter  requests recorded under peer "unknown" (past 256 peers)
//	meshproxy_telemetry_clamped_values_total{histogram}  counter  values above the histogram range
package telemetry
