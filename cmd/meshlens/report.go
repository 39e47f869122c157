package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/meshlens/meshlens/report"
	"github.com/meshlens/meshlens/store/open"
)

func init() {
	register("report", command{
		summary: "tail-latency report per service, edge and route (text, json, html, hlog)",
		run:     runReport,
	})
}

const reportUsage = `usage: meshlens report [--since 1h | --from T --to T] [--format text|json|html|hlog] [--out FILE]
                      [--data-dir DIR | --database-url URL | --api URL]

Requests, errors and p50 .. p99.99 and max latency per service, edge and
route over a window, against the window of the same length before it, worst
tail first. Percentiles are merged exactly from the stored HDR histograms.
`

func runReport(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), reportUsage, "\nflags:\n"); fs.PrintDefaults() }
	since := fs.Duration("since", time.Hour, "window: the last `DURATION` (ignored with --from)")
	fromS := fs.String("from", "", "window start, RFC 3339 (`TIME`)")
	toS := fs.String("to", "", "window end, RFC 3339 (`TIME`; default now)")
	step := fs.Duration("step", 0, "resolution of the latency-over-time series and the interval log (default 1m up to 2h windows)")
	format := fs.String("format", "text", "output `FORMAT`: "+strings.Join(report.FormatNames, ", "))
	out := fs.String("out", "", "write to `FILE` instead of standard output")
	dataDir := fs.String("data-dir", "", "read the embedded SQLite store in `DIR`")
	dbURL := fs.String("database-url", os.Getenv("MESHLENS_DATABASE_URL"), "read the PostgreSQL store at `URL` (also MESHLENS_DATABASE_URL)")
	api := fs.String("api", "", "read a running collector's query API at `URL` (e.g. http://127.0.0.1:16686)")
	if err := fs.Parse(args); err != nil {
		return exitCodeForFlagErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "meshlens report: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if _, ok := report.Formats[*format]; !ok {
		fmt.Fprintf(os.Stderr, "meshlens report: --format %q: want one of %s\n", *format, strings.Join(report.FormatNames, ", "))
		return 2
	}
	o, err := reportWindow(*since, *fromS, *toS, time.Now())
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens report: %v\n", err)
		return 2
	}
	o.Step = *step
	src, closeSrc, err := reportSource(ctx, *dataDir, *dbURL, *api)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens report: %v\n", err)
		return 2
	}
	defer closeSrc()
	r, err := report.Build(ctx, src, o)
	if api, ok := src.(*report.APISource); ok && errors.Is(err, report.ErrNoRollupsAPI) {
		if *format == "hlog" {
			fmt.Fprintf(os.Stderr, "meshlens report: %v; the interval log needs the histograms: use --data-dir or --database-url\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "meshlens report: %v; reporting from /api/v1/latency without routes, p99.99 and plots (use --data-dir or --database-url for the full report)\n", err)
		r, err = report.BuildFromLatencyAPI(ctx, api, o)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshlens report: %v\n", err)
		return 1
	}
	if err := writeReport(*out, *format, r); err != nil {
		fmt.Fprintf(os.Stderr, "meshlens report: %v\n", err)
		return 1
	}
	return 0
}

// reportWindow turns the window flags into options.
func reportWindow(since time.Duration, from, to string, now time.Time) (report.Options, error) {
	var o report.Options
	o.To = now.UTC()
	if to != "" {
		t, err := time.Parse(time.RFC3339, to)
		if err != nil {
			return o, fmt.Errorf("--to %q: want RFC 3339, like 2026-11-25T14:00:00Z", to)
		}
		o.To = t.UTC()
	}
	if from != "" {
		t, err := time.Parse(time.RFC3339, from)
		if err != nil {
			return o, fmt.Errorf("--from %q: want RFC 3339, like 2026-11-25T13:00:00Z", from)
		}
		o.From = t.UTC()
	} else {
		if since <= 0 {
			return o, fmt.Errorf("--since %v: must be positive", since)
		}
		o.From = o.To.Add(-since)
	}
	if !o.To.After(o.From) {
		return o, fmt.Errorf("--to %s is not after --from %s", o.To.Format(time.RFC3339), o.From.Format(time.RFC3339))
	}
	return o, nil
}

// reportSource opens the store, or the query API of a running collector.
func reportSource(ctx context.Context, dataDir, dbURL, api string) (report.Source, func(), error) {
	n := 0
	for _, s := range []string{dataDir, dbURL, api} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return nil, nil, errors.New("give one of --data-dir, --database-url and --api")
	}
	if api != "" {
		return &report.APISource{BaseURL: api, Token: os.Getenv("MESHLENS_TOKEN")}, func() {}, nil
	}
	if dataDir == "" && dbURL == "" {
		dataDir = "meshlens-data" // the collector's default
		if _, err := os.Stat(dataDir); err != nil {
			return nil, nil, errors.New("no store: give --data-dir, --database-url or --api (./meshlens-data does not exist)")
		}
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := open.Open(ctx, open.Options{DataDir: dataDir, DatabaseURL: dbURL, Logger: logger})
	if err != nil {
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	return st, func() { st.Close() }, nil
}

func writeReport(path, format string, r *report.Report) error {
	var w io.Writer = os.Stdout
	if path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		w = f
		if err := report.Write(w, format, r); err != nil {
			return err
		}
		return f.Close()
	}
	return report.Write(w, format, r)
}
