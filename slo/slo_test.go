package slo

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestBudgetMath(t *testing.T) {
	const window = 30 * 24 * time.Hour
	f := func(got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	f(ErrorBudget(0.999), 0.001)
	f(ErrorBudget(0.9995), 0.0005)
	f(BurnRate(0.0144, 0.999), 14.4)
	f(BudgetRemaining(0.0005, 0.999), 0.5)
	f(BudgetRemaining(0, 0.999), 1)
	f(BudgetConsumed(14.4, time.Hour, window), 0.02)
	f(BudgetConsumed(6, 6*time.Hour, window), 0.05)
	f(BudgetConsumed(1, 72*time.Hour, window), 0.1)
	f(BurnRateFor(0.02, time.Hour, window), 14.4)
	if ErrorBudget(0.999) != 0.001 {
		t.Fatalf("ErrorBudget(0.999) = %v, want exactly 0.001", ErrorBudget(0.999))
	}
}

func TestReadableThreshold(t *testing.T) {
	f := func(in, want time.Duration) {
		t.Helper()
		if got := ReadableThreshold(in); got != want {
			t.Fatalf("ReadableThreshold(%v) = %v, want %v", in, got, want)
		}
	}
	f(300*time.Microsecond, time.Millisecond)
	f(time.Millisecond, time.Millisecond)
	f(1100*time.Microsecond, 2500*time.Microsecond)
	f(87*time.Millisecond, 100*time.Millisecond)
	f(101*time.Millisecond, 250*time.Millisecond)
	f(251*time.Millisecond, 500*time.Millisecond)
	f(501*time.Millisecond, time.Second)
	f(1200*time.Millisecond, 2500*time.Millisecond)
	f(59*time.Second, time.Minute)
	f(61500*time.Millisecond, 62*time.Second)
}

func TestThresholdLabel(t *testing.T) {
	for in, want := range map[time.Duration]string{
		250 * time.Millisecond: "0.25", time.Second: "1", 5 * time.Millisecond: "0.005",
		2500 * time.Millisecond: "2.5", 1500 * time.Microsecond: "0.0015",
	} {
		if got := ThresholdLabel(in); got != want {
			t.Errorf("ThresholdLabel(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestProposeAndThresholds(t *testing.T) {
	cfg := DefaultsConfig{Services: map[string]ServiceOverrideConfig{
		"search": {LatencyThreshold: 2 * time.Second, AvailabilityObjective: 0.99},
		"legacy": {Disabled: true},
	}}
	ps := Propose(cfg, []ServiceHistory{
		{Service: "web", HasProxy: true, Requests: 1000, Quantile: 180 * time.Millisecond},
		{Service: "search", HasProxy: true, Requests: 10, Quantile: 3 * time.Millisecond},
		{Service: "legacy", HasProxy: true},
		{Service: "db", HasProxy: false},
	})
	if len(ps) != 3 || ps[0].History.Service != "db" || ps[1].History.Service != "search" || ps[2].History.Service != "web" {
		t.Fatalf("proposals: %+v", ps)
	}
	set := DefaultSLOs(ps)
	for _, s := range set {
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
	}
	if !set[0].Scope.ViaCallers || set[1].Threshold != 500*time.Millisecond {
		t.Fatalf("db: %+v %+v", set[0], set[1])
	}
	if set[2].Objective != 0.99 || set[3].Threshold != 2*time.Second {
		t.Fatalf("search overrides: %+v %+v", set[2], set[3])
	}
	if set[4].Objective != 0.999 || set[5].Threshold != 250*time.Millisecond || set[5].Window != DefaultWindow {
		t.Fatalf("web defaults: %+v %+v", set[4], set[5])
	}
	got := Thresholds(set)
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}
	if len(got) != len(want) {
		t.Fatalf("Thresholds = %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("Thresholds = %v, want %v", got, want)
		}
	}
}

func TestParseOpenSLOGood(t *testing.T) {
	spec, err := LoadOpenSLOFiles("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.SLOs) != 5 || spec.Services["checkout"] != "the checkout service" {
		t.Fatalf("spec: %+v", spec)
	}
	byName := map[string]SLO{}
	for _, s := range spec.SLOs {
		byName[s.Name] = s
	}
	a := byName["checkout-availability"]
	if a.Indicator != Availability || a.Objective != 0.9995 || a.Window != 28*24*time.Hour || a.Policy == nil || len(a.Policy.Windows) != 2 {
		t.Fatalf("availability: %+v", a)
	}
	if w := a.Policy.Windows[1]; w.Severity != Ticket || w.Long != 72*time.Hour || w.Short != 6*time.Hour || w.BurnRate != 1 {
		t.Fatalf("ticket window: %+v", w)
	}
	if l := byName["checkout-latency-0"]; l.Indicator != Latency || l.Threshold != 300*time.Millisecond || l.Objective != 0.99 || l.Window != DefaultWindow {
		t.Fatalf("latency-0: %+v", l)
	}
	if l := byName["checkout-latency-1"]; l.Threshold != time.Second || math.Abs(l.Objective-0.999) > 1e-12 {
		t.Fatalf("latency-1: %+v", l)
	}
	if r := byName["checkout-cart-route"]; r.Indicator != Availability || r.Scope.Route != "/cart" || math.Abs(r.Objective-0.995) > 1e-12 {
		t.Fatalf("route: %+v", r)
	}
	if e := byName["checkout-to-payments"]; e.Indicator != Latency || e.Threshold != 250*time.Millisecond || e.Scope.Peer != "payments" {
		t.Fatalf("edge: %+v", e)
	}
	// Explicit SLOs replace the defaults of the same service and indicator.
	defaults := DefaultSLOs(Propose(DefaultsConfig{}, []ServiceHistory{{Service: "checkout", HasProxy: true}, {Service: "cart", HasProxy: true}}))
	all := Combine(defaults, spec.SLOs)
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, " "); got != "cart-availability cart-latency checkout-availability checkout-cart-route checkout-latency-0 checkout-latency-1 checkout-to-payments" {
		t.Fatalf("combined: %s", got)
	}
}

func TestParseOpenSLOErrors(t *testing.T) {
	const head = "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: s1\nspec:\n  service: web\n"
	const ind = "  indicator:\n    metadata: {name: i}\n    spec:\n      thresholdMetric:\n        metricSource: {type: meshlens, spec: {metric: latency}}\n"
	cases := []struct{ name, doc, want string }{
		{"version", "apiVersion: openslo/v2\nkind: SLO\nmetadata: {name: x}\n", `f.yaml: document 1 (line 1, SLO "x"): apiVersion: "openslo/v2" is not supported`},
		{"kind", "apiVersion: openslo/v1\nkind: Thing\nmetadata: {name: x}\n", `kind: "Thing" is not supported`},
		{"unknown field", head + "  servce: x\n", `document 1 (line 1, SLO "s1"): spec: yaml: unmarshal errors`},
		{"no indicator", head + "  objectives: [{target: 0.9}]\n", `spec.indicatorRef: an SLO needs indicator or indicatorRef`},
		{"bad ref", head + "  indicatorRef: nope\n  objectives: [{target: 0.9}]\n", `spec.indicatorRef: no SLI named "nope"`},
		{"target", head + ind + "  objectives: [{op: lte, value: 0.2, target: 1.5}]\n", `spec.objectives[0] (s1): objective: 1.5 must be in (0, 1)`},
		{"op", head + ind + "  objectives: [{op: gte, value: 0.2, target: 0.9}]\n", `spec.objectives[0].op: "gte"`},
		{"calendar", head + ind + "  timeWindow: [{duration: 1M, isRolling: false}]\n  objectives: [{op: lte, value: 0.2, target: 0.9}]\n", `spec.timeWindow[0]: calendar windows are not supported`},
		{"source", head + "  indicator:\n    metadata: {name: i}\n    spec:\n      thresholdMetric:\n        metricSource: {type: datadog, spec: {metric: latency}}\n  objectives: [{target: 0.9}]\n", `spec.indicator.thresholdMetric.metricSource.type: "datadog" is not supported`},
		{"policy", head + ind + "  objectives: [{op: lte, value: 0.2, target: 0.9}]\n  alertPolicies: [missing]\n", `spec.alertPolicies[0]: no AlertPolicy named "missing"`},
		{"second doc", "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: web}\n---\n" + head + ind + "  objectives: [{op: lte, target: 0.9}]\n", `document 2 (line 5, SLO "s1"): spec.objectives[0].value: a threshold SLI needs`},
		{"syntax", "a: [", `f.yaml: document 1: invalid YAML`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseOpenSLO(OpenSLOInput{Name: "f.yaml", Data: []byte(c.doc)})
			if err == nil {
				t.Fatal("no error")
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is no *SpecError: %v", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, c.want)
			}
		})
	}
}

func FuzzParseOpenSLO(f *testing.F) {
	f.Add([]byte("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: x}\nspec: {service: a}\n"))
	f.Add([]byte("---\n---\nkind: SLI\n"))
	if b, err := os.ReadFile("testdata/good.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		spec, err := ParseOpenSLO(OpenSLOInput{Name: "fuzz.yaml", Data: data})
		if err != nil {
			return
		}
		for _, s := range spec.SLOs {
			if err := s.Validate(); err != nil {
				t.Fatalf("parsed SLO does not validate: %v", err)
			}
		}
	})
}

func TestDashboardUID(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := DashboardUID(in); got != want {
			t.Fatalf("DashboardUID(%q) = %q, want %q", in, got, want)
		}
		if len(DashboardUID(in)) > 40 {
			t.Fatalf("UID longer than 40: %q", DashboardUID(in))
		}
	}
	f("checkout", "meshlens-svc-checkout")
	f("Payments.API_v2", "meshlens-svc-payments-api-v2")
	long := "a-very-long-service-name-that-goes-on-and-on"
	want := "meshlens-svc-a-very-long-servic-"
	if got := DashboardUID(long); !strings.HasPrefix(got, want) || len(got) != 40 {
		t.Fatalf("DashboardUID(long) = %q", got)
	}
}

func TestDefaultsConfigYAML(t *testing.T) {
	var c DefaultsConfig
	dec := yaml.NewDecoder(strings.NewReader("window: 720h\nfallback_threshold: 250ms\nservices:\n  search: {latency_threshold: 2s, availability_objective: 0.995}\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Window != DefaultWindow || c.FallbackThreshold != 250*time.Millisecond || c.Services["search"].LatencyThreshold != 2*time.Second {
		t.Fatalf("%+v", c)
	}
	c.Services["search"] = ServiceOverrideConfig{AvailabilityObjective: 1.5}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `services["search"].availability_objective`) {
		t.Fatalf("error %v", err)
	}
}
