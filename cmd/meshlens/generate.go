package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"go.yaml.in/yaml/v3"

	"github.com/meshlens/meshlens/alerts"
	"github.com/meshlens/meshlens/slo"
)

// generator is one `meshlens generate KIND` subcommand. run gets the
// arguments after KIND and returns the process exit code.
type generator struct {
	summary string
	run     func(ctx context.Context, args []string) int
}

// generators holds the generate subcommands by kind. Each kind lives in its
// own file (generate_alerts.go, generate_dashboards.go, ...) and adds itself
// with registerGenerator from an init function.
var generators = map[string]generator{}

// registerGenerator adds a `meshlens generate KIND` subcommand.
func registerGenerator(kind string, g generator) {
	if _, dup := generators[kind]; dup {
		panic("meshlens: generator registered twice: " + kind)
	}
	generators[kind] = g
}

func init() {
	register("generate", command{
		summary: "write generated artefacts (alerts, dashboards, ...)",
		run:     runGenerate,
	})
}

func generateUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: meshlens generate KIND [flags]\n\nkinds:")
	kinds := make([]string, 0, len(generators))
	for k := range generators {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-12s %s\n", k, generators[k].summary)
	}
	fmt.Fprintln(w, "\nRun 'meshlens generate KIND -h' for a kind's flags.")
}

func runGenerate(ctx context.Context, args []string) int {
	if len(args) < 1 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		generateUsage(os.Stderr)
		return 2
	}
	g, ok := generators[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "meshlens generate: unknown kind %q\n\n", args[0])
		generateUsage(os.Stderr)
		return 2
	}
	return g.run(ctx, args[1:])
}

// exitCodeForFlagErr maps a flag parse error to an exit code: 0 for -h, 2
// otherwise. Generators share it so they all behave alike.
func exitCodeForFlagErr(err error) int {
	if err == flag.ErrHelp {
		return 0
	}
	return 2
}

func init() {
	registerGenerator("alerts", generator{
		summary: "Prometheus SLO burn-rate rules, promtool tests and an Alertmanager route for every service",
		run:     runGenerateAlerts,
	})
}

func runGenerateAlerts(ctx context.Context, args []string) int {
	fs, in := newSLOFlags("generate alerts")
	var (
		out, scale, reload string
		policyFile         string
		cfg                alerts.Config
	)
	fs.StringVar(&out, "out", "", "output `DIR` (required): slo-<service>.rules.yml, slo-<service>.test.yml, meshlens-alertmanager.yml, meshlens-alertmanager.tmpl")
	fs.StringVar(&scale, "window-scale", "1", "scale every window by a `FACTOR` or FROM=TO (tests: 1h=1m)")
	fs.DurationVar(&cfg.EvaluationInterval, "evaluation-interval", 0, "rule evaluation interval before scaling (default 30s)")
	fs.StringVar(&cfg.RunbookURL, "runbook-url", "", "runbook URL `TEMPLATE` (Prometheus template: {{ $labels.service }}, {{ $labels.slo }})")
	fs.StringVar(&cfg.GrafanaURL, "grafana-url", "", "Grafana base `URL` for dashboard links (default "+alerts.DefaultGrafanaURL+")")
	fs.StringVar(&cfg.TraceSearchURL, "trace-url", "", "trace search UI base `URL` (default "+alerts.DefaultTraceSearchURL+")")
	fs.StringVar(&cfg.PageWebhookURL, "page-webhook-url", "", "Alertmanager webhook `URL` for pages")
	fs.StringVar(&cfg.TicketWebhookURL, "ticket-webhook-url", "", "Alertmanager webhook `URL` for tickets")
	fs.StringVar(&policyFile, "policy", "", "YAML `FILE` with the burn-rate policy of SLOs without their own (windows: [{severity, burn_rate, long, short, for}]; default: the SRE Workbook's)")
	fs.StringVar(&reload, "reload", "", "POST `URL`/-/reload of this Prometheus after writing (needs --web.enable-lifecycle)")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if out == "" || fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "meshlens generate alerts: --out DIR is required (and no positional arguments)")
		return 2
	}
	f, err := alerts.ParseWindowScale(scale)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate alerts: --window-scale: %v\n", err)
		return 2
	}
	cfg.WindowScale = f
	if policyFile != "" {
		p, err := loadPolicy(policyFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
			return 2
		}
		cfg.Policy = p
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
		return 2
	}
	if err := in.load(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
		return 1
	}
	defer in.close()
	set := in.set()
	files, err := alerts.Generate(set, cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
		return 1
	}
	changed, err := alerts.WriteDir(out, files)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
		return 1
	}
	if changed && reload != "" {
		if err := alerts.Reload(ctx, in.client, reload); err != nil {
			fmt.Fprintf(os.Stderr, "meshlens generate alerts: %v\n", err)
			return 1
		}
	}
	fmt.Printf("alerts: %d SLOs of %d services, %d files in %s (changed: %v); thresholds to count: %v\n",
		len(set), len(slo.Services(set)), len(files), out, changed, slo.Thresholds(set))
	return 0
}

// loadPolicy reads a burn-rate policy YAML file, strictly.
func loadPolicy(path string) (*slo.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var p slo.Policy
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return &p, nil
}
