package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/report"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

// The client-versus-proxy timing difference: the load generator's clock
// runs from before it writes the request to after it reads the last response
// byte, the sidecar's from the request's first byte to the response's last
// byte. The difference is two loopback hops and two process wake-ups: about
// 100 µs on an idle machine, tens of milliseconds on an overloaded one. The
// test measures it per request (client latency minus the sidecar's SERVER
// span, matched by x-request-id) and allows its maximum, never less than
// minClientProxyOffset. docs/report.md explains it.
const minClientProxyOffset = 2 * time.Millisecond

// delayTable is the known distribution: 1000 equally likely delays, the
// quantiles of a log-normal with median 4 ms and shape 0.8 (p99 ≈ 26 ms,
// p99.9 ≈ 47 ms).
func delayTable() []time.Duration {
	out := make([]time.Duration, 1000)
	for i := range out {
		p := (float64(i) + 0.5) / 1000
		z := math.Sqrt2 * math.Erfinv(2*p-1)
		out[i] = time.Duration(4e6 * math.Exp(0.8*z))
	}
	return out
}

// exactPercentile is the percentile of the samples with HdrHistogram's rank
// rule: the smallest value with at least round(q% of n) values at or below
// it.
func exactPercentile(sorted []int64, q float64) int64 {
	rank := int(q/100*float64(len(sorted)) + 0.5)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}

// TestReportAccuracy drives a known latency distribution through a real
// meshproxy into a real collector and store, and checks that the report's
// p99 and p99.9 match the exact percentiles of what the load generator
// measured, within 1% plus clientProxyOffset.
func TestReportAccuracy(t *testing.T) {
	bin := testenv.Tool(t, "meshproxy")
	dataDir := t.TempDir()
	logDir := filepath.Join(dataDir, "logs")
	o := Options{DataDir: dataDir, OutDir: t.TempDir(), RPS: 1, MeshproxyBinary: bin}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	if err := mkdir(logDir); err != nil {
		t.Fatal(err)
	}
	// The collector runs in its own process, as in production, so that the
	// load generator's process measures only the load.
	col := startCollectorProcess(t, o, logDir)
	ctx := context.Background()
	if err := col.waitReady(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}

	delays := delayTable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/d/"))
		if err != nil || i < 0 || i >= len(delays) {
			http.Error(w, "bad delay index", http.StatusBadRequest)
			return
		}
		time.Sleep(delays[i])
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = backend.Serve(ln) }()
	defer backend.Close()

	sc, err := StartSidecar(ctx, SidecarConfig{Binary: bin, Service: "accuracy", App: ln.Addr().String(),
		Collector: col.urls.OTLPHTTP, FlushInterval: time.Second, LogDir: logDir})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			sc.Stop(context.Background())
		}
	}()

	start := time.Now()
	load, err := Load(ctx, LoadConfig{
		Target: sc.Inbound, Host: "accuracy", Mix: []WeightedRequest{{Weight: 1, Method: "GET", Path: "/d/{id}"}},
		RPS: 250, Duration: 12 * time.Second, MaxRequests: 3000, KeepSamples: true, Seed: 42, RequestIDPrefix: "acc-",
	})
	if err != nil {
		t.Fatal(err)
	}
	if load.Errors > 0 || load.Completed < 1500 { // an overloaded machine skips some; the rest is enough
		t.Fatalf("load: %d completed, %d errors, %d skipped", load.Completed, load.Errors, load.Skipped)
	}
	shutdown, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sc.Stop(shutdown) // drains and flushes the last interval
	stopped = true

	st, err := sqlite.Open(ctx, dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := NewWatcher(st, time.Minute)
	deadline := time.Now().Add(20 * time.Second)
	for w.Total("accuracy") < load.Completed && time.Now().Before(deadline) {
		if err := w.Poll(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ropts := report.Options{From: start.Add(-time.Minute).Truncate(time.Minute), To: time.Now().Truncate(time.Minute).Add(time.Minute)}
	r, err := report.Build(ctx, st, ropts)
	if err != nil {
		t.Fatal(err)
	}
	checkLatencyAPIReport(t, col.urls.API, ropts, r)
	var row *report.Row
	for i := range r.Services {
		if r.Services[i].Service == "accuracy" {
			row = &r.Services[i]
		}
	}
	if row == nil {
		t.Fatalf("service missing from the report: %+v", r.Services)
	}
	if row.Current.Requests != load.Completed {
		t.Errorf("report counts %d requests, the load generator completed %d", row.Current.Requests, load.Completed)
	}

	// The sidecar's own time for every request, from its spans.
	proxyUs := proxyDurations(t, st, start, load.Completed)
	var proxySorted []int64
	offset := minClientProxyOffset
	for i, id := range load.IDs {
		p, ok := proxyUs[id]
		if !ok {
			t.Fatalf("no span for request %s", id)
		}
		proxySorted = append(proxySorted, p)
		if d := time.Duration(load.Samples[i]-p) * time.Microsecond; d > offset {
			offset = d
		}
	}
	slices.Sort(proxySorted)
	clientSorted := slices.Clone(load.Samples)
	slices.Sort(clientSorted)
	t.Logf("client minus proxy: at most %v over %d requests", offset, len(load.IDs))
	for _, c := range []struct {
		name string
		q    float64
		got  int64
	}{{"p99", 99, row.Current.P99}, {"p99.9", 99.9, row.Current.P999}} {
		client := exactPercentile(clientSorted, c.q)
		proxy := exactPercentile(proxySorted, c.q)
		t.Logf("%s: report %s, sidecar spans %s, load generator %s", c.name, report.Micros(c.got), report.Micros(proxy), report.Micros(client))
		// The pipeline is exact: HDR's 3 significant digits are well
		// within 1% of what the sidecar measured.
		if math.Abs(float64(c.got-proxy)) > 0.01*float64(proxy) {
			t.Errorf("%s: report %dus, sidecar spans %dus: more than 1%% apart", c.name, c.got, proxy)
		}
		// Against the load generator: within 1% plus the timing difference.
		// A client can never see a request faster than the sidecar did.
		lo := float64(c.got) * 0.99
		hi := float64(c.got)*1.01 + float64(offset.Microseconds())
		if float64(client) < lo || float64(client) > hi {
			t.Errorf("%s: load generator %dus outside [%.0f, %.0f]us (report %dus, 1%% plus %v)", c.name, client, lo, hi, c.got, offset)
		}
	}
}

// proxyDurations reads the SERVER spans of the accuracy sidecar and returns
// their durations in microseconds by request ID, waiting until all want are
// stored.
func proxyDurations(t *testing.T, st store.Store, start time.Time, want int64) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	q := store.TraceQuery{Service: "accuracy", Start: start.Add(-time.Minute), End: time.Now().Add(time.Minute), Limit: int(want) + 100}
	var ids []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		ids, err = st.FindTraceIDs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(ids)) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	out := make(map[string]int64, len(ids))
	for _, id := range ids {
		spans, err := st.Trace(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range spans {
			if s.Service == "accuracy" && s.Kind == "server" && s.RequestID != "" {
				out[s.RequestID] = s.Duration.Microseconds()
			}
		}
	}
	return out
}

// checkLatencyAPIReport builds the report through the running collector's
// query API and checks it gives the store's figures.
func checkLatencyAPIReport(t *testing.T, api string, o report.Options, fromStore *report.Report) {
	t.Helper()
	ctx := context.Background()
	src := &report.APISource{BaseURL: api}
	r, err := report.Build(ctx, src, o)
	if errors.Is(err, report.ErrNoRollupsAPI) {
		r, err = report.BuildFromLatencyAPI(ctx, src, o)
	}
	if err != nil {
		t.Fatalf("report through the query API: %v", err)
	}
	if len(r.Services) != 1 || len(fromStore.Services) != 1 {
		t.Fatalf("services through the API %+v, from the store %+v; want one each", r.Services, fromStore.Services)
	}
	a, b := r.Services[0].Current, fromStore.Services[0].Current
	if a.Requests != b.Requests || a.P50 != b.P50 || a.P99 != b.P99 || a.P999 != b.P999 || a.Max != b.Max {
		t.Errorf("through the API %+v, from the store %+v", a, b)
	}
}

// startCollectorProcess runs `meshlens collector` with the demo's settings;
// the test's cleanup stops it with SIGTERM.
func startCollectorProcess(t *testing.T, o Options, logDir string) *collectorRun {
	t.Helper()
	bin := testenv.Tool(t, "meshlens")
	urls, set, err := collectorConfig(o, logDir)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"collector", "--data-dir", o.DataDir}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &collectorRun{urls: urls, cancel: func() {}, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", stderr.String())
		}
	})
	return c
}
