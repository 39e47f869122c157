package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshlens/meshlens/alerts"
	"github.com/meshlens/meshlens/collector/analyticsexporter"
	"github.com/meshlens/meshlens/dashboards"
	"github.com/meshlens/meshlens/slo"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

// discoveryGenerator keeps the alert rules and dashboards of a running
// collector in step with the services it discovers: every time a service
// appears, it regenerates both for every service in the store.
//
// It reads the store through a handle of its own, opened from the same
// --data-dir / --database-url as the collector's.
type discoveryGenerator struct {
	storeOptions open.Options
	regen        *alerts.Regenerator
	dashboards   *dashboards.Writer
	defaults     slo.DefaultsConfig
	explicit     []slo.SLO
	logger       *slog.Logger

	mu sync.Mutex // one generation at a time
	st store.Store
}

// discoveryGeneratorConfig is what `meshlens collector` flags give.
type discoveryGeneratorConfig struct {
	Dir           string // DIR/alerts and DIR/dashboards
	PrometheusURL string // POST /-/reload after a rules change
	GrafanaURL    string // push dashboards (token from GRAFANA_TOKEN)
	GrafanaToken  string
	SLOFiles      []string // OpenSLO files; other services get the defaults
	WindowScale   string   // alerts.ParseWindowScale syntax; tests use 1h=1m
}

func newDiscoveryGenerator(c discoveryGeneratorConfig, so open.Options, logger *slog.Logger) (*discoveryGenerator, error) {
	var explicit []slo.SLO
	if len(c.SLOFiles) > 0 {
		spec, err := slo.LoadOpenSLOFiles(c.SLOFiles...)
		if err != nil {
			return nil, err
		}
		explicit = spec.SLOs
	}
	cfg := alerts.Config{}
	if c.WindowScale != "" {
		f, err := alerts.ParseWindowScale(c.WindowScale)
		if err != nil {
			return nil, fmt.Errorf("--window-scale: %w", err)
		}
		cfg.WindowScale = f
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	wc := dashboards.WriterConfig{Dir: c.Dir, SLOs: explicit}
	wc.Grafana = dashboards.GrafanaConfig{URL: c.GrafanaURL, Token: c.GrafanaToken, Folder: dashboards.DefaultFolder}
	w, err := dashboards.NewWriter(wc, logger)
	if err != nil {
		return nil, err
	}
	return &discoveryGenerator{
		storeOptions: so,
		explicit:     explicit,
		regen: &alerts.Regenerator{
			Dir: filepath.Join(c.Dir, "alerts"), Config: cfg, Explicit: explicit,
			PrometheusURL: c.PrometheusURL, Client: &http.Client{Timeout: 10 * time.Second}, Logger: logger,
		},
		dashboards: w,
		logger:     logger,
	}, nil
}

// hook is the collector's OnNewService hook.
func (g *discoveryGenerator) hook() analyticsexporter.ServiceHook {
	return func(ctx context.Context, s store.Service) {
		if err := g.generate(ctx, s); err != nil {
			g.logger.Warn("regenerating alerts and dashboards failed; the next new service retries", "service", s.Name, "err", err)
		}
	}
}

// generate regenerates everything; extra is a service that may not be in the
// store yet.
func (g *discoveryGenerator) generate(ctx context.Context, extra store.Service) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st == nil {
		st, err := open.Open(ctx, g.storeOptions)
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		g.st = st
	}
	d := g.defaults.WithDefaults()
	history, err := slo.HistoryFromStore(ctx, g.st, d.HistoryWindow, d.HistoryQuantile, time.Now())
	if err != nil {
		return err
	}
	if extra.Name != "" && !hasService(history, extra.Name) {
		history = append(history, slo.ServiceHistory{Service: extra.Name, HasProxy: extra.HasProxy, From: "store"})
	}
	set, _, err := g.regen.Regenerate(ctx, history)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	var services []dashboards.Service
	for _, h := range history {
		services = append(services, dashboards.Service{Name: h.Service, HasProxy: h.HasProxy})
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Name < services[j].Name })
	if _, err := g.dashboards.Update(ctx, dashboards.Input{Services: services, SLOs: set, Defaults: g.defaults}); err != nil {
		return fmt.Errorf("dashboards: %w", err)
	}
	return nil
}

func hasService(history []slo.ServiceHistory, name string) bool {
	for _, h := range history {
		if h.Service == name {
			return true
		}
	}
	return false
}

func (g *discoveryGenerator) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.st == nil {
		return nil
	}
	return g.st.Close()
}

// thresholds returns the latency thresholds the collector must count: every
// readable threshold a default SLO can propose, and those of the OpenSLO
// files.
func (g *discoveryGenerator) thresholds() []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, d := range slo.ReadableThresholds() {
		seen[d.Seconds()] = true
		out = append(out, d.Seconds())
	}
	for _, s := range slo.ThresholdSeconds(g.explicit) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Float64s(out)
	return out
}

// thresholdSet renders latency thresholds as the YAML flow list the
// collector's slo_thresholds takes.
func thresholdSet(seconds []float64) string {
	parts := make([]string, len(seconds))
	for i, s := range seconds {
		parts[i] = strconv.FormatFloat(s, 'g', -1, 64)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
