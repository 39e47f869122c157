package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshlens/meshlens/demo"
)

func init() {
	register("demo", command{
		summary: "run a sample mesh with an embedded collector, a live tail table and reports",
		run:     runDemo,
	})
}

func runDemo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var o demo.Options
	fs.DurationVar(&o.Duration, "duration", 45*time.Second, "how long the load runs; 0 runs until Ctrl-C")
	fs.Float64Var(&o.RPS, "rps", 60, "requests per second at the front service")
	fs.StringVar(&o.DataDir, "data-dir", "", "`DIR` for the collector's store and the logs (default: a new temporary directory)")
	fs.StringVar(&o.OutDir, "out", "out", "`DIR` for the reports")
	fs.DurationVar(&o.FlushInterval, "flush-interval", 2*time.Second, "the sidecars' histogram flush interval")
	fs.DurationVar(&o.Refresh, "refresh", 3*time.Second, "how often the live table is redrawn")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens demo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if o.DataDir == "" {
		dir, err := os.MkdirTemp("", "meshlens-demo-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "meshlens demo: %v\n", err)
			return 1
		}
		o.DataDir = dir
	}
	o.Out = os.Stdout
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		o.Terminal = true
	}
	o.DefaultPorts = true
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o.Artefacts = demoArtefacts
	_, err := demo.Run(ctx, o)
	switch {
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, "meshlens demo: interrupted; every part stopped")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "meshlens demo: %v\n", err)
		return 1
	}
	return 0
}

// demoArtefacts runs the `meshlens generate` kinds that exist (dashboards,
// alerts) over the demo's store, each into OUT/KIND, with the services the
// demo discovered.
func demoArtefacts(ctx context.Context, dataDir, outDir string) ([]string, error) {
	var written []string
	var failed []string
	for _, kind := range []string{"dashboards", "alerts"} {
		g, ok := generators[kind]
		if !ok {
			continue
		}
		dir := filepath.Join(outDir, kind)
		if code := g.run(ctx, []string{"--data-dir", dataDir, "--out", dir}); code != 0 {
			failed = append(failed, kind)
			continue
		}
		written = append(written, dir+string(filepath.Separator))
	}
	if len(failed) > 0 {
		return written, fmt.Errorf("meshlens generate %s failed", strings.Join(failed, ", "))
	}
	return written, nil
}
