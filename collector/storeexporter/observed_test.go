package storeexporter

import (
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

// A service or edge is written again only when the write would widen what
// was written: an earlier first sighting, a proxy found, or a last
// sighting observeEvery or more later.
func TestObserved(t *testing.T) {
	var o observed
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	svc := func(first, last time.Duration, proxy bool) store.Service {
		return store.Service{Name: "checkout", FirstSeen: t0.Add(first), LastSeen: t0.Add(last), HasProxy: proxy}
	}
	if got := o.newServices([]store.Service{svc(0, time.Second, false)}); len(got) != 1 {
		t.Fatalf("a service never written: %v", got)
	}
	o.wroteServices([]store.Service{svc(0, time.Second, false)})
	for name, c := range map[string]struct {
		s    store.Service
		want bool
	}{
		"within":         {svc(500*time.Millisecond, 1500*time.Millisecond, false), false},
		"earlier":        {svc(-time.Millisecond, time.Second, false), true},
		"proxy":          {svc(0, time.Second, true), true},
		"a second later": {svc(time.Second, 2*time.Second, false), true},
	} {
		if got := len(o.newServices([]store.Service{c.s})) == 1; got != c.want {
			t.Errorf("%s: written %v, want %v", name, got, c.want)
		}
	}

	e := store.Edge{Caller: "web", Callee: "checkout", FirstSeen: t0, LastSeen: t0}
	o.wroteEdges([]store.Edge{e})
	later := e
	later.LastSeen = t0.Add(100 * time.Millisecond)
	if got := o.newEdges([]store.Edge{later}); len(got) != 0 {
		t.Errorf("an edge seen 100ms later is written again: %v", got)
	}
	later.LastSeen = t0.Add(observeEvery)
	if got := o.newEdges([]store.Edge{later}); len(got) != 1 {
		t.Errorf("an edge seen %v later is not written: %v", observeEvery, got)
	}
}
