package storeexporter

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshlens/meshlens/collector/internal/health"
)

// TestQueueLengthAfterRestart: a backlog replayed from an earlier process is
// written without having been counted; the queue length stays at zero
// meanwhile and counts what comes next exactly.
func TestQueueLengthAfterRestart(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := health.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := &storeExporter{signal: "spans", health: h}
	gauge := func() float64 { return testutil.ToFloat64(h.QueueLength.WithLabelValues("spans")) }
	e.addQueued(-500) // the replayed backlog written
	if g := gauge(); g != 0 {
		t.Fatalf("after the backlog: queue length %v, want 0", g)
	}
	e.addQueued(300)
	e.addQueued(-100)
	if g := gauge(); g != 200 {
		t.Fatalf("queue length %v, want 200", g)
	}
}
