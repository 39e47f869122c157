package queryapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
	"github.com/meshlens/meshlens/store/storetest"
)

// BenchmarkLatencyTwoHours: /api/v1/latency for one service over the last
// 2 hours of storetest.DayOfRollups (the store's percentile benchmark seed)
// on the real SQLite store. The handler reads and decodes every rollup of
// the window, so the cost grows with the window. Run with -benchtime 3x.
func BenchmarkLatencyTwoHours(b *testing.B) {
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
		if !r.Minute.Before(end.Add(-2 * time.Hour)) {
			rs = append(rs, r)
		}
	}
	b.ReportMetric(float64(len(rs)), "rollups")
	for i := 0; i < len(rs); i += 5000 {
		if err := st.WriteRollups(ctx, rs[i:min(i+5000, len(rs))]); err != nil {
			b.Fatal(err)
		}
	}
	h := newHandler(st, slog.New(slog.DiscardHandler), func() time.Time { return end })
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/latency?service=checkout&from=2h", nil))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
