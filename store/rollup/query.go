package rollup

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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
	// Lateness: minutes that ended less than Lateness ago are open: read as
	// rollups (their merge kept in the cache per write generation), never
	// stored as compactions. 0 is DefaultLateness.
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
// when it has them; the result is the same merge either way, with the same
// counts (requests, rollups, requests per status class).
//
// Every rollup written before Query is called is in the result: closed whole
// hours and closed minutes come from compactions that are current (no rollup
// of their period written since they were built), built and stored when
// missing; open minutes are merged from their rollups, or taken from the
// cache while their write generation has not moved.
func (q Querier) Query(ctx context.Context, f store.RollupFilter) (*Merged, error) {
	cs, st, ok := store.CompactionsOf(q.Store)
	if !ok || f.Service == "" || f.Peer != "" || f.Route != "" || f.From.IsZero() || f.To.IsZero() {
		return q.raw(ctx, f)
	}
	now := time.Now
	if q.Now != nil {
		now = q.Now
	}
	from, to := ceilMinute(f.From), ceilMinute(f.To)
	r := &reader{cs: cs, st: st, service: f.Service, dir: f.Direction, want: q.Only, cache: q.Cache}
	if r.want == 0 {
		r.want = store.AllHistograms
	}
	if r.cache == nil {
		r.cache = defaultCache
	}
	if !cacheable(st) {
		r.cache = nil
	}
	out := newAcc(r.want)
	if !from.Before(to) {
		return out.merged(q.Only), nil
	}
	// Minutes ending by cutoff are closed: compacted by the minute, and by
	// the hour where a whole closed hour lies in the window.
	cutoff := closedBy(now(), q.Lateness)
	closedEnd := minTime(cutoff, to)
	hourFrom := ceilHour(from)
	hourTo := closedEnd.Truncate(time.Hour)
	add := func(_ time.Time, _ model.Direction, p part) { p.addTo(out) }
	var segments []segment
	if hourFrom.Before(hourTo) {
		segments = append(segments, segment{time.Hour, hourFrom, hourTo},
			segment{time.Minute, from, hourFrom}, segment{time.Minute, hourTo, closedEnd})
	} else {
		segments = append(segments, segment{time.Minute, from, closedEnd})
	}
	for _, s := range segments {
		if err := r.pieces(ctx, s.period, s.from, s.to, add); err != nil {
			out.release()
			return nil, err
		}
	}
	if open := maxTime(from, closedEnd); open.Before(to) {
		if err := r.open(ctx, open, to, add); err != nil {
			out.release()
			return nil, err
		}
	}
	return out.merged(q.Only), nil
}

type segment struct {
	period   time.Duration
	from, to time.Time
}

// closedBy is the end of the last closed minute at now.
func closedBy(now time.Time, lateness time.Duration) time.Time {
	if lateness <= 0 {
		lateness = DefaultLateness
	}
	return now.UTC().Add(-lateness).Truncate(time.Minute)
}

func (q Querier) raw(ctx context.Context, f store.RollupFilter) (*Merged, error) {
	rs, err := q.Store.Rollups(ctx, f)
	if err != nil {
		return nil, err
	}
	want := q.Only
	if want == 0 {
		want = store.AllHistograms
	}
	a := newAcc(want)
	for _, r := range rs {
		if err := a.addRollup(r); err != nil {
			a.release()
			return nil, err
		}
	}
	return a.merged(q.Only), nil
}

// reader reads the pieces of one service's periods: from the cache, from
// the store's current compactions, or built from rollups (and stored).
type reader struct {
	cs      store.Compactions
	st      store.Store // the store that keeps cs, for cache keys
	service string
	dir     model.Direction // "": every direction
	want    Histograms      // the histograms decoded; never 0
	cache   *Cache          // nil: none
	noFill  bool            // look up the cache but add nothing to it
}

// pieceKey is a period start and direction.
type pieceKey struct {
	start time.Time
	dir   model.Direction
}

// directions are the directions every compacted period has a compaction
// of (empty when no rollup has it).
var directions = []model.Direction{model.Inbound, model.Outbound}

func (r *reader) wantsDir(d model.Direction) bool { return r.dir == "" || d == r.dir }

// dirs are the directions of every period a read must find.
func (r *reader) dirs() []model.Direction {
	if r.dir != "" {
		return []model.Direction{r.dir}
	}
	return directions
}

func (r *reader) key(d model.Direction, period time.Duration, start time.Time, gen int64) cacheKey {
	return cacheKey{r.st, r.service, d, period, start.UnixNano(), gen}
}

func (r *reader) cached(key cacheKey) *piece {
	if p := r.cache.get(key); p != nil && p.have&r.want == r.want {
		return p
	}
	return nil
}

func (r *reader) keep(key cacheKey, p *piece) {
	if !r.noFill {
		r.cache.put(key, p)
	}
}

// pieces feeds add the pieces of the service's periods in [from, to), in
// the directions r reads: current compactions from the cache, or read with
// their histograms, and the others built from rollups and stored.
func (r *reader) pieces(ctx context.Context, period time.Duration, from, to time.Time,
	add func(time.Time, model.Direction, part)) error {
	if !from.Before(to) {
		return nil
	}
	q := store.CompactionQuery{Service: r.service, Period: period, From: from, To: to}
	// Keys and generations first: the histograms of what is cached are
	// not read again.
	keys, err := r.cs.CurrentCompactions(ctx, q)
	if err != nil {
		return fmt.Errorf("read compactions of %s: %w", r.service, err)
	}
	done := map[pieceKey]bool{}
	var need []time.Time
	needed := map[time.Time]bool{}
	for _, c := range keys {
		if !r.wantsDir(c.Direction) {
			continue
		}
		if p := r.cached(r.key(c.Direction, period, c.Start, c.Generation)); p != nil {
			add(c.Start, c.Direction, p)
			done[pieceKey{c.Start, c.Direction}] = true
		} else if !needed[c.Start] {
			needed[c.Start] = true
			need = append(need, c.Start)
		}
	}
	if len(need) > 0 {
		q.Starts, q.Histograms = need, r.want
		full, err := r.cs.CurrentCompactions(ctx, q)
		if err != nil {
			return fmt.Errorf("read compactions of %s: %w", r.service, err)
		}
		decoded, errs := r.decode(full, done)
		for i, c := range full {
			k := pieceKey{c.Start, c.Direction}
			if !r.wantsDir(c.Direction) || done[k] {
				continue
			}
			p, err := decoded[i], errs[i]
			if err != nil {
				return fmt.Errorf("compaction %s %s/%s %v: %w", c.Start.Format(time.RFC3339), r.service, c.Direction, period, err)
			}
			r.keep(r.key(c.Direction, period, c.Start, c.Generation), p)
			add(c.Start, c.Direction, p)
			done[k] = true
		}
	}
	// What is still missing (never built, out of date, or gone out of date
	// between the two reads) is built now.
	var missing []time.Time
	for t := from; t.Before(to); t = t.Add(period) {
		for _, d := range r.dirs() {
			if !done[pieceKey{t, d}] {
				missing = append(missing, t)
				break
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// A period just built is fed as its sums (valid during the call only)
	// to a reader that keeps nothing, else as a piece, kept in the cache.
	return r.build(ctx, period, missing, func(t time.Time, d model.Direction, gen int64, a *acc) {
		k := pieceKey{t, d}
		if !r.wantsDir(d) || done[k] {
			return
		}
		if r.noFill {
			add(t, d, a)
			return
		}
		p := a.piece(r.want)
		if gen > 0 {
			r.keep(r.key(d, period, t, gen), p)
		}
		add(t, d, p)
	})
}

// decode decodes the compactions of cs that pieces uses (those of a wanted
// direction not done already), on every core: decoding is most of what a
// query with an empty cache (the first after a restart) costs.
func (r *reader) decode(cs []store.Compaction, done map[pieceKey]bool) ([]*piece, []error) {
	ps, errs := make([]*piece, len(cs)), make([]error, len(cs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(cs)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(cs); i = int(next.Add(1) - 1) {
				c := cs[i]
				if r.wantsDir(c.Direction) && !done[pieceKey{c.Start, c.Direction}] {
					ps[i], errs[i] = pieceOf(c, r.want)
				}
			}
		})
	}
	wg.Wait()
	return ps, errs
}

// open feeds add the merges of the open minutes in [from, to) in r's
// direction (all directions together when r has none): from the cache
// while the minute's write generation is the one they were merged at, else
// merged from the minute's rollups. Nothing is stored.
func (r *reader) open(ctx context.Context, from, to time.Time, add func(time.Time, model.Direction, part)) error {
	// Generations before rollups, as for compactions.
	gens, err := r.cs.RollupGenerations(ctx, r.service, time.Minute, from, to)
	if err != nil {
		return fmt.Errorf("read rollup generations of %s: %w", r.service, err)
	}
	var miss []time.Time
	for t := from; t.Before(to); t = t.Add(time.Minute) {
		g := gens[t]
		if g == 0 {
			continue // never written: no rollup
		}
		if p := r.cached(r.key(r.dir, time.Minute, t, g)); p != nil {
			add(t, r.dir, p)
		} else {
			miss = append(miss, t)
		}
	}
	for _, run := range runs(miss, time.Minute) {
		rs, err := r.st.Rollups(ctx, store.RollupFilter{From: run[0], To: run[1], Service: r.service, Direction: r.dir})
		if err != nil {
			return err
		}
		accs := map[time.Time]*acc{}
		for _, x := range rs {
			t := x.Minute.UTC()
			a := accs[t]
			if a == nil {
				a = newAcc(r.want)
				accs[t] = a
			}
			if err := a.addRollup(x); err != nil {
				for _, a := range accs {
					a.release()
				}
				return err
			}
		}
		for t := run[0]; t.Before(run[1]); t = t.Add(time.Minute) {
			if a := accs[t]; a != nil {
				p := a.piece(r.want)
				a.release()
				r.keep(r.key(r.dir, time.Minute, t, gens[t]), p)
				add(t, r.dir, p)
			}
		}
	}
	return nil
}

// runs groups sorted period starts into runs of consecutive periods,
// [from, to) each.
func runs(starts []time.Time, period time.Duration) [][2]time.Time {
	var out [][2]time.Time
	for _, t := range starts {
		if n := len(out); n > 0 && out[n-1][1].Equal(t) {
			out[n-1][1] = t.Add(period)
			continue
		}
		out = append(out, [2]time.Time{t, t.Add(period)})
	}
	return out
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
