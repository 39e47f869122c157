// Command harness runs the proxy benchmark of docs/benchmarks.md: fortio at a
// fixed rate (and closed-loop) through each proxy in turn, the proxy alone on
// CPU 1, fortio and its echo backend on CPU 0, in interleaved rounds. It
// prints a markdown table and writes the raw results as JSON.
//
//	harness [-rounds 2] [-duration 15s] [-rates 1000,2000] [-only meshproxy,bare-go]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshlens/meshlens/internal/freeport"
)

// result is one measurement: one variant, one load, one round.
type result struct {
	Variant  string
	Load     string // "1000", "2000" (requests/s) or "closed"
	Round    int
	Requests int64
	Errors   int64
	QPS      float64
	P        [4]float64 // p50, p90, p99, p99.9 in microseconds
	CPU      float64    // CPU-seconds of the proxy's process tree
	RSSMB    float64    // peak RSS (VmHWM) of the proxy's process tree
}

var percentiles = [4]string{"50", "90", "99", "99.9"}

type options struct {
	rounds         int
	duration       time.Duration
	closedDuration time.Duration
	warmup         time.Duration
	rates          []string
	conns          int
	only           []string
	out            string
	root           string
}

func main() {
	var o options
	var rates, only string
	flag.IntVar(&o.rounds, "rounds", 2, "interleaved rounds")
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measured time per fixed-rate run")
	flag.DurationVar(&o.closedDuration, "closed-duration", 10*time.Second, "measured time per closed-loop run")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured load before each run")
	flag.StringVar(&rates, "rates", "1000,2000", "fixed rates, requests/s")
	flag.IntVar(&o.conns, "c", 16, "connections")
	flag.StringVar(&only, "only", "", "comma-separated variants to run (default all; direct always runs)")
	flag.StringVar(&o.out, "out", "out/bench", "directory for logs and results.json")
	flag.StringVar(&o.root, "root", ".", "repository root")
	from := flag.String("from", "", "print the table from this results.json instead of running (same -rates, -c, -duration)")
	flag.Parse()
	o.rates = strings.Split(rates, ",")
	if only != "" {
		o.only = append(strings.Split(only, ","), "direct")
	}
	if *from != "" {
		var rs []result
		b, err := os.ReadFile(*from)
		if err == nil {
			err = json.Unmarshal(b, &rs)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		o.rounds = 0
		for _, r := range rs {
			o.rounds = max(o.rounds, r.Round)
		}
		report(os.Stdout, o, rs)
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(o.out)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fortio := filepath.Join(root, ".tools/bin/fortio")

	// Backend and telemetry sink stay up for the whole run, on CPU 0.
	backendPort, err := freeport.Port()
	if err != nil {
		return err
	}
	backend := fmt.Sprintf("127.0.0.1:%d", backendPort)
	be, err := startPinned("0", filepath.Join(dir, "backend.log"), nil, fortio, "server",
		"-http-port", backend, "-grpc-port", "disabled", "-redirect-port", "disabled",
		"-tcp-port", "disabled", "-udp-port", "disabled", "-loglevel", "Warning", "-data-dir", dir)
	if err != nil {
		return err
	}
	defer stop(be)
	sinkPort, err := freeport.Port()
	if err != nil {
		return err
	}
	sink := fmt.Sprintf("127.0.0.1:%d", sinkPort)
	sk, err := startPinned("0", filepath.Join(dir, "sink.log"), nil, filepath.Join(root, "bin/bench/sink"), "-listen", sink)
	if err != nil {
		return err
	}
	defer stop(sk)
	if err := waitReady("http://" + backend + "/echo"); err != nil {
		return err
	}
	if err := waitReady("http://" + sink + "/counts"); err != nil {
		return err
	}

	var vs []variant
	for _, v := range variants() {
		if o.only == nil || slices.Contains(o.only, v.name) {
			vs = append(vs, v)
		}
	}
	loads := append(slices.Clone(o.rates), "closed")
	var results []result
	start := time.Now()
	for round := 1; round <= o.rounds; round++ {
		for _, load := range loads {
			// Interleave: each round starts at a different variant.
			for i := range vs {
				v := vs[(i+round-1)%len(vs)]
				r, err := measure(o, v, load, round, root, dir, backend, sink, fortio)
				if err != nil {
					return fmt.Errorf("%s at %s, round %d: %w", v.name, load, round, err)
				}
				fmt.Fprintf(os.Stderr, "[%4.0fs] round %d %-16s %-6s %7.0f req/s p50 %6.0fµs p99 %7.0fµs cpu %.2fs rss %.1fMB errors %d\n",
					time.Since(start).Seconds(), round, v.name, load, r.QPS, r.P[0], r.P[2], r.CPU, r.RSSMB, r.Errors)
				results = append(results, r)
			}
		}
	}
	b, _ := json.MarshalIndent(results, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "results.json"), b, 0o644); err != nil {
		return err
	}
	report(os.Stdout, o, results)
	return nil
}

// measure starts v, warms it up, runs one measured load and stops it, so that
// every peak RSS belongs to one load level.
func measure(o options, v variant, load string, round int, root, dir, backend, sink, fortio string) (result, error) {
	r := result{Variant: v.name, Load: load, Round: round}
	target := backend
	var cmd *exec.Cmd
	if v.start != nil {
		listen, err := freeport.Port()
		if err != nil {
			return r, err
		}
		admin, err := freeport.Port()
		if err != nil {
			return r, err
		}
		// Configs and logs stay in out/bench/VARIANT-LOAD-ROUND.
		scratch := filepath.Join(dir, fmt.Sprintf("%s-%s-%d", v.name, load, round))
		if err := os.RemoveAll(scratch); err != nil {
			return r, err
		}
		if err := os.Mkdir(scratch, 0o755); err != nil {
			return r, err
		}
		target = fmt.Sprintf("127.0.0.1:%d", listen)
		e := env{Listen: target, Port: listen, Backend: backend, Sink: sink, Admin: fmt.Sprintf("127.0.0.1:%d", admin),
			Dir: scratch, Idle: 4 * o.conns, Root: root}
		if cmd, err = v.start(e); err != nil {
			return r, err
		}
		defer stop(cmd)
		if err := waitReady("http://" + target + "/echo"); err != nil {
			return r, err
		}
	}
	url := "http://" + target + "/echo"
	qps, dur := load, o.duration
	if load == "closed" {
		qps, dur = "0", o.closedDuration
	}
	if _, err := fortioLoad(fortio, qps, o.conns, o.warmup, url, filepath.Join(dir, "warmup.json")); err != nil {
		return r, fmt.Errorf("warmup: %w", err)
	}
	var cpu0 float64
	if cmd != nil {
		cpu0 = cpuSeconds(cmd.Process.Pid)
	}
	f, err := fortioLoad(fortio, qps, o.conns, dur, url, filepath.Join(dir, fmt.Sprintf("%s-%s-%d.json", v.name, load, round)))
	if err != nil {
		return r, err
	}
	if cmd != nil {
		r.CPU = cpuSeconds(cmd.Process.Pid) - cpu0
		r.RSSMB = peakRSSMB(cmd.Process.Pid)
	}
	r.Requests = f.DurationHistogram.Count
	r.Errors = r.Requests - f.RetCodes["200"]
	r.QPS = f.ActualQPS
	for i, want := range percentiles {
		for _, p := range f.DurationHistogram.Percentiles {
			if strconv.FormatFloat(p.Percentile, 'f', -1, 64) == want {
				r.P[i] = p.Value * 1e6
			}
		}
	}
	return r, nil
}

// fortioResult is the part of fortio's -json output we read.
type fortioResult struct {
	ActualQPS         float64
	RetCodes          map[string]int64
	DurationHistogram struct {
		Count       int64
		Percentiles []struct{ Percentile, Value float64 }
	}
}

// fortioLoad runs fortio on CPU 0: -qps rate (0 = closed loop), calls spread
// evenly over the connections (-uniform), 1 KiB POST bodies echoed back,
// HTTP/1.1 keep-alive, 10 µs histogram resolution.
func fortioLoad(fortio, qps string, conns int, d time.Duration, url, jsonPath string) (fortioResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "taskset", "-c", "0", fortio, "load", "-quiet",
		"-qps", qps, "-uniform", "-c", strconv.Itoa(conns), "-t", d.String(),
		"-payload-size", "1024", "-r", "0.00001", "-p", strings.Join(percentiles[:], ","),
		"-json", jsonPath, url)
	var f fortioResult
	if out, err := cmd.CombinedOutput(); err != nil {
		return f, fmt.Errorf("fortio load: %w: %s", err, out)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("fortio json: %w", err)
	}
	return f, nil
}
