package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/meshlens/meshlens/collector"
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
	if err := collector.Run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens collector: %v\n", err)
		return 1
	}
	return 0
}
