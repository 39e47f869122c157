package queryapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
	"github.com/meshlens/meshlens/store/sqlite"
	"github.com/meshlens/meshlens/store/storetest"
)

// BenchmarkLatencyTwoHours: /api/v1/latency for one service over the last
// 2 hours of storetest.DayOfRollups (the store's percentile benchmark seed)
// on the real SQLite store, with the compactions built by the background
// compactor as in the collector: the handler reads the closed hours and
// minutes pre-merged, and the open minutes' rollups. Run with -benchtime 20x.
func BenchmarkLatencyTwoHours(b *testing.B) { benchmarkLatency(b, 2*time.Hour) }

// BenchmarkLatencyDay: the same over 24 hours.
func BenchmarkLatencyDay(b *testing.B) { benchmarkLatency(b, 24*time.Hour) }

func benchmarkLatency(b *testing.B, window time.Duration) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	end := time.Now().UTC().Truncate(time.Minute)
	day, _ := storetest.DayOfRollups(end)
	var rs []store.Rollup
	for _, r := range day {
		if !r.Minute.Before(end.Add(-window)) {
			rs = append(rs, r)
		}
	}
	b.ReportMetric(float64(len(rs)), "rollups")
	for i := 0; i < len(rs); i += 5000 {
		if err := st.WriteRollups(ctx, rs[i:min(i+5000, len(rs))]); err != nil {
			b.Fatal(err)
		}
	}
	clock := func() time.Time { return end }
	c := &rollup.Compactor{Store: st, Now: clock, Batch: 256}
	for {
		n, err := c.Tick(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	h := newHandler(st, slog.New(slog.DiscardHandler), clock)
	path := "/api/v1/latency?service=checkout&from=" + window.String()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
