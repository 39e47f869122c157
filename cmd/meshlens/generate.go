package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
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
