package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// maxFoldAliases bounds how many folded routes get their own map entry
// pointing at the "other" hop. Past it a folded route is resolved under the
// recorder's write lock on every request: correct, only slower, and only for
// a proxy whose route vocabulary is far beyond its configured limit.
const maxFoldAliases = 1024

// maxPeersPerService bounds the distinct peers of one service and
// direction. An inbound peer is named by the caller, so without a bound a
// caller could make the proxy keep a histogram set (about 1 MB) per name it
// invents; past the bound new peers are recorded as unknownPeer.
const maxPeersPerService = 256

// unknownPeer is the peer of a hop whose other side is not identified.
const unknownPeer = "unknown"

// hopSet is the three histograms of one hop over one span of time.
type hopSet struct {
	total, upstream, overhead *hdr.Histogram
}

func newHopSet() *hopSet {
	return &hopSet{total: hdr.New(), upstream: hdr.New(), overhead: hdr.New()}
}

func (s *hopSet) reset() {
	s.total.Reset()
	s.upstream.Reset()
	s.overhead.Reset()
}

func (s *hopSet) merge(from *hopSet) {
	s.total.Merge(from.total)
	s.upstream.Merge(from.upstream)
	s.overhead.Merge(from.overhead)
}

// cumSet is the three since-start histograms of one hop in the sparse
// form: their memory grows with the buckets populated (a few KB for
// proxy latencies), not with the geometry (188 KB per dense histogram).
// Recording stays dense (RecordValue into the sparse form costs about 20×
// the dense one, BenchmarkHistRecord); each completed interval is merged
// in at rotation, off the request path, with the same counts.
type cumSet struct {
	total, upstream, overhead *hdr.Packed
}

func newCumSet() *cumSet {
	return &cumSet{total: hdr.NewPacked(), upstream: hdr.NewPacked(), overhead: hdr.NewPacked()}
}

func (c *cumSet) merge(from *hopSet) {
	c.total.MergeFrom(from.total)
	c.upstream.MergeFrom(from.upstream)
	c.overhead.MergeFrom(from.overhead)
}

// hopEntry is one hop key's histograms. mu guards cur and requests, the only
// state the hot path touches; statsMu guards what rotation and /stats share.
type hopEntry struct {
	key model.HopKey

	mu       sync.Mutex
	cur      *hopSet // nil while the key is idle: a whole interval without requests
	requests uint64  // since start

	statsMu sync.Mutex
	cum     *cumSet     // every completed interval merged
	last    WindowStats // the last completed interval
}

// hopRef is what the key map holds: the entry a key records into, and
// whether the key's route was folded into "other" to get there.
type hopRef struct {
	e      *hopEntry
	folded bool
}

// recorder holds the hop histograms. Lookups read an immutable map through
// an atomic pointer (no lock); a new key copies the map under mu. Each entry
// has its own mutex, so requests on different hops never contend.
type recorder struct {
	maxRoutes int

	keys atomic.Pointer[map[model.HopKey]hopRef]

	mu      sync.Mutex // serialises inserts
	entries []*hopEntry
	routes  map[string]map[string]struct{} // service → routes seen
	peers   map[string]map[string]struct{} // service and direction → peers seen
	aliases int

	// rotateMu serialises rotations.
	rotateMu sync.Mutex
	// poolMu guards free, the dense sets idle keys gave back and a rotation
	// swaps in; at most maxFreeSets are kept.
	poolMu sync.Mutex
	free   []*hopSet

	folds, peerFolds                         atomic.Uint64
	clampTotal, clampUpstream, clampOverhead atomic.Uint64
}

func newRecorder(maxRoutes int) *recorder {
	r := &recorder{maxRoutes: maxRoutes, routes: map[string]map[string]struct{}{}, peers: map[string]map[string]struct{}{}}
	m := map[model.HopKey]hopRef{}
	r.keys.Store(&m)
	return r
}

// record adds one finished request. It is the hot path: one map lookup, one
// uncontended mutex, three histogram increments, no allocation for a known
// key.
func (r *recorder) record(h *Hop) {
	ref, ok := (*r.keys.Load())[h.Key]
	if !ok {
		ref = r.insert(h.Key)
	}
	if ref.folded {
		if ref.e.key.Route != h.Key.Route {
			r.folds.Add(1)
		}
		if ref.e.key.Peer != h.Key.Peer {
			r.peerFolds.Add(1)
		}
	}
	total := h.Total.Microseconds()
	e := ref.e
	e.mu.Lock()
	if e.cur == nil {
		e.cur = r.takeSet() // a key waking up after an idle interval
	}
	e.requests++
	ct := hdr.Record(e.cur.total, total)
	var cu, co bool
	if h.Upstream > 0 {
		cu = hdr.Record(e.cur.upstream, h.Upstream.Microseconds())
		co = hdr.Record(e.cur.overhead, (h.Total - h.Upstream).Microseconds())
	}
	e.mu.Unlock()
	if ct {
		r.clampTotal.Add(1)
	}
	if cu {
		r.clampUpstream.Add(1)
	}
	if co {
		r.clampOverhead.Add(1)
	}
}

// insert resolves a key not yet in the map, folding its route into "other"
// when its service already has maxRoutes routes, and its peer into
// unknownPeer when its service and direction already have
// maxPeersPerService peers.
func (r *recorder) insert(k model.HopKey) hopRef {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.keys.Load()
	if ref, ok := old[k]; ok {
		return ref
	}
	target := k
	routes := r.routes[k.Service]
	if routes == nil {
		routes = map[string]struct{}{}
		r.routes[k.Service] = routes
	}
	if _, seen := routes[k.Route]; !seen {
		if k.Route != model.OtherRoute && len(routes) >= r.maxRoutes {
			target.Route = model.OtherRoute
		} else {
			routes[k.Route] = struct{}{}
		}
	}
	pk := k.Service + " " + string(k.Direction)
	peers := r.peers[pk]
	if peers == nil {
		peers = map[string]struct{}{}
		r.peers[pk] = peers
	}
	if _, seen := peers[k.Peer]; !seen {
		if k.Peer != unknownPeer && len(peers) >= maxPeersPerService {
			target.Peer = unknownPeer
		} else {
			peers[k.Peer] = struct{}{}
		}
	}
	ref := hopRef{folded: target != k}
	add := map[model.HopKey]hopRef{}
	if tref, ok := old[target]; ok && ref.folded {
		ref.e = tref.e
	} else {
		ref.e = &hopEntry{key: target, cur: r.takeSet()}
		r.entries = append(r.entries, ref.e)
		if ref.folded {
			add[target] = hopRef{e: ref.e}
		}
	}
	if ref.folded {
		if r.aliases >= maxFoldAliases {
			if len(add) > 0 {
				r.publish(old, add)
			}
			return ref
		}
		r.aliases++
	}
	add[k] = ref
	r.publish(old, add)
	return ref
}

func (r *recorder) publish(old, add map[model.HopKey]hopRef) {
	m := make(map[model.HopKey]hopRef, len(old)+len(add))
	for k, v := range old {
		m[k] = v
	}
	for k, v := range add {
		m[k] = v
	}
	r.keys.Store(&m)
}

// snapshotEntries returns the entries that exist now.
func (r *recorder) snapshotEntries() []*hopEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries[:len(r.entries):len(r.entries)]
}

// maxFreeSets bounds the dense sets kept for reuse (about 564 KB each).
const maxFreeSets = 2

// takeSet returns an empty dense set, reused when one is free.
func (r *recorder) takeSet() *hopSet {
	r.poolMu.Lock()
	if n := len(r.free); n > 0 {
		s := r.free[n-1]
		r.free = r.free[:n-1]
		r.poolMu.Unlock()
		return s
	}
	r.poolMu.Unlock()
	return newHopSet()
}

// putSet gives an empty dense set back for reuse, or to the GC when
// maxFreeSets are kept already.
func (r *recorder) putSet(s *hopSet) {
	r.poolMu.Lock()
	if len(r.free) < maxFreeSets {
		r.free = append(r.free, s)
	}
	r.poolMu.Unlock()
}

// rotate ends the current interval: every hop that saw requests gets a fresh
// set, its interval set is merged into its cumulative (sparse) set and
// summarised for /stats, and fn sees each (key, interval set) before the set
// is reset and reused. A hop whose whole interval was empty gives its dense
// set back and gets one again on its next request. So the memory per key is
// one dense set while the key is active, none while idle, plus the sparse
// cumulative set; rotation allocates no dense set after the first one.
func (r *recorder) rotate(fn func(k model.HopKey, s *hopSet)) {
	r.rotateMu.Lock()
	defer r.rotateMu.Unlock()
	for _, e := range r.snapshotEntries() {
		e.mu.Lock()
		if e.cur == nil || e.cur.total.TotalCount() == 0 {
			idle := e.cur
			e.cur = nil
			e.mu.Unlock()
			if idle != nil {
				r.putSet(idle)
			}
			e.statsMu.Lock()
			e.last = WindowStats{}
			e.statsMu.Unlock()
			continue
		}
		e.mu.Unlock()
		// Take the fresh set outside e.mu: it may allocate.
		fresh := r.takeSet()
		e.mu.Lock()
		old := e.cur
		e.cur = fresh
		e.mu.Unlock()

		fn(e.key, old)
		e.statsMu.Lock()
		if e.cum == nil {
			e.cum = newCumSet()
		}
		e.cum.merge(old)
		e.last = summarise(old)
		e.statsMu.Unlock()
		old.reset()
		r.putSet(old)
	}
}

// WindowStats are the figures of a hop's three histograms over a window.
type WindowStats struct {
	Total    HistStats `json:"total"`
	Upstream HistStats `json:"upstream"`
	Overhead HistStats `json:"overhead"`
}

// HistStats are one histogram's figures, in microseconds.
type HistStats struct {
	Count  int64 `json:"count"`
	P50us  int64 `json:"p50_us"`
	P90us  int64 `json:"p90_us"`
	P99us  int64 `json:"p99_us"`
	P999us int64 `json:"p99_9_us"`
	MaxUs  int64 `json:"max_us"`
}

func histSummary(h *hdr.Histogram) HistStats {
	if h.TotalCount() == 0 {
		return HistStats{}
	}
	q := h.ValueAtPercentiles([]float64{50, 90, 99, 99.9})
	return HistStats{
		Count:  h.TotalCount(),
		P50us:  q[50],
		P90us:  q[90],
		P99us:  q[99],
		P999us: q[99.9],
		MaxUs:  h.Max(),
	}
}

var summaryPercentiles = []float64{50, 90, 99, 99.9}

// packedSummary is histSummary for the sparse form; its percentiles and max
// are bit for bit those of the dense histogram with the same counts.
func packedSummary(p *hdr.Packed) HistStats {
	if p.TotalCount() == 0 {
		return HistStats{}
	}
	q := p.ValueAtPercentilesSlice(summaryPercentiles)
	return HistStats{
		Count:  p.TotalCount(),
		P50us:  q[0],
		P90us:  q[1],
		P99us:  q[2],
		P999us: q[3],
		MaxUs:  p.Max(),
	}
}

func summarise(s *hopSet) WindowStats {
	return WindowStats{Total: histSummary(s.total), Upstream: histSummary(s.upstream), Overhead: histSummary(s.overhead)}
}

func summariseCum(c *cumSet) WindowStats {
	return WindowStats{Total: packedSummary(c.total), Upstream: packedSummary(c.upstream), Overhead: packedSummary(c.overhead)}
}

// sinceStart returns the cumulative figures of e over every completed
// interval. The interval in progress is left out so that /stats never holds
// the hot path's lock for longer than a swap.
func (e *hopEntry) sinceStart() WindowStats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	if e.cum == nil {
		return WindowStats{}
	}
	return summariseCum(e.cum)
}

// lastInterval returns the figures of e's last completed interval.
func (e *hopEntry) lastInterval() WindowStats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	return e.last
}

// requestCount returns how many requests e recorded since start.
func (e *hopEntry) requestCount() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.requests
}
