package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

// testMalformedText: a span with NUL bytes or invalid UTF-8 must not fail
// its batch (at-least-once delivery would retry it forever); the span and
// its batch neighbours are stored.
func testMalformedText(t *testing.T, st store.Store) {
	c := ctx(t)
	bad := span(1, 1, "svc\x00", "GET /\xff\xfe", base, time.Millisecond)
	bad.Attributes = map[string]string{"k\x00": "v\xc3\x28", "ok": "fine"}
	bad.RequestID = "r\x00-1"
	good := span(2, 1, "svc", "GET /", base, time.Millisecond)
	must(t, st.WriteSpans(c, []store.Span{bad, good}))
	for _, id := range []string{bad.TraceID, good.TraceID} {
		got, err := st.Trace(c, id)
		if err != nil || len(got) != 1 {
			t.Errorf("trace %s: %v, %v", id, got, err)
		}
	}
	must(t, st.WriteRollups(c, []store.Rollup{newRollup(t, minute0, key("svc\x00\xff", "inbound", "p", "/\xff"), "src", 5)}))
	must(t, st.ObserveServices(c, []store.Service{{Name: "svc\xff", FirstSeen: base, LastSeen: base}}))
	must(t, st.ObserveEdges(c, []store.Edge{{Caller: "a\x00", Callee: "b\xff", FirstSeen: base, LastSeen: base}}))
}

// testConcurrentWriters: collectors delivering the same spans and rollups at
// the same time store each once.
func testConcurrentWriters(t *testing.T, st store.Store) {
	c := ctx(t)
	var spans []store.Span
	for i := range 400 {
		spans = append(spans, span(i/4+1, i+1, "svc", "op", base.Add(time.Duration(i)*time.Second), time.Millisecond))
	}
	rs := []store.Rollup{newRollup(t, minute0, key("svc", "inbound", "p", "/"), "src", 5)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each writer sends everything, in a different order of batches.
			for b := range 4 {
				i := (b + w) % 4
				if err := st.WriteSpans(c, spans[i*100:(i+1)*100]); err != nil {
					errs <- err
					return
				}
				if err := st.WriteRollups(c, rs); err != nil {
					errs <- err
					return
				}
				if err := st.ObserveServices(c, []store.Service{{Name: "svc", FirstSeen: base, LastSeen: base.Add(time.Duration(w) * time.Second)}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := 0
	for tr := 1; tr <= 100; tr++ {
		got, err := st.Trace(c, hexID(tr, 32))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		n += len(got)
	}
	if n != len(spans) {
		t.Errorf("%d spans stored, want %d", n, len(spans))
	}
	got, err := st.Rollups(c, store.RollupFilter{})
	must(t, err)
	if len(got) != 1 {
		t.Errorf("%d rollups stored, want 1", len(got))
	}
	svcs, err := st.Services(c)
	must(t, err)
	if len(svcs) != 1 || !svcs[0].LastSeen.Equal(base.Add(3*time.Second)) {
		t.Errorf("services: %+v", svcs)
	}
}
