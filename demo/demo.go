package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshlens/meshlens/collector"
	"github.com/meshlens/meshlens/report"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

// Options configure a demo run.
type Options struct {
	// Duration of the load; the demo ends by itself after it. 0 runs until
	// ctx ends.
	Duration time.Duration
	// RPS is the load generator's request rate at the front service.
	RPS float64
	// DataDir holds the collector's store and queue and the sidecars' logs.
	DataDir string
	// OutDir receives the reports (and generated artefacts).
	OutDir string
	// MeshproxyBinary is the sidecar executable.
	MeshproxyBinary string
	// DefaultPorts makes the collector listen on its usual ports (4318,
	// 4317, 8889, 16686) when they are free; otherwise all ports are
	// random.
	DefaultPorts bool
	// FlushInterval is the sidecars' histogram flush interval (default 2s).
	FlushInterval time.Duration
	// Refresh is how often the live table is redrawn (default 3s).
	Refresh time.Duration
	// Out receives the live table and the summary; Terminal redraws the
	// table in place.
	Out      io.Writer
	Terminal bool
	Logger   *slog.Logger
	// Artefacts, when set, is called at the end with the data directory and
	// the out directory, to write dashboards and alert rules.
	Artefacts func(ctx context.Context, dataDir, outDir string) ([]string, error)
}

// Result is what a demo run produced.
type Result struct {
	Report *report.Report
	Load   *LoadResult
	Files  []string
	URLs   URLs
}

// URLs are the collector's endpoints during the run.
type URLs struct {
	OTLPHTTP, OTLPGRPC, Metrics, API string
}

func (o *Options) defaults() error {
	if o.RPS <= 0 {
		return fmt.Errorf("rps: %v must be positive", o.RPS)
	}
	if o.Duration < 0 {
		return fmt.Errorf("duration: %v must not be negative", o.Duration)
	}
	if o.DataDir == "" {
		return errors.New("data dir: must be set")
	}
	if o.OutDir == "" {
		return errors.New("out dir: must be set")
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 2 * time.Second
	}
	if o.Refresh <= 0 {
		o.Refresh = 3 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MeshproxyBinary == "" {
		p, err := FindBinary("meshproxy")
		if err != nil {
			return err
		}
		o.MeshproxyBinary = p
	}
	return nil
}

// Run runs the demo: collector, mesh, load, live table, final report. It
// returns when the duration is over or ctx ends, with every part stopped.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	logDir := filepath.Join(o.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	res := &Result{}

	// 1. The collector, in this process.
	col, err := startCollector(o, logDir)
	if err != nil {
		return nil, err
	}
	res.URLs = col.urls
	defer col.stop()
	if err := col.waitReady(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, o.DataDir, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("open the demo store: %w", err)
	}
	defer st.Close()

	// 2. The mesh: services, then sidecars from the leaves up.
	mesh, err := startMesh(ctx, o, res.URLs.OTLPHTTP, logDir)
	defer mesh.stop()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "meshlens demo: %d services behind meshproxy sidecars, %g requests/s at %s", len(mesh.services), o.RPS, Entry.Service)
	if o.Duration > 0 {
		fmt.Fprintf(o.Out, " for %v; %s degrades at %v", o.Duration, degradingService(), (o.Duration / 2).Round(time.Second))
	}
	fmt.Fprintf(o.Out, "\n  query API    %s/api/v1/services\n  Jaeger API   %s/api/traces (Grafana's Jaeger data source: %s)\n  metrics      %s/metrics\n  data         %s\n\n",
		res.URLs.API, res.URLs.API, res.URLs.API, res.URLs.Metrics, o.DataDir)

	// 3. Load, the degradation at half time, and the live table.
	start := time.Now()
	watcher := NewWatcher(st, 10*time.Second)
	clock := NewIntervalClock()
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	loadDone := make(chan *LoadResult, 1)
	duration := o.Duration
	if duration == 0 {
		duration = 100 * 365 * 24 * time.Hour
	}
	go func() {
		r, _ := Load(loadCtx, LoadConfig{
			Target: mesh.sidecars[Entry.Service].Inbound, Host: Entry.Service, Mix: Entry.Mix,
			RPS: o.RPS, Duration: duration, MaxInFlight: 256, RequestIDPrefix: "demo-", Seed: uint64(start.UnixNano()),
		})
		loadDone <- r
	}()
	degradeAt := start.Add(o.Duration / 2)
	if o.Duration == 0 {
		degradeAt = start.Add(time.Minute)
	}
	degradeTimer := time.NewTimer(time.Until(degradeAt))
	defer degradeTimer.Stop()
	degraded := false
	names := mesh.names()
	live := &liveView{out: o.Out, terminal: o.Terminal}
	tick := time.NewTicker(o.Refresh)
	defer tick.Stop()
	var load *LoadResult
loop:
	for {
		select {
		case load = <-loadDone:
			break loop
		case now := <-degradeTimer.C:
			mesh.degrade()
			degraded, degradeAt = true, now
		case now := <-tick.C:
			mesh.observe(ctx, clock, o.Logger)
			if err := watcher.Poll(ctx, now); err != nil {
				o.Logger.Warn("demo: live table", "err", err)
				continue
			}
			status := fmt.Sprintf("%s  t+%ds", now.Format("15:04:05"), int(now.Sub(start).Seconds()))
			if degraded {
				status += fmt.Sprintf("  %s DEGRADED since t+%ds", degradingService(), int(degradeAt.Sub(start).Seconds()))
			}
			live.draw(watcher.Live(names, now.Sub(start)), status)
		}
	}
	end := time.Now()
	res.Load = load
	interrupted := ctx.Err() != nil

	// 4. Wait for the last intervals, then stop the mesh so nothing more
	// arrives, and write the reports.
	finish, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !interrupted {
		waitForData(finish, watcher, load.Completed, o.FlushInterval)
	}
	mesh.observe(finish, clock, o.Logger)
	mesh.stop()
	_ = watcher.Poll(finish, time.Now())
	fmt.Fprintf(o.Out, "\nload: %d sent, %d completed, %d errors, %d skipped (mesh too slow for the rate)\n", load.Sent, load.Completed, load.Errors, load.Skipped)

	ropts := report.Options{From: start, To: end, Step: o.Refresh}
	if o.Duration > 0 && degraded {
		// The report compares the degraded half with the healthy half.
		ropts.From = degradeAt
	}
	ropts.Step = reportStep(end.Sub(start), o.FlushInterval)
	ropts.At = func(r store.Rollup) time.Time {
		if t, ok := clock.Middle(r); ok {
			return t
		}
		return r.Minute
	}
	rep, err := report.Build(finish, st, ropts)
	if err != nil {
		return res, fmt.Errorf("final report: %w", err)
	}
	res.Report = rep
	files, err := report.WriteFiles(o.OutDir, "report", rep)
	res.Files = append(res.Files, files...)
	if err != nil {
		return res, err
	}
	if o.Artefacts != nil {
		more, err := o.Artefacts(finish, o.DataDir, o.OutDir)
		res.Files = append(res.Files, more...)
		if err != nil {
			o.Logger.Warn("demo: generated artefacts", "err", err)
		}
	}
	fmt.Fprintln(o.Out)
	if err := report.WriteText(o.Out, rep); err != nil {
		return res, err
	}
	fmt.Fprintf(o.Out, "\nwritten to %s:\n", o.OutDir)
	for _, f := range res.Files {
		fmt.Fprintf(o.Out, "  %s\n", f)
	}
	fmt.Fprintf(o.Out, "\nthe data stays in %s:\n  meshlens report --data-dir %s --since 15m\n  meshlens traces --data-dir %s --request-id demo-100\n", o.DataDir, o.DataDir, o.DataDir)
	if interrupted {
		return res, ctx.Err()
	}
	return res, nil
}

// reportStep is the resolution of the final report's series: about 30
// points, never finer than the flush interval.
func reportStep(run, flush time.Duration) time.Duration {
	step := (run / 30).Round(time.Second)
	if step < flush {
		step = flush
	}
	return step
}

// waitForData polls until the store holds the front service's inbound
// requests the load generator completed, or a few flushes went by.
func waitForData(ctx context.Context, w *Watcher, completed int64, flush time.Duration) {
	limit := time.Now().Add(3*flush + 10*time.Second)
	for time.Now().Before(limit) && ctx.Err() == nil {
		_ = w.Poll(ctx, time.Now())
		if w.Total(Entry.Service) >= completed {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func degradingService() string {
	var out []string
	for _, s := range SampleMesh() {
		if s.Degraded != nil {
			out = append(out, s.Name)
		}
	}
	return strings.Join(out, ", ")
}

// liveView draws the live table, in place on a terminal.
type liveView struct {
	out      io.Writer
	terminal bool
	lines    int
}

func (v *liveView) draw(rows []LiveRow, status string) {
	var b strings.Builder
	_ = WriteLive(&b, rows, status)
	s := b.String()
	if v.terminal && v.lines > 0 {
		fmt.Fprintf(v.out, "\x1b[%dA\x1b[J", v.lines)
	}
	fmt.Fprint(v.out, s)
	if !v.terminal {
		fmt.Fprintln(v.out)
	}
	v.lines = strings.Count(s, "\n")
}

// collectorRun is the in-process collector.
type collectorRun struct {
	urls   URLs
	cancel context.CancelFunc
	done   chan error
}

// collectorConfig picks the collector's addresses and returns its URLs and
// the config overrides that put it there, quiet, logging to a file.
func collectorConfig(o Options, logDir string) (URLs, []string, error) {
	port := func(def string) (string, error) {
		if o.DefaultPorts && portFree(def) {
			return def, nil
		}
		return FreePort()
	}
	var addrs [4]string
	for i, def := range []string{"127.0.0.1:4318", "127.0.0.1:4317", "127.0.0.1:8889", "127.0.0.1:16686"} {
		a, err := port(def)
		if err != nil {
			return URLs{}, nil, fmt.Errorf("collector ports: %w", err)
		}
		addrs[i] = a
	}
	logFile := filepath.Join(logDir, "collector.log")
	q := func(s string) string { return `"` + s + `"` }
	set := []string{
		"receivers::meshlens_hdr::endpoint=" + q(addrs[0]),
		"receivers::otlp::protocols::grpc::endpoint=" + q(addrs[1]),
		"extensions::meshlens::metrics::endpoint=" + q(addrs[2]),
		"extensions::meshlens::api::endpoint=" + q(addrs[3]),
		"service::telemetry::logs::level=warn",
		"service::telemetry::logs::output_paths=[" + q(logFile) + "]",
		"service::telemetry::logs::error_output_paths=[" + q(logFile) + "]",
		"processors::memory_limiter::limit_mib=512",
		"processors::memory_limiter::spike_limit_mib=128",
	}
	urls := URLs{OTLPHTTP: "http://" + addrs[0], OTLPGRPC: addrs[1], Metrics: "http://" + addrs[2], API: "http://" + addrs[3]}
	return urls, set, nil
}

func startCollector(o Options, logDir string) (*collectorRun, error) {
	urls, set, err := collectorConfig(o, logDir)
	if err != nil {
		return nil, err
	}
	opts := collector.Options{DataDir: o.DataDir, Version: "demo", Set: set}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collectorRun{urls: urls, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- collector.Run(ctx, opts) }()
	return c, nil
}

func (c *collectorRun) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.urls.API+"/api/v1/services", nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("collector stopped during start-up: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("collector not ready after %v", limit)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *collectorRun) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
	}
}

func portFree(addr string) bool {
	ln, err := netListen(addr)
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
