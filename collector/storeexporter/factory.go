// Package storeexporter is the meshlens_store exporter: it writes spans
// (traces pipeline) and per-interval HDR rollups (logs pipeline, from the
// meshlens_hdr receiver) to the store held by the meshlens extension, and
// records the services and edges both reveal. Writes are idempotent, so
// at-least-once delivery through the persistent sending queue stores every
// item once.
package storeexporter

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"

	"github.com/meshlens/meshlens/collector/internal/spans"
)

// Type is the exporter's type in the collector config.
var Type = component.MustNewType("meshlens_store")

// NewFactory returns the exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithTraces(createTraces, component.StabilityLevelBeta),
		exporter.WithLogs(createLogs, component.StabilityLevelBeta))
}

func createDefaultConfig() component.Config {
	q := exporterhelper.NewDefaultQueueConfig()
	q.QueueSize = 20_000
	q.NumConsumers = 4
	retry := configretry.NewDefaultBackOffConfig()
	retry.MaxElapsedTime = 0 // never give up: the queue bounds what waits
	retry.MaxInterval = 10 * time.Second
	return &Config{
		Extension:        component.MustNewID("meshlens"),
		RedactAttributes: append([]string(nil), spans.DefaultRedact...),
		QueueConfig:      configoptional.Some(q),
		RetryConfig:      retry,
		TimeoutConfig:    exporterhelper.TimeoutConfig{Timeout: 30 * time.Second},
		WriteThrough:     WriteThroughConfig{Enabled: true, Linger: 100 * time.Millisecond, MaxSpans: 10_000, Timeout: 2 * time.Second},
	}
}

func helperOptions(cfg *Config, e *storeExporter, queue exporterhelper.Option) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(e.start),
		queue,
		exporterhelper.WithRetry(cfg.RetryConfig),
		exporterhelper.WithTimeout(cfg.TimeoutConfig),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
	}
}

// createTraces makes the traces exporter on requests of its own
// (spanRequest): spans are converted to store rows as they arrive, and the
// queue and the batcher carry rows.
func createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	c := cfg.(*Config)
	e := newStoreExporter(set, c, signalSpans)
	queue := xexporterhelper.WithQueueBatch(c.QueueConfig, xexporterhelper.QueueBatchSettings{Encoding: spanEncoding{redactor: e.redactor}})
	inner, err := xexporterhelper.NewTracesRequest(ctx, set, e.spanRequestFrom, e.pushSpans, helperOptions(c, e, queue)...)
	if err != nil {
		return nil, err
	}
	return &tracesExporter{Traces: inner, e: e}, nil
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e := newStoreExporter(set, c, signalHistograms)
	inner, err := exporterhelper.NewLogs(ctx, set, cfg, e.pushLogs, helperOptions(c, e, exporterhelper.WithQueue(c.QueueConfig))...)
	if err != nil {
		return nil, err
	}
	return &logsExporter{Logs: inner, e: e}, nil
}
