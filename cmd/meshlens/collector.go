package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/meshlens/meshlens/collector"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func init() {
	register("collector", command{
		summary: "run the collector (OTLP 4317/4318, histograms on 4318, metrics 8889, query API 16686)",
		run:     runCollector,
	})
}

func runCollector(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	var o collector.Options
	var sets stringList
	fs.StringVar(&o.ConfigFile, "config", "", "collector config `FILE` (default: the embedded config, see docs/collector.md)")
	fs.StringVar(&o.DataDir, "data-dir", "", "`DIR` for the embedded SQLite store and the persistent queue (default meshlens-data)")
	fs.StringVar(&o.DatabaseURL, "database-url", os.Getenv("MESHLENS_DATABASE_URL"), "PostgreSQL `URL` (also MESHLENS_DATABASE_URL); empty: embedded SQLite")
	fs.Var(&sets, "set", "override a config value, `KEY=VALUE` with :: between levels (repeatable)")
	printConfig := fs.Bool("print-default-config", false, "print the embedded default config and exit")
	var gen discoveryGeneratorConfig
	var sloFiles stringList
	fs.StringVar(&gen.Dir, "generate-dir", "", "keep alert rules (`DIR`/alerts) and Grafana dashboards (DIR/dashboards, DIR/provisioning) up to date with the discovered services")
	fs.StringVar(&gen.PrometheusURL, "prometheus-url", "", "with --generate-dir: POST `URL`/-/reload when the rules change (Prometheus needs --web.enable-lifecycle)")
	fs.StringVar(&gen.GrafanaURL, "grafana-url", "", "with --generate-dir: push changed dashboards to the Grafana at `URL` (token from GRAFANA_TOKEN)")
	fs.StringVar(&gen.WindowScale, "window-scale", "", "with --generate-dir: scale alert windows, `FACTOR` or FROM=TO (tests: 1h=1m)")
	fs.Var(&sloFiles, "slo", "OpenSLO `FILE` (repeatable): SLOs used by --generate-dir instead of the defaults, and their latency thresholds counted")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens collector: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *printConfig {
		fmt.Print(collector.DefaultConfig)
		return 0
	}
	o.Set = sets
	if gen.Dir != "" || len(sloFiles) > 0 {
		gen.SLOFiles = sloFiles
		gen.GrafanaToken = os.Getenv("GRAFANA_TOKEN")
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		g, err := newDiscoveryGenerator(gen, open.Options{DataDir: o.DataDir, DatabaseURL: o.DatabaseURL, Logger: logger}, logger)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshlens collector: %v\n", err)
			return 2
		}
		defer g.close()
		if len(sloFiles) > 0 {
			o.Set = append(o.Set, "exporters::meshlens_analytics::slo_thresholds="+thresholdSet(g.thresholds()))
		}
		if gen.Dir != "" {
			o.Hooks.OnNewService = append(o.Hooks.OnNewService, g.hook())
			// Services already in the store raise no hook: generate for
			// them once the collector has opened (and migrated) the store.
			go func() {
				select {
				case <-ctx.Done():
				case <-time.After(3 * time.Second):
					g.hook()(ctx, store.Service{})
				}
			}()
		}
	}
	if err := collector.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens collector: %v\n", err)
		return 1
	}
	return 0
}
