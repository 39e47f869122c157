package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter"

	"github.com/meshlens/meshlens/collector/analyticsexporter"
	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/storeexporter"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// BenchmarkHistogramMerge is the collector's histogram path from the wire
// to rollups, without the database write: decode a proxy's batch
// (hdr.DecodeBatch, as the meshlens_hdr receiver does), turn it into log
// records (hdrlog.FromBatch), merge every hop snapshot exactly into its
// service's per-minute and Prometheus histograms (the meshlens_analytics
// exporter's ConsumeLogs, given the decoded histograms in its context as the
// receiver gives them), and build the per-interval rollup rows
// (storeexporter.Rollups). One batch is one proxy interval of 100 hop
// snapshots (10 services × 10 routes), each a histogram of 200 latencies
// between 100 µs and 2 s; every iteration is a new interval (a new seq), so
// nothing is skipped as a duplicate. Reported as snapshots/s; run with
// -cpu 1 for the per-core figure.
func BenchmarkHistogramMerge(b *testing.B) {
	const hopsPerBatch = 100
	host, _ := testhost.Start(b, testhost.Options{})
	f := analyticsexporter.NewFactory()
	set := exporter.Settings{ID: component.NewID(analyticsexporter.Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	logs, err := f.CreateLogs(context.Background(), set, f.CreateDefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	if err := logs.Start(context.Background(), host); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := logs.Shutdown(context.Background()); err != nil {
			b.Error(err)
		}
	}()

	rng := rand.New(rand.NewPCG(1, 2))
	hops := make([]model.HopHistograms, hopsPerBatch)
	for i := range hops {
		values := make([]int64, 200)
		for j := range values {
			values[j] = 100 + int64(rng.ExpFloat64()*20_000)%2_000_000
		}
		hops[i] = testhost.Hop(b, model.HopKey{Service: fmt.Sprintf("svc-%d", i/10), Direction: model.Inbound,
			Peer: "caller", Route: fmt.Sprintf("/route/%d", i%10), Method: "GET", StatusClass: "2xx"}, values...)
	}
	start := time.Now().Add(-time.Minute).Truncate(10 * time.Second)
	body := func(seq uint64) []byte {
		batch := testhost.Batch("bench-proxy", "svc-0", seq, start, hops...)
		out, err := json.Marshal(batch)
		if err != nil {
			b.Fatal(err)
		}
		return out
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	var marshal time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		t0 := time.Now()
		raw := body(uint64(i + 1))
		marshal += time.Since(t0)
		b.StartTimer()
		d, err := hdr.DecodeBatch(raw, time.Now())
		if err != nil || len(d.Rejected) > 0 {
			b.Fatalf("decode: %v %v", err, d.Rejected)
		}
		ld, err := hdrlog.FromBatch(d)
		if err != nil {
			b.Fatal(err)
		}
		rollups, _, _, err := storeexporter.Rollups(ld)
		if err != nil || len(rollups) != hopsPerBatch {
			b.Fatalf("rollups: %d, %v", len(rollups), err)
		}
		// As the receiver passes them: with the decoded histograms along.
		if err := logs.ConsumeLogs(hdrlog.WithDecoded(context.Background(), d), ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*hopsPerBatch)/b.Elapsed().Seconds(), "snapshots/s")
	// On a shared machine the wall clock overstates the cost: snapshots per
	// CPU-second of this process (less the batches' JSON encoding, which is
	// the proxy's work) is the per-core figure.
	if cpu := cpuTime() - cpu0 - marshal; cpu > 0 {
		b.ReportMetric(float64(b.N*hopsPerBatch)/cpu.Seconds(), "snapshots/cpu-s")
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
