package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/meshlens/meshlens/alerts"
	"github.com/meshlens/meshlens/slo"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

func init() {
	register("slo", command{
		summary: "SLOs: propose defaults from history, show status and error budgets, list thresholds",
		run:     runSLO,
	})
}

func runSLO(ctx context.Context, args []string) int {
	sub := map[string]func(context.Context, []string) int{
		"propose": runSLOPropose, "status": runSLOStatus, "thresholds": runSLOThresholds,
	}
	if len(args) == 0 || sub[args[0]] == nil {
		fmt.Fprintln(os.Stderr, `usage: meshlens slo propose|status|thresholds [flags]

  propose     the default SLOs of every discovered service, with the history behind them
  status      per SLO: objective, SLI over the window, error budget left, burn rates
  thresholds  the latency thresholds the collector must count (analytics slo_thresholds)`)
		return 2
	}
	return sub[args[0]](ctx, args[1:])
}

// sloInputs are the flags every SLO command reads its SLOs from.
type sloInputs struct {
	services, sloFiles    repeatedFlag
	dataDir, databaseURL  string
	prometheus, defaults  string
	collectorURL          string
	historyWindow         time.Duration
	noDiscoveredDefaults  bool
	logger                *slog.Logger
	client                *http.Client
	now                   func() time.Time
	defaultsCfg           slo.DefaultsConfig
	history               []slo.ServiceHistory
	explicit              []slo.SLO
	openedStore           store.Store
	historyFromPrometheus bool
}

func (in *sloInputs) register(fs *flag.FlagSet) {
	fs.Var(&in.services, "service", "a service `NAME` to give default SLOs (repeatable); adds to the discovered ones")
	fs.Var(&in.sloFiles, "slo", "OpenSLO `FILE` (repeatable); its SLOs replace the defaults of the same service and indicator")
	fs.StringVar(&in.dataDir, "data-dir", "", "discover services and their history in the embedded SQLite store in `DIR`")
	fs.StringVar(&in.databaseURL, "database-url", os.Getenv("MESHLENS_DATABASE_URL"), "discover services and their history in the PostgreSQL store at `URL`")
	fs.StringVar(&in.prometheus, "prometheus", "", "Prometheus base `URL` (discovery and history when no store is given; status)")
	fs.StringVar(&in.prometheus, "prometheus-url", "", "same as --prometheus")
	fs.StringVar(&in.collectorURL, "collector", "", "discover services and their history through a running collector's query API at `URL` (token from MESHLENS_API_TOKEN)")
	fs.StringVar(&in.defaults, "defaults", "", "YAML `FILE` with the default SLO settings and per-service overrides (see docs/slo.md)")
	fs.DurationVar(&in.historyWindow, "history", 0, "history a latency threshold is proposed from (default 168h)")
	fs.BoolVar(&in.noDiscoveredDefaults, "only-openslo", false, "no default SLOs: only those of the --slo files")
}

// load reads the defaults, the OpenSLO files, and the services with their
// history.
func (in *sloInputs) load(ctx context.Context) error {
	if in.client == nil {
		in.client = &http.Client{Timeout: 30 * time.Second}
	}
	if in.now == nil {
		in.now = time.Now
	}
	if in.defaults != "" {
		b, err := os.ReadFile(in.defaults)
		if err != nil {
			return fmt.Errorf("defaults: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&in.defaultsCfg); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("defaults %s: %w", in.defaults, err)
		}
		if err := in.defaultsCfg.Validate(); err != nil {
			return fmt.Errorf("defaults %s: %w", in.defaults, err)
		}
	}
	if in.historyWindow > 0 {
		in.defaultsCfg.HistoryWindow = in.historyWindow
	}
	cfg := in.defaultsCfg.WithDefaults()
	if len(in.sloFiles) > 0 {
		spec, err := slo.LoadOpenSLOFiles(in.sloFiles...)
		if err != nil {
			return err
		}
		in.explicit = spec.SLOs
	}
	found := map[string]int{}
	add := func(hs []slo.ServiceHistory) {
		for _, h := range hs {
			if i, ok := found[h.Service]; ok {
				in.history[i].HasProxy = in.history[i].HasProxy || h.HasProxy
				continue
			}
			found[h.Service] = len(in.history)
			in.history = append(in.history, h)
		}
	}
	switch {
	case in.dataDir != "" || in.databaseURL != "":
		st, err := open.Open(ctx, open.Options{DataDir: in.dataDir, DatabaseURL: in.databaseURL, Logger: in.logger})
		if err != nil {
			return fmt.Errorf("open store: %w", err)
		}
		in.openedStore = st
		hs, err := slo.HistoryFromStore(ctx, st, cfg.HistoryWindow, cfg.HistoryQuantile, in.now())
		if err != nil {
			return err
		}
		add(hs)
	case in.collectorURL != "":
		hs, err := slo.HistoryFromCollector(ctx, in.client, in.collectorURL, os.Getenv("MESHLENS_API_TOKEN"), cfg.HistoryWindow, cfg.HistoryQuantile)
		if err != nil {
			return err
		}
		add(hs)
	case in.prometheus != "":
		hs, err := slo.HistoryFromPrometheus(ctx, slo.PrometheusAPI{URL: in.prometheus, Client: in.client}, cfg.HistoryWindow, cfg.HistoryQuantile)
		if err != nil {
			return err
		}
		in.historyFromPrometheus = true
		add(hs)
	}
	for _, n := range in.services {
		add([]slo.ServiceHistory{{Service: n, HasProxy: true, From: "--service"}})
	}
	if len(in.history) == 0 && len(in.explicit) == 0 {
		return errors.New("no services: give --service, --data-dir, --database-url, --collector, --prometheus or --slo")
	}
	return nil
}

func (in *sloInputs) close() {
	if in.openedStore != nil {
		in.openedStore.Close()
	}
}

// set is the SLO set in force.
func (in *sloInputs) set() []slo.SLO {
	var defaults []slo.SLO
	if !in.noDiscoveredDefaults {
		defaults = slo.DefaultSLOs(slo.Propose(in.defaultsCfg, in.history))
	}
	return slo.Combine(defaults, in.explicit)
}

func newSLOFlags(name string) (*flag.FlagSet, *sloInputs) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	in := &sloInputs{logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	in.register(fs)
	return fs, in
}

func runSLOPropose(ctx context.Context, args []string) int {
	fs, in := newSLOFlags("slo propose")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if err := in.load(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens slo propose: %v\n", err)
		return 1
	}
	defer in.close()
	cfg := in.defaultsCfg.WithDefaults()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "SERVICE\tSLO\tOBJECTIVE\tWINDOW\tREQUESTS (%s)\tP%s\tBASIS\n", slo.FormatDuration(cfg.HistoryWindow), strings.TrimSuffix(fmt.Sprintf("%g", cfg.HistoryQuantile*100), ".0"))
	for _, p := range slo.Propose(in.defaultsCfg, in.history) {
		q := "-"
		if p.History.Quantile > 0 {
			q = p.History.Quantile.Round(time.Microsecond).String()
		}
		if in.historyFromPrometheus && p.History.Quantile > 0 {
			q += " (classic buckets)"
		}
		for _, s := range p.SLOs {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.History.Service, s.Name, objectiveText(&s), slo.FormatDuration(s.Window), p.History.Requests, q, basis(&s, p))
		}
	}
	w.Flush()
	return 0
}

func basis(s *slo.SLO, p slo.Proposal) string {
	b := "default objective"
	if s.Indicator == slo.Latency {
		b = p.Why
	}
	if s.Scope.ViaCallers {
		b += "; no proxy: measured by its callers"
	}
	return b
}

func objectiveText(s *slo.SLO) string {
	pct := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", 100*s.Objective), "0"), ".") + "%"
	if s.Indicator == slo.Latency {
		return pct + " within " + s.Threshold.String()
	}
	return pct + " available"
}

func runSLOThresholds(ctx context.Context, args []string) int {
	fs, in := newSLOFlags("slo thresholds")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if err := in.load(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens slo thresholds: %v\n", err)
		return 1
	}
	defer in.close()
	fmt.Println("# analytics exporter setting: the latency thresholds (seconds) the SLOs need")
	fmt.Println("slo_thresholds:")
	for _, t := range slo.ThresholdSeconds(in.set()) {
		fmt.Printf("  - %g\n", t)
	}
	return 0
}

func runSLOStatus(ctx context.Context, args []string) int {
	fs, in := newSLOFlags("slo status")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if err := in.load(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens slo status: %v\n", err)
		return 1
	}
	defer in.close()
	set := in.set()
	var ratio func(s *slo.SLO, w time.Duration) (float64, bool, error)
	switch {
	case in.prometheus != "":
		api := slo.PrometheusAPI{URL: in.prometheus, Client: in.client}
		ratio = func(s *slo.SLO, w time.Duration) (float64, bool, error) {
			return api.Scalar(ctx, alerts.ErrorRatioQuery(s, w))
		}
	case in.openedStore != nil:
		now := in.now()
		ratio = func(s *slo.SLO, w time.Duration) (float64, bool, error) {
			return slo.ErrorRatioFromStore(ctx, in.openedStore, s, now.Add(-w), now)
		}
	default:
		fmt.Fprintln(os.Stderr, "meshlens slo status: give --prometheus URL, --data-dir or --database-url")
		return 2
	}
	policy := slo.DefaultPolicy()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLO\tSCOPE\tOBJECTIVE\tWINDOW\tSLI\tBUDGET LEFT\tBURN RATES")
	for i := range set {
		s := &set[i]
		p := s.Policy
		if p == nil {
			p = &policy
		}
		sli, budget := "no data", "-"
		r, ok, err := ratio(s, s.Window)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshlens slo status: %s: %v\n", s.Name, err)
			return 1
		}
		if ok {
			sli = fmt.Sprintf("%.4f%%", 100*(1-r))
			budget = fmt.Sprintf("%.1f%%", 100*slo.BudgetRemaining(r, s.Objective))
		}
		var burns []string
		for _, d := range p.Durations() {
			r, ok, err := ratio(s, d)
			if err != nil {
				fmt.Fprintf(os.Stderr, "meshlens slo status: %s: %v\n", s.Name, err)
				return 1
			}
			b := "-"
			if ok {
				b = fmt.Sprintf("%.2f", slo.BurnRate(r, s.Objective))
			}
			burns = append(burns, slo.FormatDuration(d)+"="+b)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Scope.String(), objectiveText(s), slo.FormatDuration(s.Window), sli, budget, strings.Join(burns, " "))
	}
	w.Flush()
	return 0
}
