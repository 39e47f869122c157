package spans

import (
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// benchTraces builds n spans the way bench/collector/load sends them
// (traces of 10, three attributes), in requests of 100 spans each merged
// into one payload, as the store exporter's queue batches them.
func benchTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	now := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	var tid pcommon.TraceID
	var parent pcommon.SpanID
	for i := 0; i < n; i++ {
		if i%100 == 0 {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "bench")
			rs.ScopeSpans().AppendEmpty()
		}
		ss := td.ResourceSpans().At(td.ResourceSpans().Len() - 1).ScopeSpans().At(0).Spans()
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(sid[:], uint64(i+1)*0x9e3779b97f4a7c15)
		if i%10 == 0 {
			binary.BigEndian.PutUint64(tid[:8], 42)
			binary.BigEndian.PutUint64(tid[8:], uint64(i))
			parent = sid
		}
		sp := ss.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		if i%10 != 0 {
			sp.SetParentSpanID(parent)
		}
		sp.SetName("bench-op")
		sp.SetKind(ptrace.SpanKindServer)
		sp.Attributes().PutStr("http.request.method", "GET")
		sp.Attributes().PutStr("url.path", "/bench")
		sp.Attributes().PutInt("http.response.status_code", 200)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return td
}

// BenchmarkConvert converts a queue batch of 1,000 spans (one op).
func BenchmarkConvert(b *testing.B) {
	td := benchTraces(1000)
	red := NewRedactor(DefaultRedact)
	b.ReportAllocs()
	for b.Loop() {
		res := Convert(td, red)
		if len(res.Spans) != 1000 {
			b.Fatal(len(res.Spans))
		}
	}
}

func BenchmarkRedacted(b *testing.B) {
	red := NewRedactor(DefaultRedact)
	keys := []string{"http.request.method", "url.path", "http.response.status_code", "http.request.header.authorization", "server.address", "network.protocol.version"}
	b.ReportAllocs()
	for b.Loop() {
		for _, k := range keys {
			red.Redacted(k)
		}
	}
}
