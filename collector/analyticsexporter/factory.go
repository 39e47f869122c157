// Package analyticsexporter is the meshlens_analytics exporter: it merges the
// proxies' HDR histograms exactly per hop (service, direction, peer, route,
// method, status class) and per minute, and turns them into the Prometheus
// metrics of docs/metrics.md — native and classic histograms with trace
// exemplars, exact threshold counters, exact percentile gauges — and
// discovers services and edges from histograms and spans, telling the
// OnNewService hooks about each new one.
package analyticsexporter

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/meshlens/meshlens/store"
)

// Type is the exporter's type in the collector config.
var Type = component.MustNewType("meshlens_analytics")

// ServiceHook is told about a service the first time the collector sees it
// (seeded from the store at start, so a restart does not repeat old ones).
// Hooks run one at a time on a goroutine of their own, never on the ingest
// path; a slow hook delays only later hooks.
type ServiceHook func(ctx context.Context, s store.Service)

// Option configures the factory.
type Option func(*factory)

// WithOnNewService adds hooks called for every newly discovered service.
func WithOnNewService(hooks ...ServiceHook) Option {
	return func(f *factory) { f.hooks = append(f.hooks, hooks...) }
}

type factory struct {
	hooks []ServiceHook
	mu    sync.Mutex
	// shared: the traces and logs exporters of one configured instance
	// share their state, so exemplars from spans land on the histograms.
	instances map[*Config]*analytics
}

// NewFactory returns the exporter's factory.
func NewFactory(opts ...Option) exporter.Factory {
	f := &factory{instances: map[*Config]*analytics{}}
	for _, o := range opts {
		o(f)
	}
	return exporter.NewFactory(Type, createDefaultConfig,
		exporter.WithTraces(f.createTraces, component.StabilityLevelBeta),
		exporter.WithLogs(f.createLogs, component.StabilityLevelBeta))
}

// DefaultClassicBuckets are the classic bucket bounds, in seconds.
var DefaultClassicBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// DefaultSLOThresholds are the thresholds counted by default, in seconds.
var DefaultSLOThresholds = []float64{0.1, 0.25, 0.5, 1}

func createDefaultConfig() component.Config {
	return &Config{
		Extension:        component.MustNewID("meshlens"),
		SLOThresholds:    append([]float64(nil), DefaultSLOThresholds...),
		ClassicBuckets:   append([]float64(nil), DefaultClassicBuckets...),
		NativeSchema:     8,
		NativeMaxBuckets: 1000,
		CompleteAfter:    20 * time.Second,
		DedupeWindow:     15 * time.Minute,
		MaxSeries:        100_000,
	}
}

func (f *factory) get(set exporter.Settings, cfg *Config) *analytics {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.instances[cfg]
	if !ok {
		a = newAnalytics(set, cfg, f.hooks, func() {
			f.mu.Lock()
			delete(f.instances, cfg)
			f.mu.Unlock()
		})
		f.instances[cfg] = a
	}
	return a
}

func (f *factory) createTraces(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Traces, error) {
	a := f.get(set, cfg.(*Config))
	return exporterhelper.NewTraces(ctx, set, cfg, a.consumeTraces,
		exporterhelper.WithStart(a.start), exporterhelper.WithShutdown(a.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}

func (f *factory) createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	a := f.get(set, cfg.(*Config))
	return exporterhelper.NewLogs(ctx, set, cfg, a.consumeLogs,
		exporterhelper.WithStart(a.start), exporterhelper.WithShutdown(a.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}
