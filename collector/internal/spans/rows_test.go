package spans

import (
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// ConvertRows and Convert say the same: the rows decode to Convert's spans.
func TestConvertRowsMatchesConvert(t *testing.T) {
	td := benchTraces(250)
	// The cases of TestConvert: redaction, a request ID in a slice, a peer,
	// no end time, no service, no IDs, a double and a bool, odd text.
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "web")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)
	c := ss.AppendEmpty()
	c.SetTraceID(pcommon.TraceID{1})
	c.SetSpanID(pcommon.SpanID{2})
	c.SetParentSpanID(pcommon.SpanID{3})
	c.SetKind(ptrace.SpanKindClient)
	c.SetName("GET /users/{id}")
	c.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	c.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(1500 * time.Microsecond)))
	c.Status().SetCode(ptrace.StatusCodeError)
	c.Status().SetMessage("upstream \"failed\"\n")
	c.Attributes().PutStr("meshlens.peer.service", "users")
	c.Attributes().PutEmptySlice("http.request.header.x-request-id").AppendEmpty().SetStr("req-9")
	c.Attributes().PutStr("http.request.header.Cookie", "secret")
	c.Attributes().PutInt("http.response.status_code", -503)
	c.Attributes().PutDouble("ratio", 0.25)
	c.Attributes().PutBool("ok", true)
	c.Attributes().PutStr("ünï", "\x01\t✓")
	s := ss.AppendEmpty()
	s.SetTraceID(pcommon.TraceID{1})
	s.SetSpanID(pcommon.SpanID{4})
	s.SetKind(ptrace.SpanKindServer)
	s.SetName("bad name\xff")
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(-time.Second)))
	s.Attributes().PutStr("peer.service", "mobile")
	ss.AppendEmpty().SetSpanID(pcommon.SpanID{5})
	anon := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	anon.SetTraceID(pcommon.TraceID{7})
	anon.SetSpanID(pcommon.SpanID{7})

	red := NewRedactor(DefaultRedact)
	want := Convert(td, red)
	got := ConvertRows(td, red, nil)
	if got.N != len(want.Spans) || got.Invalid != want.Invalid || got.Invalid != 1 {
		t.Fatalf("%d rows, %d invalid; Convert: %d spans, %d invalid", got.N, got.Invalid, len(want.Spans), want.Invalid)
	}
	spans, err := spanrows.Decode(got.Data, got.N)
	if err != nil {
		t.Fatal(err)
	}
	for i := range spans {
		w := want.Spans[i]
		if len(w.Attributes) == 0 {
			w.Attributes = nil
		}
		w.Name = spanrows.Clean(w.Name) // Convert leaves text to the store to clean
		if !reflect.DeepEqual(spans[i], w) {
			t.Fatalf("span %d:\n rows    %+v\n Convert %+v", i, spans[i], w)
		}
	}
	sortDiscoveries(got.Services, got.Edges)
	sortDiscoveries(want.Services, want.Edges)
	if !reflect.DeepEqual(got.Services, want.Services) || !reflect.DeepEqual(got.Edges, want.Edges) {
		t.Errorf("discoveries:\n rows    %+v %+v\n Convert %+v %+v", got.Services, got.Edges, want.Services, want.Edges)
	}
	// The summary is what the store would read off the rows, in the order
	// met: the cleaned names, as stored.
	sum, n, err := spanrows.Summarize(got.Data)
	if err != nil || n != got.N || !reflect.DeepEqual(got.Summary, sum) {
		t.Errorf("summary %+v; read off the rows (%d, %v): %+v", got.Summary, n, err, sum)
	}
	wantDays := []int64{spanrows.Day(time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC).UnixNano()), spanrows.Day(start.UnixNano()), 0}
	if !reflect.DeepEqual(got.Summary.Days, wantDays) {
		t.Errorf("days %v, want %v (benchTraces', this test's, and the span without times)", got.Summary.Days, wantDays)
	}
	if !slices.Contains(got.Summary.Ops, spanrows.Op{Service: "web", Name: "bad name\uFFFD", Kind: "server"}) {
		t.Errorf("operations %+v: the odd name is not as stored", got.Summary.Ops)
	}
	if got := spans[len(spans)-3].Attributes; got["ratio"] != "0.25" || got["ok"] != "true" || got["http.response.status_code"] != "-503" {
		t.Errorf("non-string attributes: %v", got)
	}
}

func sortDiscoveries(ss []store.Service, es []store.Edge) {
	sort.Slice(ss, func(i, j int) bool { return ss[i].Name < ss[j].Name })
	sort.Slice(es, func(i, j int) bool { return es[i].Caller+"\x00"+es[i].Callee < es[j].Caller+"\x00"+es[j].Callee })
}

// BenchmarkConvertRows converts a queue batch of 1,000 spans (one op), as
// BenchmarkConvert, into rows.
func BenchmarkConvertRows(b *testing.B) {
	td := benchTraces(1000)
	red := NewRedactor(DefaultRedact)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		res := ConvertRows(td, red, buf[:0])
		if res.N != 1000 {
			b.Fatal(res.N)
		}
		buf = res.Data
	}
}
