package rollup

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// build merges the given periods (sorted starts) per direction and stores
// the merges as compactions. Minutes are merged from their rollups; hours
// from their minutes' compactions, built first where missing. feed, when
// not nil, is given each period and direction with rollups, its generation
// and its merge (all three histograms), which is valid during the call
// only.
//
// The generations are read before what is merged: a rollup written after
// that read bumps the generation, so a compaction that might miss it is
// never taken as current.
func (r *reader) build(ctx context.Context, period time.Duration, starts []time.Time, feed feedFunc) error {
	if len(starts) == 0 {
		return nil
	}
	if period == time.Hour {
		return r.buildHours(ctx, starts, feed)
	}
	return r.buildMinutes(ctx, starts, feed)
}

type feedFunc func(t time.Time, d model.Direction, gen int64, a *acc)

// builder collects the compactions of one build, encoding each period's
// merges as soon as the period is complete.
type builder struct {
	r      *reader
	period time.Duration
	gens   map[time.Time]int64
	feed   feedFunc
	accs   map[pieceKey]*acc
	out    []store.Compaction
}

func (r *reader) newBuilder(period time.Duration, gens map[time.Time]int64, feed feedFunc) *builder {
	return &builder{r: r, period: period, gens: gens, feed: feed, accs: map[pieceKey]*acc{}}
}

func (b *builder) acc(t time.Time, d model.Direction) *acc {
	k := pieceKey{t, d}
	a := b.accs[k]
	if a == nil {
		a = newAcc(store.AllHistograms) // compactions are built whole
		b.accs[k] = a
	}
	return a
}

// finish encodes the compactions of period t: one per direction (empty
// where no rollup has it), at the period's generation.
func (b *builder) finish(t time.Time) error {
	ds := append([]model.Direction(nil), directions...)
	for k := range b.accs {
		if k.start.Equal(t) && k.dir != model.Inbound && k.dir != model.Outbound {
			ds = append(ds, k.dir)
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	for _, d := range ds {
		k := pieceKey{t, d}
		c := store.Compaction{Service: b.r.service, Direction: d, Start: t, Period: b.period, Generation: b.gens[t]}
		if a := b.accs[k]; a != nil {
			var err error
			if c, err = a.compaction(c); err != nil {
				return fmt.Errorf("compaction %s %s/%s %v: %w", t.Format(time.RFC3339), b.r.service, d, b.period, err)
			}
			if b.feed != nil && !a.empty() {
				b.feed(t, d, b.gens[t], a)
			}
			a.release()
			delete(b.accs, k)
		}
		b.out = append(b.out, c)
	}
	return nil
}

func (b *builder) release() {
	for _, a := range b.accs {
		a.release()
	}
	b.accs = map[pieceKey]*acc{}
}

func (b *builder) write(ctx context.Context) error {
	if len(b.out) == 0 {
		return nil
	}
	if err := b.r.cs.WriteCompactions(ctx, b.out); err != nil {
		return fmt.Errorf("write compactions of %s: %w", b.r.service, err)
	}
	return nil
}

func (r *reader) buildMinutes(ctx context.Context, starts []time.Time, feed feedFunc) error {
	gens, err := r.cs.RollupGenerations(ctx, r.service, time.Minute, starts[0], starts[len(starts)-1].Add(time.Minute))
	if err != nil {
		return fmt.Errorf("read rollup generations of %s: %w", r.service, err)
	}
	// A minute without a generation was never written: it holds no
	// rollup, and needs no compaction.
	var written []time.Time
	for _, t := range starts {
		if gens[t] > 0 {
			written = append(written, t)
		}
	}
	b := r.newBuilder(time.Minute, gens, feed)
	defer b.release()
	for _, run := range runs(written, time.Minute) {
		rs, err := r.st.Rollups(ctx, store.RollupFilter{From: run[0], To: run[1], Service: r.service})
		if err != nil {
			return err
		}
		// Rollups come by minute: each minute is encoded when the next
		// begins, so that only one minute's sums are held.
		next := run[0]
		for _, x := range rs {
			t := x.Minute.UTC()
			for ; next.Before(t); next = next.Add(time.Minute) {
				if err := b.finish(next); err != nil {
					return err
				}
			}
			if err := b.acc(t, x.Key.Direction).addRollup(x); err != nil {
				return err
			}
		}
		for ; next.Before(run[1]); next = next.Add(time.Minute) {
			if err := b.finish(next); err != nil {
				return err
			}
		}
	}
	if err := b.write(ctx); err != nil {
		return err
	}
	return nil
}

func (r *reader) buildHours(ctx context.Context, hours []time.Time, feed feedFunc) error {
	gens, err := r.cs.RollupGenerations(ctx, r.service, time.Hour, hours[0], hours[len(hours)-1].Add(time.Hour))
	if err != nil {
		return fmt.Errorf("read rollup generations of %s: %w", r.service, err)
	}
	// The minutes' compactions, read (or built) after the hours'
	// generations: each holds every rollup of its minute written before it
	// is read, so the hour holds every rollup written before its generation
	// was read.
	minutes := &reader{cs: r.cs, st: r.st, service: r.service, want: store.AllHistograms, cache: r.cache, noFill: true}
	b := r.newBuilder(time.Hour, gens, feed)
	defer b.release()
	for _, h := range hours {
		nonEmpty := false
		err := minutes.pieces(ctx, time.Minute, h, h.Add(time.Hour), func(_ time.Time, d model.Direction, p part) {
			if p.isEmpty() {
				return // an empty direction
			}
			nonEmpty = true
			p.addTo(b.acc(h, d))
		})
		if err != nil {
			return err
		}
		// An hour never written and without rollups needs no compaction.
		// (An hour can have rollups and no generation when DropBefore cut
		// inside it: it is stored at generation 0, current until the next
		// write.)
		if gens[h] > 0 || nonEmpty {
			if err := b.finish(h); err != nil {
				return err
			}
		}
	}
	if err := b.write(ctx); err != nil {
		return err
	}
	return nil
}
