package sqlite_test

import (
	"context"
	"testing"

	"github.com/meshlens/meshlens/store/sqlite"
	"github.com/meshlens/meshlens/store/storetest"
)

func BenchmarkPercentiles24h(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	storetest.BenchmarkPercentiles(b, st)
}
