package demo

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/store"
)

// TestServiceUnderLoad sends a bounded load straight at a sample service (no
// sidecar): the load generator completes every request at the rate, the
// service fails at about its error rate, and nothing is left running.
func TestServiceUnderLoad(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	spec := ServiceSpec{
		Name:   "leaf",
		Routes: []Route{{Method: "GET", Path: "/x/"}},
		Normal: Behaviour{Latency: Latency{Median: time.Millisecond, Sigma: 0.3}, ErrorRate: 0.2},
	}
	s, err := StartService(spec, 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Load(context.Background(), LoadConfig{
		Target: s.Addr(), Host: "leaf", Mix: []WeightedRequest{{Weight: 1, Method: "GET", Path: "/x/{id}"}},
		RPS: 200, Duration: time.Second, MaxRequests: 150, KeepSamples: true, Seed: 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if res.Sent != 150 || res.Completed != 150 || len(res.Samples) != 150 || len(res.IDs) != 150 {
		t.Fatalf("sent %d, completed %d, samples %d, ids %d; want 150 each", res.Sent, res.Completed, len(res.Samples), len(res.IDs))
	}
	if res.Errors < 10 || res.Errors > 60 {
		t.Errorf("%d errors of 150 at a 20%% error rate", res.Errors)
	}
	if res.Latency.TotalCount() != 150 || slices.Min(res.Samples) < 500 {
		t.Errorf("latencies: %d recorded, fastest %dus; want 150, none under the 1 ms median's lower range", res.Latency.TotalCount(), slices.Min(res.Samples))
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  LoadConfig
		want string
	}{
		{"no rate", LoadConfig{Mix: Entry.Mix}, "rps: 0 must be positive"},
		{"no weight", LoadConfig{RPS: 1, Mix: []WeightedRequest{{Weight: 0}}}, "mix: no request has a positive weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Load(context.Background(), c.cfg); err == nil || err.Error() != c.want {
				t.Errorf("Load() error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestLatencySample(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	l := Latency{Median: 10 * time.Millisecond, Sigma: 0.5, TailProb: 0.01, TailFactor: 10}
	var ds []time.Duration
	for range 20000 {
		ds = append(ds, l.sample(rng))
	}
	slices.Sort(ds)
	med, p999 := ds[len(ds)/2], ds[len(ds)*999/1000]
	if med < 9*time.Millisecond || med > 11*time.Millisecond {
		t.Errorf("median %v, want about 10ms", med)
	}
	if p999 < 100*time.Millisecond {
		t.Errorf("p99.9 %v: the 1%% tail at 10x should put it past 100ms", p999)
	}
}

func TestIntervalClock(t *testing.T) {
	c := NewIntervalClock()
	start := time.Date(2026, 11, 25, 12, 0, 10, 0, time.UTC)
	c.anchors["abc"] = anchor{seq: 10, start: start, every: 2 * time.Second}
	f := func(source string, want time.Time, wantOK bool) {
		t.Helper()
		got, ok := c.Middle(store.Rollup{Source: source})
		if ok != wantOK || !got.Equal(want) {
			t.Errorf("Middle(%q) = %v, %v; want %v, %v", source, got, ok, want, wantOK)
		}
	}
	f("abc/10", start.Add(time.Second), true)
	f("abc/11", start.Add(3*time.Second), true)
	f("abc/7", start.Add(-5*time.Second), true)
	f("other/10", time.Time{}, false)
	f("abc", time.Time{}, false)
	f("abc/x", time.Time{}, false)
}

// A sidecar that exits during start-up (here a binary that always does;
// in a run, a port taken between finding it free and binding it) is tried
// three times, each attempt in the log, then reported.
func TestStartSidecarRetries(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "meshproxy")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho attempt\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := StartSidecar(context.Background(), SidecarConfig{Binary: script, Service: "web", App: "127.0.0.1:1",
		Collector: "http://127.0.0.1:1", FlushInterval: time.Second, LogDir: dir})
	if !errors.Is(err, errExitedEarly) {
		t.Fatalf("err = %v, want the start-up exit", err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "web-meshproxy.log"))
	if n := strings.Count(string(log), "attempt"); n != 3 {
		t.Errorf("%d attempts in the log, want 3:\n%s", n, log)
	}
}
