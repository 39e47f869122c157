// Package rollup merges stored per-minute rollups at query time: the
// percentiles of any window are exact merges of the HDR histograms the
// proxies recorded. Query reads a service's window through compactions
// (pre-merged minutes and hours, built in the background by Compactor as
// periods close, on demand when missing, and rebuilt when late rollups
// arrive), so a day of a busy service merges in milliseconds.
package rollup

import (
	"fmt"
	"sync"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Merged is the merge of rollups: request count and the total, upstream and
// overhead latency histograms (microseconds), with the number of rollups
// merged and the request count per status class.
type Merged struct {
	Count    int64
	Total    *hdr.Histogram
	Upstream *hdr.Histogram
	Overhead *hdr.Histogram
	// Rollups is the number of rollups merged, directly or through
	// compactions.
	Rollups int64
	// ByClass is the sum of the rollups' counts per status class ("2xx",
	// ...); nil before the first rollup.
	ByClass map[string]int64

	only Histograms // 0: all
}

// Histograms selects some of a rollup's three histograms.
type Histograms = store.Histograms

// The histograms of a rollup.
const (
	Total    = store.TotalHistogram
	Upstream = store.UpstreamHistogram
	Overhead = store.OverheadHistogram
)

// New returns an empty Merged.
func New() *Merged {
	return &Merged{Total: hdr.New(), Upstream: hdr.New(), Overhead: hdr.New()}
}

// Add merges one rollup in.
func (m *Merged) Add(r store.Rollup) error {
	if err := m.add(r.Count, r.Total, r.Upstream, r.Overhead); err != nil {
		return fmt.Errorf("rollup %s %s/%s %s %s %s %s from %q: %w", r.Minute.UTC().Format(time.RFC3339), r.Key.Service,
			r.Key.Direction, r.Key.Peer, r.Key.Route, r.Key.Method, r.Key.StatusClass, r.Source, err)
	}
	m.Rollups++
	if m.ByClass == nil {
		m.ByClass = map[string]int64{}
	}
	m.ByClass[r.Key.StatusClass] += r.Count
	return nil
}

// AddCompaction merges one compaction in.
func (m *Merged) AddCompaction(c store.Compaction) error {
	if err := m.add(c.Count, c.Total, c.Upstream, c.Overhead); err != nil {
		return fmt.Errorf("compaction %s %s/%s %v: %w", c.Start.UTC().Format(time.RFC3339), c.Service, c.Direction, c.Period, err)
	}
	m.countRollups(c.Rollups, c.ByClass)
	return nil
}

// AddMerged merges another Merged in.
func (m *Merged) AddMerged(o *Merged) {
	m.Count += o.Count
	m.Total.Merge(o.Total)
	m.Upstream.Merge(o.Upstream)
	m.Overhead.Merge(o.Overhead)
	m.countRollups(o.Rollups, o.ByClass)
}

func (m *Merged) countRollups(n int64, byClass map[string]int64) {
	m.Rollups += n
	if n == 0 && len(byClass) == 0 {
		return
	}
	if m.ByClass == nil {
		m.ByClass = make(map[string]int64, len(byClass))
	}
	for k, v := range byClass {
		m.ByClass[k] += v
	}
}

// maxEquivalent is the largest value a meshlens histogram can hold: the top
// of the bucket of model.HighestTrackableMicros.
var maxEquivalent = func() int64 {
	h := hdr.New()
	hdr.Record(h, model.HighestTrackableMicros)
	return h.Max()
}()

var histogramNames = [3]string{"total", "upstream", "overhead"}

// wants reports whether m merges histogram i (0 total, 1 upstream, 2
// overhead).
func (m *Merged) wants(i int) bool { return m.only == 0 || m.only&(1<<i) != 0 }

// decodeChecked decodes one stored histogram and checks it fits the meshlens
// geometry.
func decodeChecked(enc, name string) (*hdr.Packed, error) {
	// The sparse decode skips the dense counts array a full decode
	// allocates; merging it into the dense accumulator is exact.
	p, err := hdr.DecodePacked(enc)
	if err != nil {
		return nil, fmt.Errorf("%s histogram: %w", name, err)
	}
	if p.Max() > maxEquivalent {
		return nil, fmt.Errorf("%s histogram: values up to %d µs, above the meshlens limit %d µs", name, p.Max(), int64(model.HighestTrackableMicros))
	}
	return p, nil
}

// decoded is one stored histogram read for a merge: its buckets on the fast
// path (hdr.DecodeBuckets), else the checked sparse decode.
type decoded struct {
	b *hdr.Buckets
	p *hdr.Packed
}

func (d decoded) mergeInto(h *hdr.Histogram) {
	if d.p != nil {
		d.p.MergeInto(h)
	} else if d.b != nil {
		d.b.MergeInto(h)
	}
}

// decodeInto decodes enc on the fast path into b, or else with the checked
// sparse decode, whose errors are the verdict on anything the fast path does
// not take (hdr.DecodeBuckets takes only what the sparse decode would).
func decodeInto(enc, name string, b *hdr.Buckets) (decoded, error) {
	if hdr.DecodeBuckets(enc, b) {
		return decoded{b: b}, nil
	}
	p, err := decodeChecked(enc, name)
	return decoded{p: p}, err
}

// decodeKeep decodes enc (checked) into buckets to keep, as the cache does.
func decodeKeep(enc, name string) (*hdr.Buckets, error) {
	scratch := bucketsPool.Get().(*hdr.Buckets)
	defer bucketsPool.Put(scratch)
	if hdr.DecodeBuckets(enc, scratch) {
		return scratch.Clone(), nil
	}
	b := new(hdr.Buckets)
	p, err := decodeChecked(enc, name)
	if err != nil {
		return nil, err
	}
	s := getSum()
	defer putSum(s)
	addDecoded(s, decoded{p: p})
	s.Buckets(b)
	return b, nil
}

// addDecoded adds d to s.
func addDecoded(s *hdr.Sum, d decoded) {
	switch {
	case d.b != nil:
		s.AddBuckets(d.b)
	case d.p != nil:
		h := hdr.New()
		d.p.MergeInto(h)
		s.AddHistogram(h)
	}
}

var bucketsPool = sync.Pool{New: func() any { return new(hdr.Buckets) }}

var sums = sync.Pool{New: func() any { return hdr.NewSum() }}

func getSum() *hdr.Sum { return sums.Get().(*hdr.Sum) }

func putSum(s *hdr.Sum) {
	s.Reset()
	sums.Put(s)
}

// acc is what queries and compaction builds merge into: a dense sum by
// bucket index per histogram asked for, and the counts. release gives the
// sums back.
type acc struct {
	sums           [3]*hdr.Sum // nil: not asked for
	count, rollups int64
	byClass        map[string]int64
}

func newAcc(want Histograms) *acc {
	a := &acc{}
	for i := range a.sums {
		if want&(1<<i) != 0 {
			a.sums[i] = getSum()
		}
	}
	return a
}

func (a *acc) release() {
	for i, s := range a.sums {
		if s != nil {
			putSum(s)
			a.sums[i] = nil
		}
	}
}

func (a *acc) empty() bool { return a.rollups == 0 && a.count == 0 }

// addRollup merges one rollup in, decoding the histograms asked for all
// before it merges any, so that a bad one leaves a as it was.
func (a *acc) addRollup(r store.Rollup) error {
	encs := [3]string{r.Total, r.Upstream, r.Overhead}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	var ds [3]decoded
	for i, enc := range encs {
		if enc == "" || a.sums[i] == nil {
			continue
		}
		d, err := decodeInto(enc, histogramNames[i], &sc[i])
		if err != nil {
			return fmt.Errorf("rollup %s %s/%s %s %s %s %s from %q: %w", r.Minute.UTC().Format(time.RFC3339), r.Key.Service,
				r.Key.Direction, r.Key.Peer, r.Key.Route, r.Key.Method, r.Key.StatusClass, r.Source, err)
		}
		ds[i] = d
	}
	for i, d := range ds {
		if a.sums[i] != nil {
			addDecoded(a.sums[i], d)
		}
	}
	a.count += r.Count
	a.rollups++
	if a.byClass == nil {
		a.byClass = map[string]int64{}
	}
	a.byClass[r.Key.StatusClass] += r.Count
	return nil
}

// part is what a query or a build merges: a piece (cached, or decoded
// from a stored compaction) or the acc of a period just built.
type part interface {
	addTo(a *acc)
	isEmpty() bool
}

func (p *piece) addTo(a *acc)  { a.addPiece(p) }
func (p *piece) isEmpty() bool { return p.rollups == 0 && p.count == 0 }
func (o *acc) addTo(a *acc)    { a.addAcc(o) }
func (o *acc) isEmpty() bool   { return o.empty() }

// addAcc merges o in; o sums every histogram a sums.
func (a *acc) addAcc(o *acc) {
	for i, s := range o.sums {
		if s != nil && a.sums[i] != nil {
			a.sums[i].AddSum(s)
		}
	}
	a.addCounts(o.count, o.rollups, o.byClass)
}

// addPiece merges p in; p has every histogram a sums.
func (a *acc) addPiece(p *piece) {
	for i, b := range p.h {
		if b != nil && a.sums[i] != nil {
			a.sums[i].AddBuckets(b)
		}
	}
	a.addCounts(p.count, p.rollups, p.byClass)
}

// addCounts adds the request and rollup counts and the counts by status
// class of a merged part.
func (a *acc) addCounts(count, rollups int64, byClass map[string]int64) {
	a.count += count
	a.rollups += rollups
	if len(byClass) > 0 {
		if a.byClass == nil {
			a.byClass = make(map[string]int64, len(byClass))
		}
		for k, v := range byClass {
			a.byClass[k] += v
		}
	}
}

// piece returns a's content as a piece to keep, with the histograms want
// selects (a sums them all).
func (a *acc) piece(want Histograms) *piece {
	p := &piece{count: a.count, rollups: a.rollups, byClass: a.byClass, have: want}
	for i, s := range a.sums {
		if s != nil && want&(1<<i) != 0 && s.TotalCount() > 0 {
			p.h[i] = new(hdr.Buckets)
			s.Buckets(p.h[i])
		}
	}
	return p
}

// merged returns a's content as a Merged (histograms not summed are
// empty) and releases a.
func (a *acc) merged(only Histograms) *Merged {
	m := &Merged{Count: a.count, Rollups: a.rollups, ByClass: a.byClass, only: only}
	hs := [3]**hdr.Histogram{&m.Total, &m.Upstream, &m.Overhead}
	for i, s := range a.sums {
		if s != nil {
			*hs[i] = s.Histogram()
		} else {
			*hs[i] = hdr.New()
		}
	}
	a.release()
	return m
}

// compaction encodes a as the compaction of a period and direction.
func (a *acc) compaction(c store.Compaction) (store.Compaction, error) {
	c.Count, c.Rollups, c.ByClass = a.count, a.rollups, a.byClass
	encs := [3]*string{&c.Total, &c.Upstream, &c.Overhead}
	for i, s := range a.sums {
		if s == nil || s.TotalCount() == 0 {
			continue // nothing recorded: the empty string
		}
		enc, err := s.Encode()
		if err != nil {
			return c, fmt.Errorf("encode %s histogram: %w", histogramNames[i], err)
		}
		*encs[i] = enc
	}
	return c, nil
}

// scratch holds the buckets of one add, reused across adds.
type scratch [3]hdr.Buckets

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// add decodes all three histograms before it merges any, so that a bad one
// leaves m as it was.
func (m *Merged) add(count int64, total, upstream, overhead string) error {
	encs := [3]string{total, upstream, overhead}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	var ds [3]decoded
	for i, enc := range encs {
		if enc == "" || !m.wants(i) {
			continue // not measured, or not asked for
		}
		d, err := decodeInto(enc, histogramNames[i], &sc[i])
		if err != nil {
			return err
		}
		ds[i] = d
	}
	into := [3]*hdr.Histogram{m.Total, m.Upstream, m.Overhead}
	for i, d := range ds {
		d.mergeInto(into[i])
	}
	m.Count += count
	return nil
}

// encode renders m as a compaction's histogram fields. An empty histogram
// is the empty string, which add reads as nothing recorded.
func (m *Merged) encode() (total, upstream, overhead string, err error) {
	enc := func(h *hdr.Histogram) string {
		if err != nil || h.TotalCount() == 0 {
			return ""
		}
		var s string
		s, err = hdr.Encode(h)
		return s
	}
	total, upstream, overhead = enc(m.Total), enc(m.Upstream), enc(m.Overhead)
	return total, upstream, overhead, err
}

// Merge merges rollups into one Merged.
func Merge(rs []store.Rollup) (*Merged, error) {
	a := newAcc(store.AllHistograms)
	for _, r := range rs {
		if err := a.addRollup(r); err != nil {
			a.release()
			return nil, err
		}
	}
	return a.merged(0), nil
}

// GroupBy merges rollups into one Merged per group key, e.g. per minute for
// a time series or per route for a breakdown.
func GroupBy[K comparable](rs []store.Rollup, key func(store.Rollup) K) (map[K]*Merged, error) {
	out := map[K]*Merged{}
	for _, r := range rs {
		k := key(r)
		m := out[k]
		if m == nil {
			m = New()
			out[k] = m
		}
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}
