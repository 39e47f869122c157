package storetest

import (
	"context"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// testCompactions checks the store side of compactions: dirty periods,
// what CurrentCompactions returns, and that a compaction is never replaced
// by one of an older generation.
func testCompactions(t *testing.T, st store.Store) {
	c := ctx(t)
	cs := st.(store.Compactions)
	hour := minute0.Truncate(time.Hour)
	k5 := model.HopKey{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/u", Method: "GET", StatusClass: "5xx"}
	var rs []store.Rollup
	for i := range 3 {
		m := hour.Add(time.Duration(i) * time.Minute)
		rs = append(rs, newRollup(t, m, key("api", model.Inbound, "web", "/u"), "p", 10, 20), newRollup(t, m, k5, "p", 30))
	}
	rs = append(rs, newRollup(t, hour.Add(time.Minute), key("web", model.Outbound, "api", "/u"), "p", 5))
	must(t, st.WriteRollups(c, rs))

	period := func(svc string, length time.Duration, start time.Time) store.Period {
		return store.Period{Service: svc, Length: length, Start: start}
	}
	dirty := func(closedBy time.Time, limit int) []store.Period {
		t.Helper()
		ps, err := cs.DirtyPeriods(c, closedBy, limit)
		must(t, err)
		return ps
	}
	// By hour+3m the three minutes are closed, the hour is not; newest
	// first.
	want := []store.Period{period("api", time.Minute, hour.Add(2*time.Minute)), period("api", time.Minute, hour.Add(time.Minute)),
		period("web", time.Minute, hour.Add(time.Minute)), period("api", time.Minute, hour)}
	if got := dirty(hour.Add(3*time.Minute), 10); !slices.Equal(got, want) {
		t.Fatalf("dirty periods by %v: %v, want %v", hour.Add(3*time.Minute), got, want)
	}
	if got := dirty(hour.Add(2*time.Minute), 10); !slices.Equal(got, want[1:]) {
		t.Errorf("dirty periods by %v: %v, want %v", hour.Add(2*time.Minute), got, want[1:])
	}
	if got := dirty(hour.Add(3*time.Minute), 2); !slices.Equal(got, want[:2]) {
		t.Errorf("2 dirty periods: %v, want %v", got, want[:2])
	}
	if got := dirty(hour.Add(time.Hour), 10); len(got) != 6 || got[len(got)-1] != period("web", time.Hour, hour) {
		t.Errorf("dirty periods by the hour's end: %v, want the 4 minutes and 2 hours", got)
	}

	gens, err := cs.RollupGenerations(c, "api", time.Minute, hour, hour.Add(time.Hour))
	must(t, err)
	g := gens[hour]
	if g == 0 || len(gens) != 3 {
		t.Fatalf("generations %v", gens)
	}
	comp := func(gen, count int64) []store.Compaction {
		return []store.Compaction{
			{Service: "api", Direction: model.Inbound, Start: hour, Period: time.Minute, Generation: gen, Count: count, Rollups: 2,
				ByClass: map[string]int64{"2xx": 2, "5xx": count - 2}, Total: histogram(t, 1, 2), Upstream: histogram(t, 3)},
			{Service: "api", Direction: model.Outbound, Start: hour, Period: time.Minute, Generation: gen},
		}
	}
	must(t, cs.WriteCompactions(c, comp(g, 3)))
	if got := dirty(hour.Add(3*time.Minute), 10); !slices.Equal(got, want[:3]) {
		t.Errorf("after compacting %v: dirty %v, want %v", hour, got, want[:3])
	}
	q := store.CompactionQuery{Service: "api", Period: time.Minute, From: hour, To: hour.Add(time.Hour)}
	got, err := cs.CurrentCompactions(c, q)
	must(t, err)
	if len(got) != 2 || got[0].Direction != model.Inbound || got[0].Count != 3 || got[0].Rollups != 2 || got[0].ByClass["5xx"] != 1 ||
		got[0].Total != "" || got[1].ByClass != nil || !got[0].Start.Equal(hour) || got[0].Generation != g {
		t.Fatalf("keys only: %+v", got)
	}
	q.Histograms = store.TotalHistogram
	q.Starts = []time.Time{hour, hour.Add(time.Minute)}
	got, err = cs.CurrentCompactions(c, q)
	must(t, err)
	if len(got) != 2 || got[0].Total != comp(g, 3)[0].Total || got[0].Upstream != "" {
		t.Fatalf("total only: %+v", got)
	}
	q.Starts = []time.Time{hour.Add(time.Minute)}
	if got, err = cs.CurrentCompactions(c, q); err != nil || len(got) != 0 {
		t.Fatalf("at a start without compactions: %v, %v", got, err)
	}
	// An older generation never replaces a newer one.
	must(t, cs.WriteCompactions(c, comp(g-1, 99)))
	q.Starts = nil
	if got, err = cs.CurrentCompactions(c, q); err != nil || len(got) != 2 || got[0].Count != 3 {
		t.Fatalf("after writing an older generation: %+v, %v", got, err)
	}
	// A late rollup makes the minute and hour dirty, and the compaction
	// no longer current.
	must(t, st.WriteRollups(c, []store.Rollup{newRollup(t, hour.Add(30*time.Second), k5, "late", 7)}))
	if got, err = cs.CurrentCompactions(c, q); err != nil || len(got) != 0 {
		t.Fatalf("after a late rollup: %+v, %v", got, err)
	}
	if got := dirty(hour.Add(3*time.Minute), 10); !slices.Contains(got, period("api", time.Minute, hour)) {
		t.Errorf("after a late rollup: dirty %v lacks %v", got, hour)
	}
}

// countingStore counts the rollups read, and can write late rollups just
// after a read, as a collector racing a compaction build would.
type countingStore struct {
	store.Store
	store.Compactions
	mu    sync.Mutex
	reads int
	after func()
}

func (s *countingStore) Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	s.mu.Lock()
	s.reads++
	after := s.after
	s.after = nil
	s.mu.Unlock()
	rs, err := s.Store.Rollups(ctx, f)
	if after != nil {
		after()
	}
	return rs, err
}

func (s *countingStore) Close() error { return nil } // the suite closes the store

// testCompactor checks rollup.Compactor: it builds every closed period,
// in bounded ticks, so that a query of a closed window reads no rollup;
// late rollups, also ones written while it builds, are never hidden.
func testCompactor(t *testing.T, st store.Store) {
	c := ctx(t)
	r := rand.New(rand.NewSource(11))
	now := minute0.Add(26 * time.Second)
	var pool []string
	for range 30 {
		v := make([]int64, 1+r.Intn(20))
		for i := range v {
			v[i] = 100 + r.Int63n(50000)
		}
		pool = append(pool, histogram(t, v...))
	}
	pick := func() string { return pool[r.Intn(len(pool))] }
	keys := []model.HopKey{
		key("api", model.Inbound, "web", "/users"),
		{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/users", Method: "GET", StatusClass: "5xx"},
		{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/users", Method: "POST", StatusClass: "4xx"},
		key("api", model.Outbound, "db", "/query"),
		key("web", model.Outbound, "api", "/users"),
	}
	var rs []store.Rollup
	for m := minute0.Add(-150 * time.Minute); !m.After(minute0); m = m.Add(time.Minute) {
		for _, k := range keys {
			if r.Intn(4) == 0 {
				continue
			}
			rs = append(rs, store.Rollup{Minute: m, Key: k, Source: "proxy-" + string(rune('a'+r.Intn(3))), Count: 1 + r.Int63n(100),
				Total: pick(), Upstream: pick(), Overhead: pick()})
		}
	}
	must(t, st.WriteRollups(c, rs))

	cs := st.(store.Compactions)
	closed := now.Add(-rollup.DefaultLateness).Truncate(time.Minute)
	comp := &rollup.Compactor{Store: st, Now: func() time.Time { return now }, Batch: 16}
	drain := func(stage string) {
		t.Helper()
		for tick := 0; ; tick++ {
			n, err := comp.Tick(c)
			must(t, err)
			if n > 16 {
				t.Fatalf("%s: a tick took %d periods, batch 16", stage, n)
			}
			if n == 0 {
				break
			}
			if tick > 100 {
				t.Fatalf("%s: still dirty periods after %d ticks", stage, tick)
			}
		}
		if ps, err := cs.DirtyPeriods(c, closed, 100); err != nil || len(ps) != 0 {
			t.Fatalf("%s: dirty periods left: %v, %v", stage, ps, err)
		}
	}
	drain("first")
	// Every closed hour and minute with rollups has its compactions.
	for _, p := range []struct {
		length   time.Duration
		from, to time.Time
		want     int
	}{
		{time.Hour, minute0.Add(-150 * time.Minute).Truncate(time.Hour), closed.Truncate(time.Hour), 2 * int(closed.Truncate(time.Hour).Sub(minute0.Add(-150*time.Minute).Truncate(time.Hour))/time.Hour)},
		{time.Minute, minute0.Add(-150 * time.Minute), closed, 2 * int(closed.Sub(minute0.Add(-150*time.Minute))/time.Minute)},
	} {
		got, err := cs.CurrentCompactions(c, store.CompactionQuery{Service: "api", Period: p.length, From: p.from, To: p.to})
		must(t, err)
		if len(got) != p.want {
			t.Errorf("%v compactions of api in [%v, %v): %d, want %d", p.length, p.from, p.to, len(got), p.want)
		}
	}

	counting := &countingStore{Store: st, Compactions: cs}
	q := rollup.Querier{Store: counting, Now: func() time.Time { return now }, Cache: rollup.NewCache(1 << 20)}
	check := func(stage string, f store.RollupFilter, maxReads int) {
		t.Helper()
		plain, err := st.Rollups(c, f)
		must(t, err)
		want, err := rollup.Merge(plain)
		must(t, err)
		counting.mu.Lock()
		counting.reads = 0
		counting.mu.Unlock()
		got, err := q.Query(c, f)
		must(t, err)
		if err := sameMerge(got, want); err != nil {
			t.Errorf("%s: %+v: %v", stage, f, err)
		}
		if counting.reads > maxReads {
			t.Errorf("%s: %+v: %d rollup reads, want at most %d", stage, f, counting.reads, maxReads)
		}
	}
	windows := []store.RollupFilter{
		{Service: "api", From: minute0.Add(-150 * time.Minute), To: closed},
		{Service: "api", Direction: model.Inbound, From: minute0.Add(-97 * time.Minute), To: closed.Add(-7 * time.Minute)},
		{Service: "web", From: minute0.Add(-2 * time.Hour), To: closed},
	}
	for _, f := range windows {
		check("after the compactor", f, 0) // closed windows: compactions only
	}
	check("with open minutes", store.RollupFilter{Service: "api", From: minute0.Add(-2 * time.Hour), To: now}, 1)

	// Late rollups into compacted periods: never hidden, and rebuilt at
	// the next tick.
	late := rs[len(rs)/4]
	late.Total, late.Count = histogram(t, 7, 7, 7, 900000), 1000
	extra := newRollup(t, minute0.Add(-100*time.Minute), keys[1], "proxy-late", 123456)
	must(t, st.WriteRollups(c, []store.Rollup{late, extra}))
	ps, err := cs.DirtyPeriods(c, closed, 100)
	must(t, err)
	wantDirty := []store.Period{{Service: "api", Length: time.Minute, Start: late.Minute}, {Service: "api", Length: time.Minute, Start: extra.Minute},
		{Service: "api", Length: time.Hour, Start: late.Minute.Truncate(time.Hour)}, {Service: "api", Length: time.Hour, Start: extra.Minute.Truncate(time.Hour)}}
	for _, p := range wantDirty {
		if !slices.Contains(ps, p) {
			t.Errorf("after 2 late rollups: dirty %v lacks %v", ps, p)
		}
	}
	for _, f := range windows {
		check("late rollups, before the compactor", f, 4)
	}
	drain("after late rollups")
	for _, f := range windows {
		check("late rollups, after the compactor", f, 0)
	}

	// A rollup written while the compactor builds a minute (after it read
	// the minute's rollups, before it stores the compaction) leaves the
	// minute dirty, and is in every query. (Batch 1: the minute only, not its hour, whose build
	// would build the minute again.)
	racing := &countingStore{Store: st, Compactions: cs}
	raced := newRollup(t, minute0.Add(-50*time.Minute), keys[2], "proxy-race", 4242)
	racing.after = func() { must(t, st.WriteRollups(c, []store.Rollup{raced})) }
	must(t, st.WriteRollups(c, []store.Rollup{newRollup(t, minute0.Add(-50*time.Minute), keys[0], "proxy-first", 1)}))
	raceComp := &rollup.Compactor{Store: racing, Now: func() time.Time { return now }, Batch: 1}
	_, err = raceComp.Tick(c)
	must(t, err)
	ps, err = cs.DirtyPeriods(c, closed, 100)
	must(t, err)
	if !slices.Contains(ps, store.Period{Service: "api", Length: time.Minute, Start: minute0.Add(-50 * time.Minute)}) {
		t.Errorf("a rollup written during the build: dirty %v lacks its minute", ps)
	}
	for _, f := range windows {
		check("a rollup written during the build", f, 4)
	}
	drain("after the race")
	for _, f := range windows {
		check("after the race, compacted", f, 0)
	}
}
