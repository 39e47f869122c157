package storeexporter

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
)

// tracesExporter and logsExporter count what enters the sending queue, for
// meshlens_collector_queue_length. tracesExporter also runs the
// write-through (WriteThroughConfig) in front of the sending queue.
type tracesExporter struct {
	exporter.Traces // exporterhelper's, with the sending queue
	e               *storeExporter

	writer   *groupWriter // nil without write-through, and until started
	inflight inflight
}

func (t *tracesExporter) Start(ctx context.Context, host component.Host) error {
	if err := t.Traces.Start(ctx, host); err != nil {
		return err
	}
	if t.e.cfg.WriteThrough.Enabled {
		t.writer = newGroupWriter(t.e.cfg.WriteThrough, t.e.writeGroup)
	}
	return nil
}

// Shutdown lets the senders in the write-through finish (a failed group's
// requests go to the sending queue), stops it, then the queue.
func (t *tracesExporter) Shutdown(ctx context.Context) error {
	t.inflight.close()
	if t.writer != nil {
		t.writer.shutdown()
	}
	return t.Traces.Shutdown(ctx)
}

func (t *tracesExporter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	n := td.SpanCount()
	t.e.addQueued(n)
	err := t.consume(ctx, td)
	if err != nil {
		t.e.addQueued(-n)
	}
	return err
}

// consume writes td through to the store; or queues it, when the
// write-through is off or stopping, or while the store does not keep up.
func (t *tracesExporter) consume(ctx context.Context, td ptrace.Traces) error {
	if t.writer == nil || t.e.spill.Load() || !t.inflight.enter() {
		return t.Traces.ConsumeTraces(ctx, td)
	}
	defer t.inflight.leave()
	req := newSpanRequest(td, t.e.redactor)
	err := t.writer.submit(ctx, req)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errWriterStopped):
		// Shutting down: the queue takes it.
	case errors.Is(err, errNotTaken):
		return err // the sender has given up: its retry comes back
	case t.e.spill.CompareAndSwap(false, true):
		t.e.set.Logger.Warn("meshlens_store exporter: a write-through to the store failed; spans go to the sending queue until it writes again", zap.Error(err))
	}
	return t.Traces.ConsumeTraces(context.WithValue(ctx, convertedKey{}, req), td)
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
