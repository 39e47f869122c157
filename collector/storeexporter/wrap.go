package storeexporter

import (
	"context"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// tracesExporter and logsExporter count what enters the sending queue, for
// meshlens_collector_queue_length.
type tracesExporter struct {
	exporter.Traces
	e *storeExporter
}

func (t *tracesExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	n := td.SpanCount()
	t.e.addQueued(n)
	err := t.Traces.ConsumeTraces(ctx, td)
	if err != nil {
		t.e.addQueued(-n)
	}
	return err
}

// Capabilities: the traces exporter never changes the spans it is given.
// exporterhelper says MutatesData whenever the sending queue batches,
// because its own batcher merges ptrace.Traces in place; this exporter's
// requests are rows converted from the spans before ConsumeTraces returns
// (spanRequest), so the batcher merges rows and the spans are only read.
// Saying so spares the receivers a copy of every request for this pipeline
// (the analytics pipeline reads the same spans).
func (t *tracesExporter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

type logsExporter struct {
	exporter.Logs
	e *storeExporter
}

func (l *logsExporter) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	n := ld.LogRecordCount()
	l.e.addQueued(n)
	err := l.Logs.ConsumeLogs(ctx, ld)
	if err != nil {
		l.e.addQueued(-n)
	}
	return err
}
