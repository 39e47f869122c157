// Package collector is the meshlens collector: an OpenTelemetry Collector
// distribution with the standard otlp receiver, batch and memory_limiter
// processors, the file_storage extension, and the meshlens components
// (meshlens_hdr receiver, meshlens_store and meshlens_analytics exporters,
// meshlens extension, meshlens_log_storage extension for the persistent
// queue).
package collector

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/nopexporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"

	"github.com/meshlens/meshlens/collector/analyticsexporter"
	"github.com/meshlens/meshlens/collector/hdrreceiver"
	"github.com/meshlens/meshlens/collector/logstorage"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/collector/storeexporter"
)

// DefaultConfig is the embedded configuration used when no config file is
// given.
//
//go:embed default.yaml
var DefaultConfig string

// Hooks let other parts of meshlens react to what the collector discovers.
type Hooks struct {
	// OnNewService is called once for each service seen for the first time.
	OnNewService []analyticsexporter.ServiceHook
}

// Components returns the distribution's factories.
func Components(h Hooks) (otelcol.Factories, error) {
	var err error
	f := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if f.Receivers, err = otelcol.MakeFactoryMap(newCountedOTLP(otlpreceiver.NewFactory()), hdrreceiver.NewFactory()); err != nil {
		return f, err
	}
	if f.Processors, err = otelcol.MakeFactoryMap(batchprocessor.NewFactory(), memorylimiterprocessor.NewFactory()); err != nil {
		return f, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap(
		storeexporter.NewFactory(),
		analyticsexporter.NewFactory(analyticsexporter.WithOnNewService(h.OnNewService...)),
		debugexporter.NewFactory(), nopexporter.NewFactory()); err != nil {
		return f, err
	}
	if f.Extensions, err = otelcol.MakeFactoryMap(meshlensextension.NewFactory(), logstorage.NewFactory(), filestorage.NewFactory()); err != nil {
		return f, err
	}
	return f, nil
}

// Options are the command line's choices.
type Options struct {
	// ConfigFile is a collector YAML config; empty: DefaultConfig.
	ConfigFile string
	// DataDir overrides the store's and the queue's directory.
	DataDir string
	// DatabaseURL selects PostgreSQL.
	DatabaseURL string
	// Set are extra overrides, "path::to::key=value" like the stock
	// collector's --set.
	Set   []string
	Hooks Hooks
	// Version is reported in the collector's build info.
	Version string
}

// ConfigURIs returns the config sources, in merge order: the file or the
// embedded default, then one override per flag.
func ConfigURIs(o Options) ([]string, error) {
	uris := []string{"yaml:" + DefaultConfig}
	if o.ConfigFile != "" {
		abs, err := filepath.Abs(o.ConfigFile)
		if err != nil {
			return nil, fmt.Errorf("config %q: %w", o.ConfigFile, err)
		}
		uris = []string{"file:" + abs}
	}
	set := func(key, value string) {
		v, _ := json.Marshal(value) // a JSON string is a YAML double-quoted scalar
		uris = append(uris, "yaml:"+key+": "+string(v))
	}
	if o.DataDir != "" {
		set("extensions::meshlens::data_dir", o.DataDir)
		set("extensions::meshlens_log_storage/queue::directory", filepath.Join(o.DataDir, "queue"))
		// A config of one's own may keep the file_storage queue.
		set("extensions::file_storage/queue::directory", filepath.Join(o.DataDir, "queue"))
		set("extensions::file_storage/queue::compaction::directory", filepath.Join(o.DataDir, "queue"))
		uris = append(uris, "yaml:extensions::file_storage/queue::create_directory: true")
	}
	if o.DatabaseURL != "" {
		set("extensions::meshlens::database_url", o.DatabaseURL)
	}
	for _, s := range o.Set {
		k, v, ok := cutSet(s)
		if !ok {
			return nil, fmt.Errorf("--set %q: want KEY=VALUE", s)
		}
		uris = append(uris, "yaml:"+k+": "+v)
	}
	return uris, nil
}

func cutSet(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}

// Settings returns the collector settings for o.
func Settings(o Options) (otelcol.CollectorSettings, error) {
	uris, err := ConfigURIs(o)
	if err != nil {
		return otelcol.CollectorSettings{}, err
	}
	version := o.Version
	if version == "" {
		version = "dev"
	}
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{Command: "meshlens collector", Description: "meshlens collector", Version: version},
		Factories: func() (otelcol.Factories, error) { return Components(o.Hooks) },
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				URIs: uris,
				ProviderFactories: []confmap.ProviderFactory{
					fileprovider.NewFactory(), yamlprovider.NewFactory(), envprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
		// The caller's context carries SIGINT/SIGTERM.
		DisableGracefulShutdown: true,
	}, nil
}

// Run runs the collector until ctx ends or it fails.
func Run(ctx context.Context, o Options) error {
	set, err := Settings(o)
	if err != nil {
		return err
	}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	return col.Run(ctx)
}
