package storetest

import (
	"fmt"
	"maps"
	"math/rand"
	"testing"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// testRollupQuery checks that rollup.Query, which reads through the store's
// compactions, merges exactly what a plain merge of the rollups gives: on
// first use, from the compactions, and after late rollups land in periods
// already compacted.
func testRollupQuery(t *testing.T, st store.Store) {
	c := ctx(t)
	if _, ok := st.(store.Compactions); !ok {
		t.Fatalf("%T does not keep compactions", st)
	}
	r := rand.New(rand.NewSource(7))
	now := minute0.Add(26 * time.Second)
	keys := []model.HopKey{
		key("api", model.Inbound, "web", "/users"),
		key("api", model.Inbound, "web", "/orders"),
		key("api", model.Inbound, "batch", "/users"),
		key("api", model.Outbound, "db", "/query"),
		key("web", model.Outbound, "api", "/users"),
	}
	// A pool of encoded histograms keeps the test about the store, not the
	// encoder.
	var pool []string
	for range 40 {
		v := make([]int64, 1+r.Intn(20))
		for i := range v {
			v[i] = 100 + r.Int63n(50000)
		}
		pool = append(pool, histogram(t, v...))
	}
	pick := func() string { return pool[r.Intn(len(pool))] }
	var rs []store.Rollup
	for m := minute0.Add(-130 * time.Minute); !m.After(minute0); m = m.Add(time.Minute) {
		for _, k := range keys {
			if r.Intn(3) == 0 {
				continue // a quiet minute for this key
			}
			for _, src := range []string{"proxy-a", "proxy-b"}[:1+r.Intn(2)] {
				rs = append(rs, store.Rollup{Minute: m, Key: k, Source: src, Count: 1 + r.Int63n(100),
					Total: pick(), Upstream: pick(), Overhead: pick()})
			}
		}
	}
	must(t, st.WriteRollups(c, rs))

	q := rollup.Querier{Store: st, Now: func() time.Time { return now }}
	filters := []store.RollupFilter{
		{Service: "api", From: now.Add(-2*time.Hour - 17*time.Second), To: now},
		{Service: "api", Direction: model.Inbound, From: now.Add(-150 * time.Minute), To: now.Add(time.Minute)},
		{Service: "api", Direction: model.Outbound, From: now.Add(-2 * time.Hour).Truncate(time.Hour), To: now.Truncate(time.Hour)},
		{Service: "api", From: now.Add(-10 * time.Minute), To: now},
		{Service: "web", From: now.Add(-40 * time.Minute), To: now},
		{Service: "nobody", From: now.Add(-2 * time.Hour), To: now},
	}
	var wants []*rollup.Merged
	plainMerges := func() {
		wants = wants[:0]
		for _, f := range filters {
			plain, err := st.Rollups(c, f)
			must(t, err)
			want, err := rollup.Merge(plain)
			must(t, err)
			wants = append(wants, want)
		}
	}
	check := func(stage string) {
		t.Helper()
		for i, f := range filters {
			got, err := q.Query(c, f)
			must(t, err)
			if err := sameMerge(got, wants[i]); err != nil {
				t.Errorf("%s: filter %+v: %v", stage, f, err)
			}
		}
	}
	plainMerges()
	check("first use")
	cs := st.(store.Compactions)
	hours, err := cs.CurrentCompactions(c, store.CompactionQuery{Service: "api", Period: time.Hour, From: now.Add(-3 * time.Hour), To: now})
	must(t, err)
	if len(hours) == 0 {
		t.Fatalf("no hourly compactions after a 3-hour query")
	}
	check("from compactions")

	// Late rollups: one replaced inside a compacted hour, one new in a
	// compacted minute.
	late := rs[len(rs)/3]
	late.Total, late.Count = histogram(t, 7, 7, 7, 900000), 1000
	extra := newRollup(t, now.Add(-20*time.Minute), key("api", model.Inbound, "late", "/x"), "proxy-c", 123456)
	must(t, st.WriteRollups(c, []store.Rollup{late, extra}))
	plainMerges()
	check("after late rollups")
}

// sameMerge reports how two merges differ.
func sameMerge(got, want *rollup.Merged) error {
	if got.Count != want.Count {
		return fmt.Errorf("count %d, want %d", got.Count, want.Count)
	}
	if got.Rollups != want.Rollups {
		return fmt.Errorf("%d rollups, want %d", got.Rollups, want.Rollups)
	}
	if !maps.Equal(got.ByClass, want.ByClass) {
		return fmt.Errorf("by status class %v, want %v", got.ByClass, want.ByClass)
	}
	for _, h := range []struct {
		name      string
		got, want interface{ TotalCount() int64 }
		equal     bool
	}{
		{"total", got.Total, want.Total, got.Total.Equals(want.Total)},
		{"upstream", got.Upstream, want.Upstream, got.Upstream.Equals(want.Upstream)},
		{"overhead", got.Overhead, want.Overhead, got.Overhead.Equals(want.Overhead)},
	} {
		if !h.equal {
			return fmt.Errorf("%s histogram differs (%d values, want %d)", h.name, h.got.TotalCount(), h.want.TotalCount())
		}
	}
	return nil
}
