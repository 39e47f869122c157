// Package storetest is the behaviour every store driver must have, as one
// test suite the drivers run against a fresh store each.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Run runs the suite. newStore returns an empty store; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st store.Store)
	}{
		{"SpansRoundTrip", testSpansRoundTrip},
		{"SpansIdempotent", testSpansIdempotent},
		{"SpansManyDays", testSpansManyDays},
		{"TraceNotFound", testTraceNotFound},
		{"RequestID", testRequestID},
		{"FindTraceIDs", testFindTraceIDs},
		{"Operations", testOperations},
		{"RollupsReplace", testRollupsReplace},
		{"RollupFilters", testRollupFilters},
		{"Services", testServices},
		{"Edges", testEdges},
		{"DropBefore", testDropBefore},
		{"RollupQuery", testRollupQuery},
		{"Compactions", testCompactions},
		{"Compactor", testCompactor},
		{"MalformedText", testMalformedText},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, st)
		})
	}
}

// base is a fixed time in the suite's recent past, with nanoseconds, so that
// the drivers' partitions for it are created on demand.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func hexID(n int, width int) string { return fmt.Sprintf("%0*x", width, n) }

// span builds a span of trace tr, span sp.
func span(tr, sp int, service, name string, start time.Time, d time.Duration) store.Span {
	return store.Span{
		TraceID: hexID(tr, 32), SpanID: hexID(sp, 16), Service: service, Name: name, Kind: "server",
		Start: start, Duration: d, StatusCode: "unset",
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testSpansRoundTrip(t *testing.T, st store.Store) {
	c := ctx(t)
	root := store.Span{
		TraceID: hexID(0xabc, 32), SpanID: hexID(1, 16), Service: "frontend", Name: "GET /checkout",
		Kind: "server", Start: base, Duration: 1234567891 * time.Nanosecond, StatusCode: "error",
		StatusMsg: "upstream reset", RequestID: "req-1",
		Attributes: map[string]string{"http.request.method": "GET", "http.response.status_code": "503", "url.path": "/checkout", "ünïcode": "✓ \"quoted\"\n"},
	}
	child := store.Span{
		TraceID: root.TraceID, SpanID: hexID(2, 16), ParentSpanID: root.SpanID, Service: "frontend", Name: "POST",
		Kind: "client", Start: base.Add(1500 * time.Nanosecond), Duration: time.Millisecond, StatusCode: "ok", RequestID: "req-1",
	}
	grandchild := store.Span{
		TraceID: root.TraceID, SpanID: hexID(3, 16), ParentSpanID: child.SpanID, Service: "payments", Name: "POST /pay",
		Kind: "server", Start: base.Add(2 * time.Microsecond), Duration: 999 * time.Microsecond, StatusCode: "ok",
		Attributes: map[string]string{"": "empty key", "k": ""},
	}
	must(t, st.WriteSpans(c, []store.Span{grandchild, root, child}))
	got, err := st.Trace(c, root.TraceID)
	must(t, err)
	want := []store.Span{root, child, grandchild}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("trace:\n got %+v\nwant %+v", got, want)
	}
	for _, s := range got {
		if s.Start.Location() != time.UTC {
			t.Errorf("span %s start %v: not UTC", s.SpanID, s.Start)
		}
	}
}

func testSpansIdempotent(t *testing.T, st store.Store) {
	c := ctx(t)
	var batch []store.Span
	for i := range 50 {
		batch = append(batch, span(i/5+1, i+1, "svc", "op", base.Add(time.Duration(i)*time.Millisecond), time.Millisecond))
	}
	must(t, st.WriteSpans(c, batch))
	// Sent again, whole and overlapping, and duplicated inside one batch.
	must(t, st.WriteSpans(c, batch))
	must(t, st.WriteSpans(c, append(batch[10:20:20], batch[15:30]...)))
	must(t, st.WriteSpans(c, nil))
	n := 0
	for tr := 1; tr <= 10; tr++ {
		got, err := st.Trace(c, hexID(tr, 32))
		must(t, err)
		if len(got) != 5 {
			t.Errorf("trace %d: %d spans, want 5", tr, len(got))
		}
		n += len(got)
	}
	if n != 50 {
		t.Fatalf("%d spans stored, want 50", n)
	}
}

func testSpansManyDays(t *testing.T, st store.Store) {
	c := ctx(t)
	var batch []store.Span
	for d := range 5 {
		batch = append(batch, span(d+1, 1, "svc", "op", base.AddDate(0, 0, -d), time.Second))
	}
	// An old span and one from the far future still land.
	batch = append(batch, span(100, 1, "svc", "op", time.Date(2001, 1, 1, 0, 0, 0, 1, time.UTC), time.Second))
	batch = append(batch, span(101, 1, "svc", "op", time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC), time.Second))
	must(t, st.WriteSpans(c, batch))
	for _, s := range batch {
		got, err := st.Trace(c, s.TraceID)
		must(t, err)
		if len(got) != 1 || !got[0].Start.Equal(s.Start) {
			t.Errorf("trace %s: got %+v", s.TraceID, got)
		}
	}
}

func testTraceNotFound(t *testing.T, st store.Store) {
	c := ctx(t)
	if _, err := st.Trace(c, hexID(404, 32)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Trace of an unknown id: err %v, want ErrNotFound", err)
	}
	if _, err := st.TraceIDByRequestID(c, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TraceIDByRequestID of an unknown id: err %v, want ErrNotFound", err)
	}
	if _, err := st.TraceIDByRequestID(c, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TraceIDByRequestID of the empty id: err %v, want ErrNotFound", err)
	}
	if ids, err := st.FindTraceIDs(c, store.TraceQuery{Service: "nobody"}); err != nil || len(ids) != 0 {
		t.Errorf("FindTraceIDs of an unknown service: %v, %v", ids, err)
	}
	if ops, err := st.Operations(c, "nobody"); err != nil || len(ops) != 0 {
		t.Errorf("Operations of an unknown service: %v, %v", ops, err)
	}
	if r, err := st.Rollups(c, store.RollupFilter{}); err != nil || len(r) != 0 {
		t.Errorf("Rollups of an empty store: %v, %v", r, err)
	}
}

func testRequestID(t *testing.T, st store.Store) {
	c := ctx(t)
	a := span(1, 1, "a", "op", base, time.Millisecond)
	a.RequestID = "r-1"
	b := span(1, 2, "b", "op", base.Add(time.Millisecond), time.Millisecond)
	b.RequestID = "r-1"
	other := span(2, 1, "a", "op", base, time.Millisecond)
	other.RequestID = "r-2"
	must(t, st.WriteSpans(c, []store.Span{a, b, other}))
	for rid, want := range map[string]string{"r-1": a.TraceID, "r-2": other.TraceID} {
		got, err := st.TraceIDByRequestID(c, rid)
		if err != nil || got != want {
			t.Errorf("TraceIDByRequestID(%q) = %q, %v; want %q", rid, got, err, want)
		}
	}
}

func testFindTraceIDs(t *testing.T, st store.Store) {
	c := ctx(t)
	// Trace i (1..20) has a root span of service "front" starting i seconds
	// after base lasting i ms, and a child span of "back".
	var spans []store.Span
	for i := 1; i <= 20; i++ {
		root := span(i, 1, "front", "GET /a", base.Add(time.Duration(i)*time.Second), time.Duration(i)*time.Millisecond)
		if i%2 == 0 {
			root.Name = "GET /b"
		}
		root.Attributes = map[string]string{"parity": []string{"even", "odd"}[i%2], "id": fmt.Sprint(i)}
		child := span(i, 2, "back", "query", root.Start.Add(time.Microsecond), time.Microsecond)
		child.Attributes = map[string]string{"db": "pg"}
		spans = append(spans, root, child)
	}
	must(t, st.WriteSpans(c, spans))
	ids := func(ns ...int) []string {
		var out []string
		for _, n := range ns {
			out = append(out, hexID(n, 32))
		}
		return out
	}
	seq := func(from, to int) []int { // descending from..to
		var out []int
		for i := from; i >= to; i-- {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		name string
		q    store.TraceQuery
		want []string
	}{
		{"service, newest first", store.TraceQuery{Service: "front"}, ids(seq(20, 1)...)},
		{"limit", store.TraceQuery{Service: "front", Limit: 3}, ids(20, 19, 18)},
		{"operation", store.TraceQuery{Service: "front", Operation: "GET /a", Limit: 3}, ids(19, 17, 15)},
		{"tag", store.TraceQuery{Service: "front", Tags: map[string]string{"parity": "even"}, Limit: 2}, ids(20, 18)},
		{"two tags", store.TraceQuery{Service: "front", Tags: map[string]string{"parity": "odd", "id": "7"}}, ids(7)},
		{"tag on another span does not count", store.TraceQuery{Service: "front", Tags: map[string]string{"db": "pg"}}, nil},
		{"unknown tag value", store.TraceQuery{Service: "front", Tags: map[string]string{"parity": "none"}}, nil},
		{"min duration", store.TraceQuery{Service: "front", MinDuration: 18 * time.Millisecond}, ids(20, 19, 18)},
		{"max duration", store.TraceQuery{Service: "front", MaxDuration: 2 * time.Millisecond}, ids(2, 1)},
		{"duration range", store.TraceQuery{Service: "front", MinDuration: 5 * time.Millisecond, MaxDuration: 6 * time.Millisecond}, ids(6, 5)},
		{"time range inclusive", store.TraceQuery{Service: "front", Start: base.Add(3 * time.Second), End: base.Add(5 * time.Second)}, ids(5, 4, 3)},
		{"start only", store.TraceQuery{Service: "front", Start: base.Add(19 * time.Second)}, ids(20, 19)},
		{"child service", store.TraceQuery{Service: "back", Limit: 1}, ids(20)},
		{"everything", store.TraceQuery{Service: "front", Operation: "GET /b", Tags: map[string]string{"parity": "even"},
			MinDuration: 4 * time.Millisecond, MaxDuration: 16 * time.Millisecond, Start: base, End: base.Add(time.Minute), Limit: 2}, ids(16, 14)},
	}
	for _, tc := range tests {
		got, err := st.FindTraceIDs(c, tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if (len(got) > 0 || len(tc.want) > 0) && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func testOperations(t *testing.T, st store.Store) {
	c := ctx(t)
	a := span(1, 1, "svc", "GET /x", base, time.Millisecond)
	b := span(1, 2, "svc", "GET /x", base, time.Millisecond)
	b.Kind = "client"
	d := span(1, 3, "svc", "GET /a", base, time.Millisecond)
	other := span(1, 4, "other", "GET /z", base, time.Millisecond)
	must(t, st.WriteSpans(c, []store.Span{a, b, d, other, a}))
	got, err := st.Operations(c, "svc")
	must(t, err)
	want := []store.Operation{{Name: "GET /a", Kind: "server"}, {Name: "GET /x", Kind: "client"}, {Name: "GET /x", Kind: "server"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("operations: got %v, want %v", got, want)
	}
}

// histogram encodes a histogram holding values.
func histogram(t *testing.T, values ...int64) string {
	h := hdr.New()
	for _, v := range values {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	must(t, err)
	return s
}

func newRollup(t *testing.T, minute time.Time, k model.HopKey, source string, values ...int64) store.Rollup {
	return store.Rollup{
		Minute: minute, Key: k, Source: source, Count: int64(len(values)),
		Total: histogram(t, values...), Upstream: histogram(t, values...), Overhead: histogram(t, 1),
	}
}

var minute0 = base.Truncate(time.Minute)

func key(service string, dir model.Direction, peer, route string) model.HopKey {
	return model.HopKey{Service: service, Direction: dir, Peer: peer, Route: route, Method: "GET", StatusClass: "2xx"}
}

func testRollupsReplace(t *testing.T, st store.Store) {
	c := ctx(t)
	k := key("api", model.Inbound, "web", "/users")
	first := newRollup(t, minute0, k, "proxy-1", 100, 200)
	second := newRollup(t, minute0, k, "proxy-2", 300)
	must(t, st.WriteRollups(c, []store.Rollup{first, second}))
	// The same (minute, key, source) again replaces the row.
	replaced := newRollup(t, minute0, k, "proxy-1", 100, 200, 250)
	must(t, st.WriteRollups(c, []store.Rollup{replaced}))
	must(t, st.WriteRollups(c, []store.Rollup{replaced}))
	got, err := st.Rollups(c, store.RollupFilter{From: minute0, To: minute0.Add(time.Minute)})
	must(t, err)
	want := []store.Rollup{replaced, second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rollups:\n got %+v\nwant %+v", got, want)
	}
	// A minute not on the minute is stored truncated.
	late := newRollup(t, minute0.Add(90*time.Second), k, "proxy-1", 7)
	must(t, st.WriteRollups(c, []store.Rollup{late}))
	got, err = st.Rollups(c, store.RollupFilter{From: minute0.Add(time.Minute), To: minute0.Add(2 * time.Minute)})
	must(t, err)
	if len(got) != 1 || !got[0].Minute.Equal(minute0.Add(time.Minute)) || got[0].Minute.Location() != time.UTC {
		t.Fatalf("truncated minute: got %+v", got)
	}
}

func testRollupFilters(t *testing.T, st store.Store) {
	c := ctx(t)
	keys := []model.HopKey{
		key("api", model.Inbound, "web", "/users"),
		key("api", model.Inbound, "web", "/orders"),
		key("api", model.Outbound, "db", "/query"),
		key("web", model.Outbound, "api", "/users"),
	}
	var all []store.Rollup
	for m := range 3 {
		for _, k := range keys {
			all = append(all, newRollup(t, minute0.Add(time.Duration(m)*time.Minute), k, "p", int64(m+1)))
		}
	}
	must(t, st.WriteRollups(c, all))
	count := func(f store.RollupFilter) int {
		got, err := st.Rollups(c, f)
		must(t, err)
		for _, r := range got {
			if f.Service != "" && r.Key.Service != f.Service || f.Route != "" && r.Key.Route != f.Route ||
				f.Peer != "" && r.Key.Peer != f.Peer || f.Direction != "" && r.Key.Direction != f.Direction {
				t.Errorf("filter %+v returned %+v", f, r.Key)
			}
		}
		return len(got)
	}
	tests := []struct {
		f    store.RollupFilter
		want int
	}{
		{store.RollupFilter{}, 12},
		{store.RollupFilter{From: minute0, To: minute0.Add(3 * time.Minute)}, 12},
		{store.RollupFilter{From: minute0.Add(time.Minute)}, 8},
		{store.RollupFilter{To: minute0.Add(time.Minute)}, 4},
		{store.RollupFilter{From: minute0.Add(time.Minute), To: minute0.Add(2 * time.Minute)}, 4},
		{store.RollupFilter{From: minute0.Add(time.Second), To: minute0.Add(2*time.Minute + time.Second)}, 8},
		{store.RollupFilter{Service: "api"}, 9},
		{store.RollupFilter{Service: "api", Direction: model.Inbound}, 6},
		{store.RollupFilter{Service: "api", Direction: model.Inbound, Peer: "web"}, 6},
		{store.RollupFilter{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/users"}, 3},
		{store.RollupFilter{Route: "/users"}, 6},
		{store.RollupFilter{Peer: "db"}, 3},
		{store.RollupFilter{Service: "nobody"}, 0},
	}
	for _, tc := range tests {
		if got := count(tc.f); got != tc.want {
			t.Errorf("filter %+v: %d rollups, want %d", tc.f, got, tc.want)
		}
	}
}

func testServices(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.ObserveServices(c, []store.Service{
		{Name: "web", FirstSeen: base, LastSeen: base.Add(time.Minute), HasProxy: true},
		{Name: "db", FirstSeen: base, LastSeen: base},
	}))
	must(t, st.ObserveServices(c, []store.Service{
		{Name: "web", FirstSeen: base.Add(-time.Hour), LastSeen: base.Add(time.Second)},                 // widens first only
		{Name: "db", FirstSeen: base.Add(time.Second), LastSeen: base.Add(time.Hour + time.Nanosecond)}, // widens last only
	}))
	must(t, st.ObserveServices(c, nil))
	got, err := st.Services(c)
	must(t, err)
	want := []store.Service{
		{Name: "db", FirstSeen: base, LastSeen: base.Add(time.Hour + time.Nanosecond)},
		{Name: "web", FirstSeen: base.Add(-time.Hour), LastSeen: base.Add(time.Minute), HasProxy: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services:\n got %+v\nwant %+v", got, want)
	}
	// A proxy seen later marks the service as proxied.
	must(t, st.ObserveServices(c, []store.Service{{Name: "db", FirstSeen: base, LastSeen: base, HasProxy: true}}))
	got, err = st.Services(c)
	must(t, err)
	if !got[0].HasProxy {
		t.Errorf("db: HasProxy not set after a proxied observation")
	}
}

func testEdges(t *testing.T, st store.Store) {
	c := ctx(t)
	must(t, st.ObserveEdges(c, []store.Edge{
		{Caller: "web", Callee: "api", FirstSeen: base, LastSeen: base},
		{Caller: "api", Callee: "db", FirstSeen: base, LastSeen: base},
		{Caller: "web", Callee: "api", FirstSeen: base.Add(-time.Second), LastSeen: base.Add(time.Second)},
	}))
	must(t, st.ObserveEdges(c, []store.Edge{{Caller: "api", Callee: "db", FirstSeen: base.Add(time.Hour), LastSeen: base.Add(time.Hour)}}))
	got, err := st.Edges(c)
	must(t, err)
	want := []store.Edge{
		{Caller: "api", Callee: "db", FirstSeen: base, LastSeen: base.Add(time.Hour)},
		{Caller: "web", Callee: "api", FirstSeen: base.Add(-time.Second), LastSeen: base.Add(time.Second)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("edges:\n got %+v\nwant %+v", got, want)
	}
}

func testDropBefore(t *testing.T, st store.Store) {
	c := ctx(t)
	day := base.Truncate(24 * time.Hour)
	k := key("api", model.Inbound, "web", "/users")
	var spans []store.Span
	var rollups []store.Rollup
	for d := range 4 { // days day-3 .. day
		at := day.AddDate(0, 0, d-3).Add(12 * time.Hour)
		spans = append(spans, span(d+1, 1, "api", "op", at, time.Millisecond))
		rollups = append(rollups, newRollup(t, at, k, "p", 1))
	}
	// Around a cutoff inside a day.
	cut := day.Add(6 * time.Hour)
	spans = append(spans, span(10, 1, "api", "op", cut.Add(-time.Nanosecond), time.Millisecond), span(11, 1, "api", "op", cut, time.Millisecond))
	rollups = append(rollups, newRollup(t, cut.Add(-time.Minute), k, "p", 1), newRollup(t, cut, k, "p", 1))
	must(t, st.WriteSpans(c, spans))
	must(t, st.WriteRollups(c, rollups))

	// Whole days first, then the cutoff inside the last day.
	must(t, st.DropBefore(c, day.AddDate(0, 0, -1)))
	check := func(stage string, kept map[int]bool, minutes []time.Time) {
		t.Helper()
		for _, tr := range []int{1, 2, 3, 4, 10, 11} {
			_, err := st.Trace(c, hexID(tr, 32))
			switch {
			case kept[tr] && err != nil:
				t.Errorf("%s: trace %d: %v, want kept", stage, tr, err)
			case !kept[tr] && !errors.Is(err, store.ErrNotFound):
				t.Errorf("%s: trace %d: err %v, want dropped", stage, tr, err)
			}
		}
		got, err := st.Rollups(c, store.RollupFilter{})
		must(t, err)
		var have []time.Time
		for _, r := range got {
			have = append(have, r.Minute)
		}
		sort.Slice(minutes, func(i, j int) bool { return minutes[i].Before(minutes[j]) })
		if !reflect.DeepEqual(have, minutes) {
			t.Errorf("%s: rollup minutes %v, want %v", stage, have, minutes)
		}
	}
	r := func(i int) time.Time { return rollups[i].Minute.Truncate(time.Minute) }
	check("whole days", map[int]bool{3: true, 4: true, 10: true, 11: true}, []time.Time{r(2), r(3), r(4), r(5)})
	must(t, st.DropBefore(c, cut))
	check("inside a day", map[int]bool{4: true, 11: true}, []time.Time{r(3), r(5)})
	// Writing into a dropped day works again.
	must(t, st.WriteSpans(c, spans[:1]))
	if _, err := st.Trace(c, spans[0].TraceID); err != nil {
		t.Errorf("rewrite into a dropped day: %v", err)
	}
}
