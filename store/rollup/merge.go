// Package rollup merges stored per-minute rollups at query time: the
// percentiles of any window are exact merges of the HDR histograms the
// proxies recorded. Query reads a service's window through compactions
// (pre-merged minutes and hours, built on first use and rebuilt when late
// rollups arrive), so a day of a busy service merges in milliseconds.
package rollup

import (
	"fmt"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Merged is the merge of rollups: request count and the total, upstream and
// overhead latency histograms (microseconds).
type Merged struct {
	Count    int64
	Total    *hdr.Histogram
	Upstream *hdr.Histogram
	Overhead *hdr.Histogram

	only Histograms // 0: all
}

// Histograms selects some of a rollup's three histograms.
type Histograms uint8

// The histograms of a rollup.
const (
	Total Histograms = 1 << iota
	Upstream
	Overhead
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
	return nil
}

// AddCompaction merges one compaction in.
func (m *Merged) AddCompaction(c store.Compaction) error {
	if err := m.add(c.Count, c.Total, c.Upstream, c.Overhead); err != nil {
		return fmt.Errorf("compaction %s %s/%s %v: %w", c.Start.UTC().Format(time.RFC3339), c.Service, c.Direction, c.Period, err)
	}
	return nil
}

// AddMerged merges another Merged in.
func (m *Merged) AddMerged(o *Merged) {
	m.Count += o.Count
	m.Total.Merge(o.Total)
	m.Upstream.Merge(o.Upstream)
	m.Overhead.Merge(o.Overhead)
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

// add decodes all three histograms before it merges any, so that a bad one
// leaves m as it was.
func (m *Merged) add(count int64, total, upstream, overhead string) error {
	encs := [3]string{total, upstream, overhead}
	var ps [3]*hdr.Packed
	for i, enc := range encs {
		if enc == "" || !m.wants(i) {
			continue // not measured, or not asked for
		}
		p, err := decodeChecked(enc, histogramNames[i])
		if err != nil {
			return err
		}
		ps[i] = p
	}
	into := [3]*hdr.Histogram{m.Total, m.Upstream, m.Overhead}
	for i, p := range ps {
		if p != nil {
			p.MergeInto(into[i])
		}
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
	m := New()
	for _, r := range rs {
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	return m, nil
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
