package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/proxy"
	"github.com/meshlens/meshlens/proxy/telemetry"
)

// newTelemetry creates and starts the hop sink (HDR histograms, flushes,
// spans) and the admin endpoints it serves. The proxy shuts it down last.
func newTelemetry(cfg proxy.Config, log *slog.Logger, reg *prometheus.Registry) (telemetry.Sink, map[string]http.Handler, error) {
	t, err := telemetry.New(cfg.Telemetry, cfg.Service, reg, log)
	if err != nil {
		return nil, nil, err
	}
	if err := t.Start(context.Background()); err != nil {
		return nil, nil, err
	}
	return t, map[string]http.Handler{"GET /stats": t.StatsHandler()}, nil
}
