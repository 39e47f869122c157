package analyticsexporter

import (
	"context"
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkConsumeTraces is the analytics exporter's share of a span
// request as bench/collector/run.sh sends them: 100 server spans of one hop
// key, traces of 10.
//
//	go test -run '^$' -bench ConsumeTraces -benchmem ./collector/analyticsexporter/
func BenchmarkConsumeTraces(b *testing.B) {
	cfg := createDefaultConfig().(*Config)
	set := exporter.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	a := newAnalytics(set, cfg, nil, func() {})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "bench")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	var tid pcommon.TraceID
	for i := range 100 {
		if i%10 == 0 {
			binary.BigEndian.PutUint64(tid[8:], uint64(i+1))
		}
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
		sp.SetName("bench-op")
		sp.SetKind(ptrace.SpanKindServer)
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/bench")
		sp.Attributes().PutInt("http.response.status_code", 200)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := a.consumeTraces(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*spans.Len()), "ns/span")
}
