package storeexporter

import (
	"sync"
	"time"

	"github.com/meshlens/meshlens/store"
)

// observeEvery is how far a service's or edge's last sighting may move
// before it is written again: at 10,000 spans/s the same few services
// arrive in every write, and their row need not be updated ten times a
// second. The store's last_seen lags the newest span by less than this.
const observeEvery = time.Second

// maxObserved bounds the memory of what was written; past it the memory
// starts afresh (every service and edge is written once more).
const maxObserved = 100_000

// observed remembers the services and edges this exporter has written
// (their widest first/last seen), so that a write which would not change
// them by observeEvery or more is left out. The store widens each row on
// write (earliest first seen, latest last seen), so leaving a write out
// never narrows what is stored, whoever else writes to it.
type observed struct {
	mu       sync.Mutex
	services map[string]store.Service
	edges    map[[2]string]store.Edge
}

// newServices is the part of ss that changes what was written.
func (o *observed) newServices(ss []store.Service) []store.Service {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []store.Service
	for _, s := range ss {
		w, ok := o.services[s.Name]
		if !ok || s.FirstSeen.Before(w.FirstSeen) || s.HasProxy && !w.HasProxy || s.LastSeen.Sub(w.LastSeen) >= observeEvery {
			out = append(out, s)
		}
	}
	return out
}

// newEdges is the part of es that changes what was written.
func (o *observed) newEdges(es []store.Edge) []store.Edge {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []store.Edge
	for _, e := range es {
		w, ok := o.edges[[2]string{e.Caller, e.Callee}]
		if !ok || e.FirstSeen.Before(w.FirstSeen) || e.LastSeen.Sub(w.LastSeen) >= observeEvery {
			out = append(out, e)
		}
	}
	return out
}

// wroteServices remembers services written.
func (o *observed) wroteServices(ss []store.Service) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.services == nil || len(o.services) > maxObserved {
		o.services = map[string]store.Service{}
	}
	for _, s := range ss {
		if w, ok := o.services[s.Name]; ok {
			s.Widen(w)
		}
		o.services[s.Name] = s
	}
}

// wroteEdges remembers edges written.
func (o *observed) wroteEdges(es []store.Edge) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.edges == nil || len(o.edges) > maxObserved {
		o.edges = map[[2]string]store.Edge{}
	}
	for _, e := range es {
		k := [2]string{e.Caller, e.Callee}
		if w, ok := o.edges[k]; ok {
			e.Widen(w)
		}
		o.edges[k] = e
	}
}
