package rollup

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"time"

	"github.com/meshlens/meshlens/store"
)

// Compactor builds the compactions of closed periods in the background, as
// they close, so that no query has to build them: every minute and hour of
// every service with rollups written since its compactions were built (the
// store's dirty periods, newest first), once it is Lateness past its end.
// A late rollup makes its minute and hour dirty again; they are rebuilt at
// the next tick, and until then queries, which use only current
// compactions, build or read around them.
//
// Each tick builds at most Batch periods; Run ticks every Interval, and
// again after Pause while a tick finds a full batch (a backlog, e.g. after
// an upgrade or a stop). Several collectors sharing one PostgreSQL each run
// one, and a tick runs only while it holds the store's compactor lock
// (store.CompactorLock): the others' ticks find it taken and do nothing, so
// one period is not built by every collector at once. Without the lock a
// period built twice would cost work, never correctness (a compaction
// never replaces one of a newer generation).
type Compactor struct {
	Store store.Store
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Lateness: a minute is compacted once it ended Lateness ago; 0 is
	// DefaultLateness (the Querier's default: what it reads as open, the
	// compactor leaves alone).
	Lateness time.Duration
	// Batch is the most periods one tick builds; 0 is DefaultBatch.
	Batch int
	// Interval is the time between ticks; 0 is DefaultInterval.
	Interval time.Duration
	// Pause is the time between ticks while a backlog drains; 0 is
	// DefaultPause.
	Pause time.Duration
	// Logger; nil discards.
	Logger *slog.Logger

	failed map[store.Period]time.Time // periods whose build failed, retried after RetryFailed
}

// Compactor defaults.
const (
	DefaultBatch    = 64
	DefaultInterval = 10 * time.Second
	DefaultPause    = 50 * time.Millisecond
	// RetryFailed is how long a period whose build failed (a corrupt
	// rollup) is left aside, so that it does not hold up the others.
	RetryFailed = time.Hour
)

// Tick builds the compactions of up to Batch dirty closed periods and
// returns how many periods it took (built, or failed and left aside).
func (c *Compactor) Tick(ctx context.Context) (int, error) {
	cs, st, ok := store.CompactionsOf(c.Store)
	if !ok {
		return 0, nil
	}
	if l, ok := st.(store.CompactorLock); ok {
		unlock, got, err := l.TryLockCompactor(ctx)
		if err != nil {
			return 0, err
		}
		if !got {
			return 0, nil // another collector's compactor is at work
		}
		defer unlock()
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	t := now()
	for p, at := range c.failed {
		if t.Sub(at) > RetryFailed {
			delete(c.failed, p)
		}
	}
	periods, err := cs.DirtyPeriods(ctx, closedBy(t, c.Lateness), batch+len(c.failed))
	if err != nil {
		return 0, err
	}
	type group struct {
		service string
		length  time.Duration
	}
	groups := map[group][]time.Time{}
	var order []group
	n := 0
	for _, p := range periods {
		if _, bad := c.failed[p]; bad || n == batch {
			continue
		}
		n++
		g := group{p.Service, p.Length}
		if groups[g] == nil {
			order = append(order, g)
		}
		groups[g] = append(groups[g], p.Start)
	}
	// Hours first: an hour's build builds its minutes that need it and
	// merges them as they are built, where a minute built before would be
	// read back and decoded; those minutes are then left out.
	sort.SliceStable(order, func(i, j int) bool { return order[i].length > order[j].length })
	type hour struct {
		service string
		start   int64
	}
	builtHours := map[hour]bool{}
	var errs []error
	for _, g := range order {
		if ctx.Err() != nil {
			break
		}
		var starts []time.Time
		for _, s := range groups[g] {
			if g.length != time.Hour && builtHours[hour{g.service, s.Truncate(time.Hour).Unix()}] {
				continue
			}
			starts = append(starts, s)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
		r := &reader{cs: cs, st: st, service: g.service, want: store.AllHistograms}
		build := func(starts []time.Time) error {
			if err := r.build(ctx, g.length, starts, nil); err != nil {
				return err
			}
			if g.length == time.Hour {
				for _, s := range starts {
					builtHours[hour{g.service, s.Unix()}] = true
				}
			}
			return nil
		}
		if err := build(starts); err != nil {
			if ctx.Err() != nil {
				break
			}
			// One by one, to leave aside only the periods that fail.
			for _, s := range starts {
				if err := build([]time.Time{s}); err != nil && ctx.Err() == nil {
					if c.failed == nil {
						c.failed = map[store.Period]time.Time{}
					}
					c.failed[store.Period{Service: g.service, Length: g.length, Start: s}] = t
					errs = append(errs, err)
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// Run ticks until ctx is done.
func (c *Compactor) Run(ctx context.Context) {
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	interval, pause := c.Interval, c.Pause
	if interval <= 0 {
		interval = DefaultInterval
	}
	if pause <= 0 {
		pause = DefaultPause
	}
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		n, err := c.Tick(ctx)
		if err != nil && ctx.Err() == nil {
			logger.Warn("rollup compactor: build compactions", "err", err)
		}
		next := interval
		if n >= batch && err == nil {
			next = pause // a backlog: go on
		}
		timer.Reset(next)
	}
}
