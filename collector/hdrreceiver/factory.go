// Package hdrreceiver is the meshlens_hdr receiver: it owns the collector's
// HTTP ingest port (4318) and takes the proxies' HDR histogram batches
// (POST /v1/histograms, docs/histogram-wire.md) into the logs pipeline and
// OTLP/HTTP spans (POST /v1/traces) into the traces pipeline, so one
// collector URL reaches both. The stock otlp receiver keeps gRPC on 4317.
package hdrreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/meshlens/meshlens/model"
)

// Type is the receiver's type in the collector config.
var Type = component.MustNewType("meshlens_hdr")

// DefaultEndpoint is the OTLP/HTTP port.
const DefaultEndpoint = "0.0.0.0:4318"

// NewFactory returns the receiver's factory. The traces and the logs
// receiver of one configured instance share one HTTP server.
func NewFactory() receiver.Factory {
	f := &factory{instances: map[*Config]*hdrReceiver{}}
	return receiver.NewFactory(Type, createDefaultConfig,
		receiver.WithTraces(f.createTraces, component.StabilityLevelBeta),
		receiver.WithLogs(f.createLogs, component.StabilityLevelBeta))
}

func createDefaultConfig() component.Config {
	return &Config{
		Endpoint:          DefaultEndpoint,
		Extension:         component.MustNewID("meshlens"),
		MaxHistogramBytes: model.MaxHistogramBatchBytes,
		MaxTraceBytes:     32 << 20,
	}
}

type factory struct {
	mu        sync.Mutex
	instances map[*Config]*hdrReceiver
}

func (f *factory) get(set receiver.Settings, cfg *Config) *hdrReceiver {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.instances[cfg]
	if !ok {
		r = newReceiver(set, cfg, func() {
			f.mu.Lock()
			delete(f.instances, cfg)
			f.mu.Unlock()
		})
		f.instances[cfg] = r
	}
	return r
}

func (f *factory) createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r := f.get(set, cfg.(*Config))
	r.setTraces(next)
	return r, nil
}

func (f *factory) createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r := f.get(set, cfg.(*Config))
	r.setLogs(next)
	return r, nil
}
