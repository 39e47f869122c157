package rollup_test

import (
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
	"github.com/meshlens/meshlens/store/storetest"
)

// BenchmarkMergeDay: a plain merge (rollup.Merge) of the checkout rollups of
// storetest.DayOfRollups, no store; ns/op is per rollup.
func BenchmarkMergeDay(b *testing.B) {
	day, _ := storetest.DayOfRollups(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	var rs []store.Rollup
	for _, r := range day {
		if r.Key.Service == "checkout" {
			rs = append(rs, r)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		n := min(b.N-i, len(rs))
		if _, err := rollup.Merge(rs[:n]); err != nil {
			b.Fatal(err)
		}
		i += n
	}
}
