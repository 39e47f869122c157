package storeexporter

import (
	"bytes"
	"context"
	"encoding/binary"
	"reflect"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"

	"github.com/meshlens/meshlens/collector/internal/spans"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// testTraces is n spans of service svc, client spans to peer "db", the
// first with an authorization header, and one span without IDs.
func testTraces(svc string, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", svc)
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for i := range n {
		sp := ss.AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		binary.BigEndian.PutUint64(tid[8:], uint64(i/4+1))
		binary.BigEndian.PutUint64(sid[:], uint64(i+1))
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i)*time.Millisecond + time.Microsecond)))
		sp.Attributes().PutStr("peer.service", "db")
		if i == 0 {
			sp.Attributes().PutStr("http.request.header.authorization", "Bearer secret")
		}
	}
	ss.AppendEmpty().SetName("no ids")
	return td
}

func decodeRows(t *testing.T, r *spanRequest) []store.Span {
	t.Helper()
	out, err := spanrows.Decode(r.rows, r.n)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != r.n {
		t.Fatalf("%d rows decoded, request says %d", len(out), r.n)
	}
	return out
}

func TestSpanEncodingRoundTrip(t *testing.T) {
	red := spans.NewRedactor(spans.DefaultRedact)
	enc := spanEncoding{redactor: red}
	r := newSpanRequest(testTraces("web", 10), red)
	if r.n != 10 || r.invalid != 1 || len(r.services) != 2 || len(r.edges) != 1 {
		t.Fatalf("request: %d rows, %d invalid, services %v, edges %v", r.n, r.invalid, r.services, r.edges)
	}
	want := decodeRows(t, r)
	if _, ok := want[0].Attributes["http.request.header.authorization"]; ok {
		t.Error("an authorization header reached the queued rows")
	}
	b, err := enc.Marshal(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := enc.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	g := got.(*spanRequest)
	if g.n != r.n || g.invalid != r.invalid || !reflect.DeepEqual(g.services, r.services) || !reflect.DeepEqual(g.edges, r.edges) {
		t.Errorf("round trip: %+v\nwant %+v", g, r)
	}
	if !reflect.DeepEqual(decodeRows(t, g), want) {
		t.Error("rows changed in the round trip")
	}
	wantSum := spanrows.Summary{Days: []int64{spanrows.Day(time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC).UnixNano())},
		Ops: []spanrows.Op{{Service: "web", Name: "op", Kind: "client"}}}
	if !reflect.DeepEqual(r.sum, wantSum) || !reflect.DeepEqual(g.sum, wantSum) {
		t.Errorf("summary %+v, after the round trip %+v, want %+v", r.sum, g.sum, wantSum)
	}
	for cut := len(spanMagic); cut < len(b); cut++ {
		if _, _, err := enc.Unmarshal(b[:cut]); err == nil {
			t.Fatalf("a request cut to %d of %d bytes decodes", cut, len(b))
		}
	}
	// Encoded in place or copied, the bytes are the same.
	if !r.framed() {
		t.Fatal("a fresh request is not framed")
	}
	copied := *r
	copied.frame = nil
	c, err := enc.Marshal(context.Background(), &copied)
	if err != nil || !bytes.Equal(c, b) {
		t.Errorf("encoded from a copy: %v, equal %v", err, bytes.Equal(c, b))
	}
}

// A queue written by a build that queued ptrace.Traces is read on.
func TestSpanEncodingReadsQueuedTraces(t *testing.T) {
	red := spans.NewRedactor(spans.DefaultRedact)
	enc := spanEncoding{redactor: red}
	td := testTraces("web", 7)
	old, err := pdatareq.MarshalTraces(context.Background(), td)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	want := decodeRows(t, newSpanRequest(td, red))
	for name, b := range map[string][]byte{"with context": old, "plain": plain} {
		_, got, err := enc.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if g := got.(*spanRequest); g.invalid != 1 || !reflect.DeepEqual(decodeRows(t, g), want) {
			t.Errorf("%s: %d invalid, rows differ", name, g.invalid)
		}
	}
	// Version 1 (no summary): the rows are read on, the summary left to the
	// store. Built from version 2 without its summary's two zero counts.
	noSum := *newSpanRequest(td, red)
	noSum.frame, noSum.sum = nil, spanrows.Summary{}
	v2, err := enc.Marshal(context.Background(), &noSum)
	if err != nil {
		t.Fatal(err)
	}
	rest := binary.LittleEndian.Uint32(v2[len(v2)-4:])
	v1 := append(slices.Clone(spanMagicV1), v2[len(spanMagic):len(v2)-6]...)
	v1 = binary.LittleEndian.AppendUint32(v1, rest-2)
	_, got, err := enc.Unmarshal(v1)
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if g := got.(*spanRequest); g.sum.Known() || g.invalid != 1 || len(g.services) != 2 || !reflect.DeepEqual(decodeRows(t, g), want) {
		t.Errorf("version 1: summary %+v, %d invalid, services %v, or rows differ", g.sum, g.invalid, g.services)
	}
	if _, _, err := enc.Unmarshal([]byte("\x00MLS\x09nonsense")); err == nil {
		t.Error("an unknown format version decodes")
	}
}

func TestSpanRequestMergeSplit(t *testing.T) {
	red := spans.NewRedactor(spans.DefaultRedact)
	all := append(decodeRows(t, newSpanRequest(testTraces("a", 6), red)), decodeRows(t, newSpanRequest(testTraces("b", 9), red))...)
	for _, tc := range []struct {
		name  string
		szt   exporterhelper.RequestSizerType
		max   int
		parts []int
	}{
		{"no limit", exporterhelper.RequestSizerTypeItems, 0, []int{15}},
		{"fits", exporterhelper.RequestSizerTypeItems, 15, []int{15}},
		{"items", exporterhelper.RequestSizerTypeItems, 4, []int{4, 4, 4, 3}},
		{"bytes", exporterhelper.RequestSizerTypeBytes, 400, nil},
		{"a row over the byte limit", exporterhelper.RequestSizerTypeBytes, 10, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r1, r2 := newSpanRequest(testTraces("a", 6), red), newSpanRequest(testTraces("b", 9), red)
			out, err := r1.MergeSplit(context.Background(), tc.max, tc.szt, r2)
			if err != nil {
				t.Fatal(err)
			}
			var got []store.Span
			var sizes []int
			invalid := 0
			for i, o := range out {
				r := o.(*spanRequest)
				sizes = append(sizes, r.n)
				invalid += r.invalid
				got = append(got, decodeRows(t, r)...)
				if tc.szt == exporterhelper.RequestSizerTypeBytes && tc.max > 10 && len(r.rows) > tc.max {
					t.Errorf("part %d: %d bytes over %d", i, len(r.rows), tc.max)
				}
				if i < len(out)-1 && (len(r.services) > 0 || len(r.edges) > 0) {
					t.Errorf("part %d carries discoveries; only the last should", i)
				}
			}
			if tc.parts != nil && !reflect.DeepEqual(sizes, tc.parts) {
				t.Errorf("parts of %v rows, want %v", sizes, tc.parts)
			}
			if !reflect.DeepEqual(got, all) || invalid != 2 {
				t.Errorf("rows after merge and split: %d (invalid %d), want the %d of both in order (invalid 2)", len(got), invalid, len(all))
			}
			for i, o := range out {
				if ops := o.(*spanRequest).sum.Ops; len(ops) != 2 || ops[0].Service != "a" || ops[1].Service != "b" {
					t.Errorf("part %d: operations %v, want both services' (a summary goes whole to every part)", i, ops)
				}
			}
			last := out[len(out)-1].(*spanRequest)
			if len(last.services) != 3 || len(last.edges) != 2 {
				t.Errorf("discoveries of both: %v %v", last.services, last.edges)
			}
		})
	}
	var other xexporterhelper.Request = &spanRequest{}
	if _, err := newSpanRequest(testTraces("a", 1), red).MergeSplit(context.Background(), 0, exporterhelper.RequestSizerTypeItems, other); err != nil {
		t.Errorf("merging an empty request: %v", err)
	}
}

// The traces exporter reads spans and keeps none (they are rows before
// ConsumeTraces returns), even with a batching queue, where exporterhelper
// would say it mutates them.
func TestTracesExporterDoesNotMutate(t *testing.T) {
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	q := cfg.QueueConfig.Get()
	q.Batch = configoptional.Some(exporterhelper.BatchConfig{FlushTimeout: time.Second, Sizer: exporterhelper.RequestSizerTypeItems, MinSize: 10})
	set := exporter.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	tr, err := f.CreateTraces(context.Background(), set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Capabilities().MutatesData {
		t.Error("the traces exporter says it mutates spans")
	}
}

// A batch's buffer serves the next batch once the first is written, and
// the rows of each batch are its own.
func TestSpanRequestBufferReuse(t *testing.T) {
	red := spans.NewRedactor(spans.DefaultRedact)
	batch := func(a, b string) (*spanRequest, []store.Span) {
		r1, r2 := newSpanRequest(testTraces(a, 5), red), newSpanRequest(testTraces(b, 7), red)
		want := append(decodeRows(t, r1), decodeRows(t, r2)...)
		out, err := r1.MergeSplit(context.Background(), 100, exporterhelper.RequestSizerTypeItems, r2)
		if err != nil || len(out) != 1 {
			t.Fatalf("merge: %v, %d parts", err, len(out))
		}
		return out[0].(*spanRequest), want
	}
	first, want := batch("a", "b")
	if first.buf == nil || cap(first.rows) < len(first.rows)/12*100 {
		t.Fatalf("a merged batch should own a buffer for a full batch: %v, cap %d", first.buf != nil, cap(first.rows))
	}
	if !reflect.DeepEqual(decodeRows(t, first), want) {
		t.Fatal("first batch rows")
	}
	buf := first.buf
	first.release()
	second, want := batch("c", "d")
	if second.buf != buf {
		t.Error("the released buffer was not reused")
	}
	if !reflect.DeepEqual(decodeRows(t, second), want) {
		t.Fatal("second batch rows")
	}
	// Split parts share the buffer: none of them gives it back.
	out, err := second.MergeSplit(context.Background(), 5, exporterhelper.RequestSizerTypeItems, nil)
	if err != nil || len(out) != 3 {
		t.Fatalf("split: %v, %d parts", err, len(out))
	}
	for _, o := range out {
		if o.(*spanRequest).buf != nil {
			t.Error("a split part owns the shared buffer")
		}
	}
}
