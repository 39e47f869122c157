package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
	"github.com/meshlens/meshlens/store/storetest"
)

const ingestBatch = 1000

func openBench(b testing.TB) (*postgres.Store, string) {
	b.Helper()
	url := migratedTB(b)
	st, err := postgres.Open(context.Background(), postgres.Options{URL: url + "&pool_max_conns=4"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st, url
}

// benchBatches are n batches of ingestBatch spans, starting an hour ago
// (start).
func benchBatches(n int) (batches [][]store.Span, start time.Time) {
	start = time.Now().UTC().Add(-time.Hour)
	batches = make([][]store.Span, n)
	for i := range batches {
		batches[i] = storetest.Spans(ingestBatch, int64(i), start)
	}
	return batches, start
}

// rawTable connects to url and makes spans_raw, the unindexed,
// unpartitioned copy of spans the baseline COPYs into.
func rawTable(b *testing.B, url string) *pgx.Conn {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `CREATE TABLE spans_raw (LIKE spans)`); err != nil {
		b.Fatal(err)
	}
	return conn
}

// copyRaw COPYs batch into spans_raw: one statement, one transaction.
func copyRaw(b *testing.B, conn *pgx.Conn, batch []store.Span) {
	if _, err := conn.PgConn().CopyFrom(context.Background(), postgres.CopyStream(batch), postgres.CopySpansSQL("spans_raw")); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkIngest writes spans through WriteSpans, ingestBatch per call (one
// op), into the indexed, partitioned spans table: new spans, so each batch
// is one COPY straight into spans.
func BenchmarkIngest(b *testing.B) {
	st, _ := openBench(b)
	ctx := context.Background()
	batches, start := benchBatches(b.N)
	// A warm-up batch creates the day's partitions and writes the
	// operations.
	if err := st.WriteSpans(ctx, storetest.Spans(ingestBatch, -1, start)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	t0 := time.Now()
	for _, batch := range batches {
		if err := st.WriteSpans(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*ingestBatch)/time.Since(t0).Seconds(), "spans/s")
}

// BenchmarkIngestReplay writes batches that are stored already, as a queue
// replay after a crash does: the COPY into spans fails on the first
// duplicate and the batch goes through the staging table and ON CONFLICT
// DO NOTHING.
func BenchmarkIngestReplay(b *testing.B) {
	st, _ := openBench(b)
	ctx := context.Background()
	batches, _ := benchBatches(b.N)
	for _, batch := range batches {
		if err := st.WriteSpans(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	t0 := time.Now()
	for _, batch := range batches {
		if err := st.WriteSpans(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*ingestBatch)/time.Since(t0).Seconds(), "spans/s")
}

// BenchmarkRawCopy is the baseline: binary COPY of the same rows, one
// transaction per ingestBatch, into an unindexed, unpartitioned copy of the
// spans table.
func BenchmarkRawCopy(b *testing.B) {
	_, url := openBench(b)
	conn := rawTable(b, url)
	batches, _ := benchBatches(b.N)
	b.ResetTimer()
	t0 := time.Now()
	for _, batch := range batches {
		copyRaw(b, conn, batch)
	}
	b.ReportMetric(float64(b.N*ingestBatch)/time.Since(t0).Seconds(), "spans/s")
}

// BenchmarkIngestVsRawCopy is BenchmarkIngest and BenchmarkRawCopy batch by
// batch in turn (which goes first alternates), so that the ratio compares
// the two under the same load: on a shared machine the two separate
// benchmarks, seconds apart, see different loads, and their ratio varies
// by more than the difference it is meant to show. One op is one batch of
// each.
func BenchmarkIngestVsRawCopy(b *testing.B) {
	st, url := openBench(b)
	ctx := context.Background()
	conn := rawTable(b, url)
	batches, start := benchBatches(b.N)
	if err := st.WriteSpans(ctx, storetest.Spans(ingestBatch, -1, start)); err != nil {
		b.Fatal(err)
	}
	var ingest, raw time.Duration
	write := func(batch []store.Span) {
		t0 := time.Now()
		if err := st.WriteSpans(ctx, batch); err != nil {
			b.Fatal(err)
		}
		ingest += time.Since(t0)
	}
	rawCopy := func(batch []store.Span) {
		t0 := time.Now()
		copyRaw(b, conn, batch)
		raw += time.Since(t0)
	}
	b.ResetTimer()
	for i, batch := range batches {
		if i%2 == 0 {
			write(batch)
			rawCopy(batch)
		} else {
			rawCopy(batch)
			write(batch)
		}
	}
	spans := float64(b.N * ingestBatch)
	b.ReportMetric(spans/ingest.Seconds(), "ingest-spans/s")
	b.ReportMetric(spans/raw.Seconds(), "raw-spans/s")
	b.ReportMetric(raw.Seconds()/ingest.Seconds(), "ratio")
}

func BenchmarkPercentiles24h(b *testing.B) {
	st, _ := openBench(b)
	storetest.BenchmarkPercentiles(b, st)
}
