// Package meshlensextension is the meshlens extension: it opens the store
// (embedded SQLite or PostgreSQL) that the meshlens exporters write to, and
// serves the Prometheus metrics (:8889) and the query API (:16686) over it.
// It also authenticates senders with the optional ingest bearer token
// (extensionauth.Server), for the otlp receiver's `auth` setting and for the
// meshlens_hdr receiver.
package meshlensextension

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
)

// Type is the extension's type in the collector config.
var Type = component.MustNewType("meshlens")

// Defaults.
const (
	DefaultDataDir         = "meshlens-data"
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultMetricsEndpoint = "0.0.0.0:8889"
	DefaultAPIEndpoint     = "0.0.0.0:16686"
)

// NewFactory returns the extension's factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, createDefaultConfig, create, component.StabilityLevelBeta)
}

func createDefaultConfig() component.Config {
	return &Config{
		DataDir:   DefaultDataDir,
		Retention: DefaultRetention,
		Metrics:   ServerConfig{Endpoint: DefaultMetricsEndpoint},
		API:       APIServerConfig{Endpoint: DefaultAPIEndpoint},
	}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(set, cfg.(*Config))
}
