package storeexporter

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshlens/meshlens/collector/internal/health"
)

// TestQueueLengthNeverNegative: a backlog written without having been
// counted (a queue on another storage extension) leaves the queue length at
// zero meanwhile, and it counts what comes next exactly.
func TestQueueLengthNeverNegative(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := health.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := &storeExporter{signal: "spans", health: h, gauge: h.QueueLength.WithLabelValues("spans")}
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

// queuedItems counts a queued request as it was counted in: spans with the
// ones left out for an empty ID, histogram hops as log records, in the
// encodings the sending queue writes (and, for spans, the older one).
func TestQueuedItems(t *testing.T) {
	ctx := context.Background()
	td := testTraces("checkout", 10)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty() // no IDs: left out
	spansExp := newStoreExporter(exportertest.NewNopSettings(Type), createDefaultConfig().(*Config), signalSpans)
	rows, err := spanEncoding{redactor: spansExp.redactor}.Marshal(ctx, newSpanRequest(td, spansExp.redactor))
	if err != nil {
		t.Fatal(err)
	}
	old, err := pdatareq.MarshalTraces(ctx, td)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string][]byte{"rows": rows, "traces": old} {
		if got := spansExp.queuedItems(v); got != td.SpanCount() {
			t.Errorf("%s: %d spans, want %d", name, got, td.SpanCount())
		}
	}
	if got := spansExp.queuedItems([]byte("\x00MLS\x02junk")); got != 0 {
		t.Errorf("a corrupt item counts %d", got)
	}

	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty()
	lrs.AppendEmpty()
	logsExp := newStoreExporter(exportertest.NewNopSettings(Type), createDefaultConfig().(*Config), signalHistograms)
	v, err := pdatareq.MarshalLogs(ctx, ld)
	if err != nil {
		t.Fatal(err)
	}
	if got := logsExp.queuedItems(v); got != 2 {
		t.Errorf("logs: %d records, want 2", got)
	}
}
