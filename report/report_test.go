package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// hop is one hop's traffic in the test mesh: a log-normal latency (median,
// sigma) and a share of 5xx.
type hop struct {
	key    model.HopKey
	median float64 // microseconds
	sigma  float64
	errs   float64
	perMin int
}

func inbound(svc, peer, route string) model.HopKey {
	return model.HopKey{Service: svc, Direction: model.Inbound, Peer: peer, Route: route, Method: "GET", StatusClass: "2xx"}
}

func outbound(svc, peer, route string) model.HopKey {
	return model.HopKey{Service: svc, Direction: model.Outbound, Peer: peer, Route: route, Method: "GET", StatusClass: "2xx"}
}

// testRollups builds two hours of rollups for a small mesh: the second hour's
// payments tail is four times the first's.
func testRollups(t testing.TB) []store.Rollup {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	hops := []hop{
		{inbound("frontend", "unknown", "/"), 20000, 0.5, 0.001, 200},
		{outbound("frontend", "checkout", "/checkout"), 15000, 0.6, 0.002, 60},
		{inbound("checkout", "frontend", "/checkout"), 14000, 0.6, 0.002, 60},
		{outbound("checkout", "payments", "/pay"), 9000, 0.7, 0.01, 60},
		{inbound("payments", "checkout", "/pay"), 8500, 0.7, 0.01, 60},
		{outbound("frontend", "stripe", "/v1/charges"), 40000, 0.3, 0, 10},
	}
	var out []store.Rollup
	for min := 0; min < 120; min++ {
		for _, hp := range hops {
			ok, bad := hdr.New(), hdr.New()
			sigma := hp.sigma
			if hp.key.Peer == "payments" || hp.key.Service == "payments" {
				if min >= 60 {
					sigma *= 1.6
				}
			}
			for i := 0; i < hp.perMin; i++ {
				v := int64(hp.median * math.Exp(sigma*rng.NormFloat64()))
				if rng.Float64() < hp.errs {
					hdr.Record(bad, v)
				} else {
					hdr.Record(ok, v)
				}
			}
			for _, p := range []struct {
				h     *hdr.Histogram
				class string
			}{{ok, "2xx"}, {bad, "5xx"}} {
				if p.h.TotalCount() == 0 {
					continue
				}
				enc, err := hdr.Encode(p.h)
				if err != nil {
					t.Fatal(err)
				}
				k := hp.key
				k.StatusClass = p.class
				out = append(out, store.Rollup{Minute: t0.Add(time.Duration(min) * time.Minute), Key: k, Source: "test/1", Count: p.h.TotalCount(), Total: enc})
			}
		}
	}
	return out
}

// rollupSource serves rollups from memory, filtering like a store.
type rollupSource []store.Rollup

func (s rollupSource) Rollups(_ context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	var out []store.Rollup
	for _, r := range s {
		if !r.Minute.Before(f.From) && r.Minute.Before(f.To) {
			out = append(out, r)
		}
	}
	return out, nil
}

var (
	testReportOnce sync.Once
	testReportVal  *Report
	testReportErr  error
)

// testReport builds the report of the second hour of testRollups once.
func testReport(t testing.TB) *Report {
	t.Helper()
	testReportOnce.Do(func() {
		testReportVal, testReportErr = Build(context.Background(), rollupSource(testRollups(t)), Options{From: t0.Add(time.Hour), To: t0.Add(2 * time.Hour), Step: 5 * time.Minute})
	})
	if testReportErr != nil {
		t.Fatal(testReportErr)
	}
	return testReportVal
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func TestTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, testReport(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
}

func TestJSONGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSON(&b, testReport(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", b.Bytes())
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatalf("json report does not read back: %v", err)
	}
}

func TestReportFigures(t *testing.T) {
	rs := testRollups(t)
	r := testReport(t)
	// Every figure must equal one histogram that saw every value.
	want := hdr.New()
	var errs int64
	for _, x := range rs {
		if x.Key.Service != "payments" || x.Key.Direction != model.Inbound || x.Minute.Before(t0.Add(time.Hour)) {
			continue
		}
		h, err := hdr.Decode(x.Total)
		if err != nil {
			t.Fatal(err)
		}
		want.Merge(h)
		if x.Key.StatusClass == "5xx" {
			errs += h.TotalCount()
		}
	}
	var got *Row
	for i := range r.Services {
		if r.Services[i].Service == "payments" {
			got = &r.Services[i]
		}
	}
	if got == nil {
		t.Fatal("payments missing from the services")
	}
	if got.Current.Requests != want.TotalCount() || got.Current.Errors != errs {
		t.Errorf("payments requests/errors = %d/%d, want %d/%d", got.Current.Requests, got.Current.Errors, want.TotalCount(), errs)
	}
	for _, c := range []struct {
		name string
		got  int64
		q    float64
	}{{"p50", got.Current.P50, 50}, {"p99", got.Current.P99, 99}, {"p99.9", got.Current.P999, 99.9}, {"p99.99", got.Current.P9999, 99.99}} {
		if w := want.ValueAtQuantile(c.q); c.got != w {
			t.Errorf("payments %s = %d, want %d", c.name, c.got, w)
		}
	}
	if got.Change == nil || got.Change.P999 <= 0.3 {
		t.Errorf("payments p99.9 change = %+v, want a clear rise", got.Change)
	}
	if r.Services[0].Service != "payments" {
		t.Errorf("worst tail first: got %s first, want the degraded payments", r.Services[0].Service)
	}
	for _, s := range r.Services {
		if s.Service == "stripe" && s.MeasuredBy != "caller" {
			t.Errorf("stripe has no sidecar, so its callers measure it; got measured by %q", s.MeasuredBy)
		}
	}
	for i := 1; i < len(r.Edges); i++ {
		if r.Edges[i].Current.P999 > r.Edges[i-1].Current.P999 {
			t.Errorf("edges not sorted worst p99.9 first at %d", i)
		}
	}
	edges := map[string]string{}
	for _, e := range r.Edges {
		edges[e.Name] = e.MeasuredBy
	}
	wantEdges := map[string]string{"unknown -> frontend": "callee", "frontend -> checkout": "caller", "checkout -> payments": "caller", "frontend -> stripe": "caller"}
	if len(edges) != len(wantEdges) {
		t.Errorf("edges = %v, want %v", edges, wantEdges)
	}
	for k, v := range wantEdges {
		if edges[k] != v {
			t.Errorf("edge %s measured by %q, want %q", k, edges[k], v)
		}
	}
	if n := len(r.Timeline[0].Points); n != 24 {
		t.Errorf("timeline points = %d, want 24 five-minute steps over both windows", n)
	}
}

func TestHlogReadsBack(t *testing.T) {
	r := testReport(t)
	var b bytes.Buffer
	if err := WriteHlog(&b, r); err != nil {
		t.Fatal(err)
	}
	lr := hdrhistogram.NewHistogramLogReader(&b)
	perTag := map[string]int64{}
	n := 0
	for {
		h, err := lr.NextIntervalHistogram()
		if err != nil {
			t.Fatalf("interval %d: %v", n, err)
		}
		if h == nil {
			break
		}
		n++
		perTag[h.Tag()] += h.TotalCount()
		if h.EndTimeMs()-h.StartTimeMs() != 5*60*1000 {
			t.Errorf("interval %d lasts %d ms, want 300000", n, h.EndTimeMs()-h.StartTimeMs())
		}
	}
	if n != len(r.Intervals) {
		t.Errorf("read %d intervals, wrote %d", n, len(r.Intervals))
	}
	for _, s := range r.Services {
		if perTag[s.Service] != s.Current.Requests+s.Previous.Requests {
			t.Errorf("tag %s: %d values in the log, %d in the report", s.Service, perTag[s.Service], s.Current.Requests)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"no from", Options{To: t0}, "from: must be set"},
		{"no to", Options{From: t0}, "to: must be set"},
		{"reversed", Options{From: t0, To: t0.Add(-time.Minute)}, "to: 2026-11-25T11:59:00Z is not after from 2026-11-25T12:00:00Z"},
		{"negative step", Options{From: t0, To: t0.Add(time.Hour), Step: -1}, "step: -1ns must not be negative"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.o.Validate()
			if err == nil || err.Error() != c.want {
				t.Errorf("Validate() = %v, want %q", err, c.want)
			}
		})
	}
}

func TestCorruptRollupIsSkippedAndNamed(t *testing.T) {
	h := hdr.New()
	hdr.Record(h, 2000)
	good, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	rs := []store.Rollup{
		{Minute: t0, Key: inbound("a", "b", "/"), Source: "p/1", Total: "not a histogram"},
		{Minute: t0, Key: inbound("a", "b", "/"), Source: "p/2", Total: good},
	}
	r, err := FromRollups(rs, Options{From: t0, To: t0.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if r.SkippedRollups != 1 || len(r.SkipErrors) != 1 {
		t.Fatalf("skipped %d (%v), want 1", r.SkippedRollups, r.SkipErrors)
	}
	if want := "rollup 0 (2026-11-25T12:00:00Z, a inbound b, source p/1): total: corrupt histogram"; !strings.HasPrefix(r.SkipErrors[0], want) {
		t.Errorf("skip error = %q, want it to start with %q", r.SkipErrors[0], want)
	}
	if len(r.Services) != 1 || r.Services[0].Current.Requests != 1 {
		t.Errorf("the good rollup was lost: %+v", r.Services)
	}
	var b bytes.Buffer
	if err := WriteText(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "WARNING: 1 stored rollups skipped") {
		t.Errorf("the text report does not warn about the skipped rollup:\n%s", b.String())
	}
}

func TestMicros(t *testing.T) {
	f := func(us int64, want string) {
		t.Helper()
		if got := Micros(us); got != want {
			t.Errorf("Micros(%d) = %q, want %q", us, got, want)
		}
	}
	f(0, "0us")
	f(845, "845us")
	f(1000, "1.00ms")
	f(12345, "12.3ms")
	f(123456, "123ms")
	f(1_200_000, "1.20s")
}
