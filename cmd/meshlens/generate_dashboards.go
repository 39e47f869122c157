package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/meshlens/meshlens/dashboards"
	"github.com/meshlens/meshlens/slo"
	"github.com/meshlens/meshlens/store/open"
)

func init() {
	registerGenerator("dashboards", generator{
		summary: "Grafana dashboards and provisioning files for every discovered service",
		run:     runGenerateDashboards,
	})
}

// repeatedFlag collects a flag given several times.
type repeatedFlag []string

func (r *repeatedFlag) String() string     { return strings.Join(*r, ",") }
func (r *repeatedFlag) Set(v string) error { *r = append(*r, v); return nil }

func runGenerateDashboards(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("generate dashboards", flag.ContinueOnError)
	var (
		services, sloFiles repeatedFlag
		cfg                dashboards.WriterConfig
		dataDir, dbURL     string
		promURL            string
	)
	fs.StringVar(&cfg.Dir, "out", "", "output `DIR`: DIR/dashboards/*.json and DIR/provisioning (point Grafana's provisioning path at it)")
	fs.Var(&services, "service", "a service to generate a dashboard for, `NAME` (repeatable); adds to the discovered ones")
	fs.StringVar(&dataDir, "data-dir", "", "discover services from the embedded SQLite store in `DIR`")
	fs.StringVar(&dbURL, "database-url", os.Getenv("MESHLENS_DATABASE_URL"), "discover services from the PostgreSQL store at `URL` (also MESHLENS_DATABASE_URL)")
	fs.StringVar(&promURL, "prometheus-url", "", "discover services from meshlens_service_info on the Prometheus at `URL`")
	fs.Var(&sloFiles, "slo", "OpenSLO `FILE` with SLOs (repeatable); services without one get the default SLOs")
	fs.StringVar(&cfg.Provisioning.PrometheusURL, "grafana-prometheus-url", dashboards.DefaultPrometheusURL, "`URL` Grafana reaches Prometheus at (provisioned data source)")
	fs.StringVar(&cfg.Provisioning.JaegerURL, "grafana-jaeger-url", dashboards.DefaultJaegerURL, "`URL` Grafana reaches the collector's Jaeger-compatible API at")
	fs.StringVar(&cfg.Provisioning.DashboardsPath, "grafana-dashboards-path", "", "`PATH` of DIR/dashboards as Grafana sees it (default: its absolute path here)")
	fs.StringVar(&cfg.Provisioning.Folder, "grafana-folder", dashboards.DefaultFolder, "Grafana `FOLDER` for the dashboards")
	fs.StringVar(&cfg.Grafana.URL, "grafana-url", "", "also push the dashboards to the Grafana at `URL` (token from GRAFANA_TOKEN)")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens generate dashboards: unexpected arguments %q\n", fs.Args())
		return 2
	}
	cfg.Grafana.Token = os.Getenv("GRAFANA_TOKEN")
	cfg.Grafana.Folder = cfg.Provisioning.Folder
	if cfg.Dir == "" && cfg.Grafana.URL == "" {
		fmt.Fprintln(os.Stderr, "meshlens generate dashboards: --out DIR (or --grafana-url URL) is required")
		return 2
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in, err := dashboardsInput(ctx, services, dataDir, dbURL, promURL, sloFiles, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate dashboards: %v\n", err)
		return 1
	}
	w, err := dashboards.NewWriter(cfg, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate dashboards: %v\n", err)
		return 2
	}
	uids, err := w.Update(ctx, in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate dashboards: %v\n", err)
		return 1
	}
	where := cfg.Dir
	if cfg.Grafana.URL != "" {
		where = strings.TrimPrefix(strings.Join([]string{cfg.Dir, cfg.Grafana.URL}, " and "), " and ")
	}
	fmt.Printf("dashboards: %d services, %d dashboards changed, in %s\n", len(in.Services), len(uids), where)
	return 0
}

// dashboardsInput gathers the services (named, from a store, from
// Prometheus) and the SLOs.
func dashboardsInput(ctx context.Context, named []string, dataDir, dbURL, promURL string, sloFiles []string, logger *slog.Logger) (dashboards.Input, error) {
	var in dashboards.Input
	found := map[string]dashboards.Service{}
	add := func(list []dashboards.Service) {
		for _, s := range list {
			old, ok := found[s.Name]
			found[s.Name] = dashboards.Service{Name: s.Name, HasProxy: s.HasProxy || ok && old.HasProxy}
		}
	}
	for _, n := range named {
		if n == "" {
			return in, errors.New("--service: empty name")
		}
		add([]dashboards.Service{{Name: n, HasProxy: true}})
	}
	if dataDir != "" || dbURL != "" {
		st, err := open.Open(ctx, open.Options{DataDir: dataDir, DatabaseURL: dbURL, Logger: logger})
		if err != nil {
			return in, fmt.Errorf("open store: %w", err)
		}
		list, err := dashboards.ServicesFromStore(ctx, st)
		cerr := st.Close()
		if err != nil {
			return in, err
		}
		if cerr != nil {
			return in, fmt.Errorf("close store: %w", cerr)
		}
		add(list)
	}
	if promURL != "" {
		list, err := dashboards.ServicesFromPrometheus(ctx, &http.Client{Timeout: 30 * time.Second}, promURL)
		if err != nil {
			return in, err
		}
		add(list)
	}
	if len(named) == 0 && dataDir == "" && dbURL == "" && promURL == "" {
		return in, errors.New("no services: give --service, --data-dir, --database-url or --prometheus-url")
	}
	for _, s := range found {
		in.Services = append(in.Services, s)
	}
	sort.Slice(in.Services, func(i, j int) bool { return in.Services[i].Name < in.Services[j].Name })
	if len(sloFiles) > 0 {
		spec, err := slo.LoadOpenSLOFiles(sloFiles...)
		if err != nil {
			return in, err
		}
		in.SLOs = spec.SLOs
	}
	return in, nil
}
