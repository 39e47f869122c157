package alerts

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"

	"github.com/meshlens/meshlens/slo"
)

// These tests evaluate the generated rules with Prometheus's own rule
// manager and PromQL engine over synthetic series at production windows
// (30-day SLO, 1m samples), the way promtool does.

const (
	stepsPerDay = 1440
	rps         = 1000 // requests per one-minute step
)

func engineSet() []slo.SLO {
	return slo.DefaultSLOs(slo.Propose(slo.DefaultsConfig{}, []slo.ServiceHistory{
		{Service: "web", HasProxy: true, Requests: 1e6, Quantile: 200 * time.Millisecond},
	}))
}

// segment is a run of steps with a constant share of bad requests.
type segment struct {
	steps int
	bad   float64 // share of requests that fail (or are slow)
}

// seriesValues renders a counter growing by perStep(seg) each step, in
// promqltest's expanding notation.
func seriesValues(segs []segment, perStep func(segment) float64) string {
	var parts []string
	v := 0.0
	first := true
	for _, s := range segs {
		inc := perStep(s)
		n := s.steps
		if first {
			parts = append(parts, fmt.Sprintf("%g+%gx%d", v, inc, n))
			first = false
		} else {
			parts = append(parts, fmt.Sprintf("%g+%gx%d", v+inc, inc, n-1))
		}
		v += inc * float64(n)
	}
	return strings.Join(parts, " ")
}

// load builds a promqltest load block for web's inbound traffic.
func load(segs []segment, latency bool) string {
	lbl := `service="web",direction="inbound",peer="frontend",route="/",method="GET"`
	var b strings.Builder
	b.WriteString("load 1m\n")
	if latency {
		fmt.Fprintf(&b, "  meshlens_requests_total{%s,status_class=\"2xx\"} %s\n", lbl, seriesValues(segs, func(segment) float64 { return rps }))
		fmt.Fprintf(&b, "  meshlens_requests_faster_than_total{%s,threshold=\"0.25\"} %s\n", lbl, seriesValues(segs, func(s segment) float64 { return rps * (1 - s.bad) }))
		return b.String()
	}
	fmt.Fprintf(&b, "  meshlens_requests_total{%s,status_class=\"2xx\"} %s\n", lbl, seriesValues(segs, func(s segment) float64 { return rps * (1 - s.bad) }))
	fmt.Fprintf(&b, "  meshlens_requests_total{%s,status_class=\"5xx\"} %s\n", lbl, seriesValues(segs, func(s segment) float64 { return rps * s.bad }))
	return b.String()
}

type firing struct {
	slo, severity, long string
	value               float64
}

// evaluate loads series, evaluates the generated rule groups every step
// from `from` to `to` (offsets from the series start) and calls check with
// the firing alerts after each evaluation.
func evaluate(t *testing.T, set []slo.SLO, series string, from, to, step time.Duration, check func(at time.Duration, f []firing)) {
	t.Helper()
	files, err := RuleFiles(set, Config{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	ll, err := promqltest.NewLazyLoader(series, promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()
	m := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(ll.QueryEngine(), ll.Storage()),
		AppendableV2: ll.Storage(),
		Queryable:    ll.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       promslog.NewNopLogger(),
		Parser:       promParser,
	})
	groups, errs := m.LoadGroups(time.Minute, labels.EmptyLabels(), "", nil, false, paths...)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	// Evaluate in file order: SLIs, then the SLO window, then alerts.
	var ordered []*rules.Group
	for _, suffix := range []string{":sli", ":slo-window", ":alerts"} {
		for _, g := range groups {
			if strings.HasSuffix(g.Name(), suffix) {
				ordered = append(ordered, g)
			}
		}
	}
	if len(ordered) != 3 {
		t.Fatalf("groups: %d", len(ordered))
	}
	for _, g := range ordered {
		for _, r := range g.AlertingRules() {
			r.SetRestored(true)
		}
	}
	start := time.Unix(0, 0).UTC()
	for at := from; at <= to; at += step {
		ts := start.Add(at)
		ll.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range ordered {
				g.Eval(context.Background(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						t.Fatalf("rule %s at %v: %v", r.Name(), at, r.LastError())
					}
				}
			}
		})
		var f []firing
		for _, g := range ordered {
			for _, r := range g.AlertingRules() {
				for _, a := range r.ActiveAlerts() {
					if a.State == rules.StateFiring {
						f = append(f, firing{a.Labels.Get("slo"), a.Labels.Get("severity"), a.Labels.Get("long_window"), a.Value})
					}
				}
			}
		}
		check(at, f)
	}
}

// An outage pages as soon as it has burnt 2% of the 30-day budget within
// the hour (the 1h burn rate passes 14.4): within 5 minutes for the
// availability outages below (99.9%), within 1h×14.4/burn in general
// (8.6 minutes for a total latency outage against a 99% objective); before
// the outage nothing fires.
func TestEngineOutagePagesWithinFiveMinutes(t *testing.T) {
	const window = 30 * 24 * time.Hour
	for _, c := range []struct {
		name    string
		bad     float64
		latency bool
		within  time.Duration
	}{
		{"total outage", 1, false, 5 * time.Minute},
		{"25% errors", 0.25, false, 5 * time.Minute},
		{"all requests slow", 1, true, 10 * time.Minute},
	} {
		t.Run(c.name, func(t *testing.T) {
			outageAt := 2 * 24 * time.Hour
			segs := []segment{{steps: 2 * stepsPerDay, bad: 0.0002}, {steps: 30, bad: c.bad}}
			slo := "web-availability"
			if c.latency {
				slo = "web-latency"
			}
			var paged time.Duration = -1
			evaluate(t, engineSet(), load(segs, c.latency), outageAt-10*time.Minute, outageAt+15*time.Minute, 30*time.Second, func(at time.Duration, fs []firing) {
				for _, f := range fs {
					if at < outageAt {
						t.Fatalf("%+v fires %v before the outage", f, outageAt-at)
					}
					if f.slo != slo {
						t.Fatalf("wrong SLO fires: %+v", f)
					}
					if f.severity == "page" && paged < 0 {
						paged = at - outageAt
						// The page means at least 2% of the budget went within
						// the hour: the 1h burn rate is above 14.4.
						if f.long == "1h" && slo_BudgetShare(f.value, time.Hour, window) < 0.02 {
							t.Fatalf("paged at burn %v: only %.2f%% of the budget spent in the hour", f.value, 100*slo_BudgetShare(f.value, time.Hour, window))
						}
					}
				}
			})
			// Theory: the 1h window average passes 14.4 after 1h*14.4/burn; the
			// samples are a minute apart.
			budget := 0.001
			if c.latency {
				budget = 0.01
			}
			theory := time.Duration(float64(time.Hour) * 14.4 / (c.bad / budget))
			if paged < 0 || paged > c.within || paged > theory+time.Minute {
				t.Fatalf("page after %v, want within %v of the outage (theory %v)", paged, c.within, theory)
			}
			t.Logf("paged %v after the outage started", paged)
		})
	}
}

func slo_BudgetShare(burn float64, d, window time.Duration) float64 {
	return slo.BudgetConsumed(burn, d, window)
}

// A slow burn (4x for a day after three healthy days) files a ticket and
// never pages.
func TestEngineSlowBurnTicketsWithoutPaging(t *testing.T) {
	burnAt := 3 * 24 * time.Hour
	segs := []segment{{steps: 3 * stepsPerDay, bad: 0.0001}, {steps: stepsPerDay, bad: 0.004}}
	var ticket time.Duration = -1
	evaluate(t, engineSet(), load(segs, false), burnAt-time.Hour, burnAt+23*time.Hour, 10*time.Minute, func(at time.Duration, fs []firing) {
		for _, f := range fs {
			if f.severity == "page" {
				t.Fatalf("slow burn pages at %v: %+v", at-burnAt, f)
			}
			if f.severity == "ticket" && ticket < 0 {
				ticket = at - burnAt
				if f.long == "1d" && math.Abs(f.value-4) > 1.5 {
					t.Fatalf("ticket burn rate %v, want about 4", f.value)
				}
			}
		}
	})
	// Theory: the 3d window average passes 1x after 16.6h of the burn (the
	// 1d window passes 3x after 17.8h).
	if ticket < 16*time.Hour || ticket > 19*time.Hour {
		t.Fatalf("ticket after %v of the slow burn, want about 16.6h", ticket)
	}
	t.Logf("ticket %v after the slow burn started", ticket)
}

// Healthy traffic, even with a short blip of errors, fires nothing.
func TestEngineHealthyFiresNothing(t *testing.T) {
	segs := []segment{
		{steps: 2 * stepsPerDay, bad: 0.0003},
		{steps: 3, bad: 0.05}, // a three-minute blip: 150x for 3m
		{steps: stepsPerDay, bad: 0.0005},
	}
	for _, latency := range []bool{false, true} {
		evaluate(t, engineSet(), load(segs, latency), 2*24*time.Hour-time.Hour, 3*24*time.Hour, 10*time.Minute, func(at time.Duration, fs []firing) {
			if len(fs) > 0 {
				t.Fatalf("healthy traffic fires at %v: %+v", at, fs)
			}
		})
	}
}
