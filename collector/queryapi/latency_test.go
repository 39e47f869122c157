package queryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
	"github.com/meshlens/meshlens/store/sqlite"
)

// countingStore counts the rollup reads of the handler.
type countingStore struct {
	*sqlite.Store
	reads atomic.Int64
}

func (s *countingStore) Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	s.reads.Add(1)
	return s.Store.Rollups(ctx, f)
}

// TestLatencyEqualsPlain: /api/v1/latency, which reads a whole service
// through compactions, answers byte for byte what the plain computation
// (every rollup of the window read and merged) gives: percentiles, requests
// per status class, error and request rates, rollup count. Checked with
// the compactions built on demand, by the background compactor, and after
// late rollups; and a closed window, once compacted, reads no rollup.
func TestLatencyEqualsPlain(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	st := &countingStore{Store: lite}
	now := time.Date(2026, 11, 20, 15, 0, 40, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 5))
	var keys []model.HopKey
	for _, dir := range []model.Direction{model.Inbound, model.Outbound} {
		for _, peer := range []string{"web", "ledger"} {
			for _, class := range []string{"2xx", "4xx", "5xx"} {
				keys = append(keys, model.HopKey{Service: "checkout", Direction: dir, Peer: peer, Route: "/buy", Method: "POST", StatusClass: class})
			}
		}
	}
	keys = append(keys, model.HopKey{Service: "web", Direction: model.Outbound, Peer: "checkout", Route: "/buy", Method: "POST", StatusClass: "2xx"})
	rollupAt := func(m time.Time, k model.HopKey, src string) store.Rollup {
		n := 1 + r.IntN(30)
		vals := make([]int64, n)
		for i := range vals {
			vals[i] = 200 + int64(r.ExpFloat64()*30000)
		}
		return store.Rollup{Minute: m, Key: k, Source: src, Count: int64(n),
			Total: encode(t, vals), Upstream: encode(t, vals[:n/2+1]), Overhead: encode(t, []int64{int64(1 + r.IntN(90))})}
	}
	var rs []store.Rollup
	for m := now.Add(-190 * time.Minute).Truncate(time.Minute); !m.After(now); m = m.Add(time.Minute) {
		for _, k := range keys {
			if k.StatusClass != "2xx" && r.IntN(3) != 0 {
				continue
			}
			for _, src := range []string{"proxy-a/1", "proxy-b/1"}[:1+r.IntN(2)] {
				rs = append(rs, rollupAt(m, k, src))
			}
		}
	}
	if err := st.WriteRollups(ctx, rs); err != nil {
		t.Fatal(err)
	}
	h := newHandler(st, slog.New(slog.DiscardHandler), func() time.Time { return now })

	filters := []store.RollupFilter{
		{Service: "checkout", Direction: model.Inbound, From: now.Add(-3 * time.Hour), To: now.Truncate(time.Minute).Add(time.Minute)},
		{Service: "checkout", Direction: model.Outbound, From: now.Add(-150*time.Minute - 13*time.Second), To: now.Add(-4 * time.Minute)},
		{Service: "checkout", Direction: model.Inbound, From: now.Add(-70 * time.Minute).Truncate(time.Hour), To: now.Truncate(time.Hour)},
		{Service: "checkout", Direction: model.Inbound, From: now.Add(-10 * time.Minute), To: now},
		{Service: "web", Direction: model.Outbound, From: now.Add(-3 * time.Hour), To: now},
		{Service: "nobody", Direction: model.Inbound, From: now.Add(-3 * time.Hour), To: now},
	}
	get := func(f store.RollupFilter) string {
		t.Helper()
		q := url.Values{"service": {f.Service}, "direction": {string(f.Direction)},
			"from": {f.From.Format(time.RFC3339Nano)}, "to": {f.To.Format(time.RFC3339Nano)}}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/latency?"+q.Encode(), nil))
		if w.Code != 200 {
			t.Fatalf("%v: %d %s", f, w.Code, w.Body)
		}
		return w.Body.String()
	}
	plain := func(f store.RollupFilter) string {
		t.Helper()
		all, err := lite.Rollups(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := MergeRollups(all)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(latencyOf(f, m)); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	check := func(stage string) {
		t.Helper()
		for _, f := range filters {
			if got, want := get(f), plain(f); got != want {
				t.Errorf("%s: %s %s [%v, %v):\n%s\nplain:\n%s", stage, f.Service, f.Direction, f.From, f.To, got, want)
			}
		}
	}
	check("compactions built on demand")
	check("compactions built on demand, read again")

	// The background compactor, as the collector runs it.
	c := &rollup.Compactor{Store: st, Now: func() time.Time { return now }}
	drain := func() {
		t.Helper()
		for {
			n, err := c.Tick(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	drain()
	check("after the compactor")
	st.reads.Store(0)
	get(filters[2]) // a closed window
	if n := st.reads.Load(); n != 0 {
		t.Errorf("a closed window read rollups %d times after the compactor", n)
	}

	// Late rollups, one replacing a stored one and one new, in periods
	// compacted already.
	late := rollupAt(now.Add(-100*time.Minute).Truncate(time.Minute), keys[2], "proxy-late/9")
	replaced := rs[len(rs)/3]
	replaced.Total, replaced.Count = encode(t, []int64{5, 5, 900000}), 3
	if err := st.WriteRollups(ctx, []store.Rollup{late, replaced}); err != nil {
		t.Fatal(err)
	}
	check("late rollups")
	drain()
	check("late rollups, compacted")
}
