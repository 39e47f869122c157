package storetest

import (
	"context"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// DayOfRollups is the seed of the percentile benchmark: 24 hours of minute
// rollups ending at end for service "checkout" and its neighbours, as a mesh
// would write them: each minute, every hop key that saw traffic from each of
// two proxy replicas. It returns the rollups and the number of hop keys.
func DayOfRollups(end time.Time) ([]store.Rollup, int) {
	r := rand.New(rand.NewSource(1))
	var keys []model.HopKey
	routes := []string{"/cart", "/cart/items", "/checkout", "/orders/{id}"}
	for _, peer := range []string{"frontend", "mobile-bff"} {
		for _, route := range routes {
			for _, method := range []string{"GET", "POST"} {
				for _, status := range []string{"2xx", "4xx", "5xx"} {
					keys = append(keys, model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: peer,
						Route: route, Method: method, StatusClass: status})
				}
			}
		}
	}
	for _, peer := range []string{"payments", "inventory", "shipping", "postgres"} {
		for _, status := range []string{"2xx", "5xx"} {
			keys = append(keys, model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: peer,
				Route: "/", Method: "POST", StatusClass: status})
		}
	}
	// Neighbours, so that the query has to pick one service out.
	for _, svc := range []string{"frontend", "payments"} {
		for _, route := range routes[:3] {
			keys = append(keys, model.HopKey{Service: svc, Direction: model.Inbound, Peer: "edge", Route: route, Method: "GET", StatusClass: "2xx"})
		}
	}
	// A pool of realistic histograms: a log-normal body with a tail.
	var pool []string
	for range 64 {
		h := hdr.New()
		n := 50 + r.Intn(2000)
		for range n {
			v := int64(2000 * r.ExpFloat64() * r.ExpFloat64())
			if r.Intn(100) == 0 {
				v *= 40
			}
			hdr.Record(h, v)
		}
		s, err := hdr.Encode(h)
		if err != nil {
			panic(err)
		}
		pool = append(pool, s)
	}
	var rs []store.Rollup
	start := end.Add(-24 * time.Hour).Truncate(time.Minute)
	for m := start; m.Before(end); m = m.Add(time.Minute) {
		for i, k := range keys {
			// 2xx keys see traffic every minute, errors now and then.
			if k.StatusClass != "2xx" && r.Intn(4) != 0 {
				continue
			}
			for _, src := range []string{"proxy-0", "proxy-1"} {
				rs = append(rs, store.Rollup{Minute: m, Key: k, Source: src, Count: int64(50 + i),
					Total: pool[r.Intn(len(pool))], Upstream: pool[r.Intn(len(pool))], Overhead: pool[r.Intn(len(pool))]})
			}
		}
	}
	return rs, len(keys)
}

// BenchmarkPercentiles measures the p50/p90/p99/p99.9 of service "checkout"
// over 24 hours of minute rollups through rollup.Query. Beside ns/op of its
// sub-benchmarks it reports, once:
//
//   - ondemand-ms: the first query with no compaction built yet (it builds
//     and stores them all, as after an upgrade before the compactor ran);
//   - compact-ms: the background compactor (rollup.Compactor) building every
//     minute and hour of the day again, tick by tick, after all the rollups
//     were written again;
//   - cold-ms: the first query after that with an empty cache (a restart:
//     compactions stored, nothing decoded in memory);
//   - naive-ms: a plain merge of every rollup.
//
// "warm" repeats the query (b.N times); "warm-all-histograms" merges total,
// upstream and overhead as the latency API does; "warm-newest-minute-written"
// writes a rollup into the newest (open) minute before each query, as
// proxies do all the time, so that the query merges that minute again.
func BenchmarkPercentiles(b *testing.B, st store.Store) {
	ctx := context.Background()
	end := time.Now().UTC().Truncate(time.Minute)
	rs, nkeys := DayOfRollups(end)
	write := func() {
		for i := 0; i < len(rs); i += 5000 {
			if err := st.WriteRollups(ctx, rs[i:min(i+5000, len(rs))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	write()
	f := store.RollupFilter{Service: "checkout", From: end.Add(-24 * time.Hour), To: end.Add(time.Minute)}
	now := func() time.Time { return end.Add(30 * time.Second) }
	q := rollup.Querier{Store: st, Now: now, Only: rollup.Total, Cache: rollup.NewCache(rollup.DefaultCacheBytes)}
	percentiles := func(q rollup.Querier) []int64 {
		m, err := q.Query(ctx, f)
		if err != nil {
			b.Fatal(err)
		}
		var out []int64
		for _, p := range []float64{50, 90, 99, 99.9} {
			out = append(out, m.Total.ValueAtQuantile(p))
		}
		return out
	}
	ms := func(t0 time.Time) float64 { return float64(time.Since(t0).Microseconds()) / 1000 }
	t0 := time.Now()
	onDemand := percentiles(q)
	onDemandMs := ms(t0)

	write() // every period written again: all dirty
	t0 = time.Now()
	c := &rollup.Compactor{Store: st, Now: now}
	ticks := 0
	for ; ; ticks++ {
		n, err := c.Tick(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	compactMs := ms(t0)

	q.Cache = rollup.NewCache(rollup.DefaultCacheBytes)
	t0 = time.Now()
	cold := percentiles(q)
	coldMs := ms(t0)

	t0 = time.Now()
	plain, err := st.Rollups(ctx, f)
	if err != nil {
		b.Fatal(err)
	}
	naive, err := rollup.Merge(plain)
	if err != nil {
		b.Fatal(err)
	}
	naiveMs := ms(t0)
	for i, p := range []float64{50, 90, 99, 99.9} {
		if v := naive.Total.ValueAtQuantile(p); v != cold[i] || v != onDemand[i] {
			b.Fatalf("p%v: %d through compactions (%d built on demand), %d merged plainly", p, cold[i], onDemand[i], v)
		}
	}
	b.Logf("seeded %d rollups (%d rollups of checkout, %d hop keys); p50/p90/p99/p99.9 = %v µs; "+
		"on demand %.1f ms, compactor %.1f ms (%d ticks), cold %.1f ms, naive %.1f ms",
		len(rs), len(plain), nkeys, cold, onDemandMs, compactMs, ticks, coldMs, naiveMs)
	// Sub-benchmarks, so that the seeding above runs once.
	b.Run("warm", func(b *testing.B) {
		for range b.N {
			percentiles(q)
		}
		b.ReportMetric(onDemandMs, "ondemand-ms")
		b.ReportMetric(compactMs, "compact-ms")
		b.ReportMetric(coldMs, "cold-ms")
		b.ReportMetric(naiveMs, "naive-ms")
		b.ReportMetric(float64(len(plain)), "rollups")
	})
	b.Run("warm-all-histograms", func(b *testing.B) {
		all := q
		all.Only = 0
		for range b.N {
			if _, err := all.Query(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm-newest-minute-written", func(b *testing.B) {
		newest := rs[len(rs)-1]
		for i := range b.N {
			b.StopTimer()
			r := newest
			r.Source = fmt.Sprintf("bench-%d", i)
			if err := st.WriteRollups(ctx, []store.Rollup{r}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			percentiles(q)
		}
	})
}

// Spans returns n spans of realistic shape: traces of 4 spans over 8
// services, semantic-convention attributes, request IDs. seed varies the IDs.
func Spans(n int, seed int64, start time.Time) []store.Span {
	r := rand.New(rand.NewSource(seed))
	services := []string{"frontend", "checkout", "payments", "inventory", "shipping", "users", "search", "ads"}
	out := make([]store.Span, n)
	var trace, parent string
	var reqID string
	for i := range out {
		if i%4 == 0 {
			trace = fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64())
			reqID = fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Intn(1<<16), r.Intn(1<<16), r.Intn(1<<16), r.Int63n(1<<48))
			parent = ""
		}
		id := fmt.Sprintf("%016x", r.Uint64())
		svc := services[r.Intn(len(services))]
		route := fmt.Sprintf("/api/v%d/items/{id}", 1+r.Intn(3))
		status := "200"
		code := "unset"
		if r.Intn(50) == 0 {
			status, code = "503", "error"
		}
		out[i] = store.Span{
			TraceID: trace, SpanID: id, ParentSpanID: parent, Service: svc, Name: "GET " + route,
			Kind: []string{"server", "client"}[i%2], Start: start.Add(time.Duration(i) * 137 * time.Microsecond),
			Duration: time.Duration(200+r.Intn(50000)) * time.Microsecond, StatusCode: code, RequestID: reqID,
			Attributes: map[string]string{
				"http.request.method": "GET", "http.route": route, "http.response.status_code": status,
				"server.address": svc, "url.path": "/api/v1/items/" + fmt.Sprint(r.Intn(100000)),
				"network.protocol.version": "1.1",
			},
		}
		parent = id
	}
	return out
}
