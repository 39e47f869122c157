package rollup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// DefaultLateness is how long after its end a minute is taken as closed:
// rollups of a minute arrive within a proxy flush interval or two of its
// end. A late rollup only costs a rebuild of the compactions it touches.
const DefaultLateness = 2 * time.Minute

// Querier merges the rollups of a filter. The zero value of each field but
// Store is a default.
type Querier struct {
	Store store.Store
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Lateness: minutes that ended less than Lateness ago are read as
	// rollups, never compacted. 0 is DefaultLateness.
	Lateness time.Duration
	// Only limits the histograms merged (a percentile query needs only
	// Total); 0 merges all three. Compactions are always built whole.
	Only Histograms
	// Cache holds decoded compactions; nil is a process-wide cache.
	Cache *Cache
}

// Query merges the rollups f selects with the default Querier.
func Query(ctx context.Context, st store.Store, f store.RollupFilter) (*Merged, error) {
	return Querier{Store: st}.Query(ctx, f)
}

// Query merges the rollups f selects. A filter on one service (and perhaps a
// direction) over a bounded window is read through the store's compactions
// when it has them; the result is the same merge either way.
func (q Querier) Query(ctx context.Context, f store.RollupFilter) (*Merged, error) {
	cs, ok := q.Store.(store.Compactions)
	if !ok || f.Service == "" || f.Peer != "" || f.Route != "" || f.From.IsZero() || f.To.IsZero() {
		return q.raw(ctx, f)
	}
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	lateness := q.Lateness
	if lateness <= 0 {
		lateness = DefaultLateness
	}
	from, to := ceilMinute(f.From), ceilMinute(f.To)
	if !from.Before(to) {
		return New(), nil
	}
	// Minutes ending by cutoff are closed: compacted by the minute, and by
	// the hour where a whole closed hour lies in the window.
	cutoff := now().UTC().Add(-lateness).Truncate(time.Minute)
	closedEnd := minTime(cutoff, to)
	hourFrom := ceilHour(from)
	hourTo := closedEnd.Truncate(time.Hour)
	out := New()
	out.only = q.Only
	cache := q.Cache
	if cache == nil {
		cache = defaultCache
	}
	add := func(c store.Compaction) error {
		if f.Direction != "" && c.Direction != f.Direction {
			return nil
		}
		if err := cache.addCompaction(out, q.Store, c); err != nil {
			return fmt.Errorf("compaction %s %s/%s %v: %w", c.Start.UTC().Format(time.RFC3339), c.Service, c.Direction, c.Period, err)
		}
		return nil
	}
	if hourFrom.Before(hourTo) {
		if err := q.compacted(ctx, cs, f.Service, time.Hour, hourFrom, hourTo, add); err != nil {
			return nil, err
		}
		// Closed minutes before and after the whole hours.
		if err := q.compacted(ctx, cs, f.Service, time.Minute, from, hourFrom, add); err != nil {
			return nil, err
		}
		if err := q.compacted(ctx, cs, f.Service, time.Minute, hourTo, closedEnd, add); err != nil {
			return nil, err
		}
	} else if err := q.compacted(ctx, cs, f.Service, time.Minute, from, closedEnd, add); err != nil {
		return nil, err
	}
	// Open minutes as they are.
	if open := maxTime(from, closedEnd); open.Before(to) {
		rf := f
		rf.From, rf.To = open, to
		rest, err := q.raw(ctx, rf)
		if err != nil {
			return nil, err
		}
		out.AddMerged(rest)
	}
	return out, nil
}

func (q Querier) raw(ctx context.Context, f store.RollupFilter) (*Merged, error) {
	rs, err := q.Store.Rollups(ctx, f)
	if err != nil {
		return nil, err
	}
	m := New()
	m.only = q.Only
	for _, r := range rs {
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// compacted feeds the compactions of the service's periods in [from, to) to
// add, building and storing those missing or out of date.
func (q Querier) compacted(ctx context.Context, cs store.Compactions, service string, period time.Duration,
	from, to time.Time, add func(store.Compaction) error) error {
	if !from.Before(to) {
		return nil
	}
	have, err := cs.CurrentCompactions(ctx, service, period, from, to)
	if err != nil {
		return fmt.Errorf("read compactions of %s: %w", service, err)
	}
	done := map[time.Time]bool{}
	for _, c := range have {
		done[c.Start.UTC()] = true
		if err := add(c); err != nil {
			return err
		}
	}
	var missing []time.Time
	for t := from; t.Before(to); t = t.Add(period) {
		if !done[t] {
			missing = append(missing, t)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	built, err := q.build(ctx, cs, service, period, missing)
	if err != nil {
		return err
	}
	for _, c := range built {
		if err := add(c); err != nil {
			return err
		}
	}
	return nil
}

// build merges the rollups of the given periods into compactions per
// direction and stores them. The generations are read before the rollups:
// a rollup written after that read bumps the generation, so a compaction
// that might miss it is never taken as current.
func (q Querier) build(ctx context.Context, cs store.Compactions, service string, period time.Duration, starts []time.Time) ([]store.Compaction, error) {
	lo, hi := starts[0], starts[len(starts)-1].Add(period)
	gens, err := cs.RollupGenerations(ctx, service, period, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("read rollup generations of %s: %w", service, err)
	}
	rs, err := q.Store.Rollups(ctx, store.RollupFilter{From: lo, To: hi, Service: service})
	if err != nil {
		return nil, err
	}
	type slot struct {
		start time.Time
		dir   model.Direction
	}
	want := map[time.Time]bool{}
	for _, s := range starts {
		want[s] = true
	}
	merged := map[slot]*Merged{}
	for _, r := range rs {
		start := r.Minute.UTC().Truncate(period)
		if !want[start] {
			continue
		}
		k := slot{start, r.Key.Direction}
		m := merged[k]
		if m == nil {
			m = New()
			merged[k] = m
		}
		if err := m.Add(r); err != nil {
			return nil, err
		}
	}
	// Periods without rollups get empty compactions too, so they are not
	// read again.
	for _, s := range starts {
		for _, d := range []model.Direction{model.Inbound, model.Outbound} {
			if merged[slot{s, d}] == nil {
				merged[slot{s, d}] = New()
			}
		}
	}
	out := make([]store.Compaction, 0, len(merged))
	for k, m := range merged {
		total, upstream, overhead, err := m.encode()
		if err != nil {
			return nil, err
		}
		out = append(out, store.Compaction{Service: service, Direction: k.dir, Start: k.start, Period: period,
			Generation: gens[k.start], Count: m.Count, Total: total, Upstream: upstream, Overhead: overhead})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Start.Equal(out[j].Start) {
			return out[i].Start.Before(out[j].Start)
		}
		return out[i].Direction < out[j].Direction
	})
	if err := cs.WriteCompactions(ctx, out); err != nil {
		return nil, fmt.Errorf("write compactions of %s: %w", service, err)
	}
	return out, nil
}

func ceilMinute(t time.Time) time.Time { return ceil(t.UTC(), time.Minute) }
func ceilHour(t time.Time) time.Time   { return ceil(t.UTC(), time.Hour) }

func ceil(t time.Time, d time.Duration) time.Time {
	if f := t.Truncate(d); f.Before(t) {
		return f.Add(d)
	}
	return t
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
