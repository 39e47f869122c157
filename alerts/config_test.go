package alerts

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/meshlens/meshlens/slo"
)

func TestParseWindowScale(t *testing.T) {
	f := func(in string, want float64, ok bool) {
		t.Helper()
		got, err := ParseWindowScale(in)
		if (err == nil) != ok || (ok && math.Abs(got-want) > 1e-12) {
			t.Fatalf("ParseWindowScale(%q) = %v, %v; want %v ok=%v", in, got, err, want, ok)
		}
	}
	f("1", 1, true)
	f("1h=1m", 1.0/60, true)
	f("1d=1h", 1.0/24, true)
	f("0.5", 0.5, true)
	f("2", 0, false)
	f("0", 0, false)
	f("1m=1h", 0, false)
	f("1h=", 0, false)
	f("x", 0, false)
	f("NaN", 0, false)
}

func FuzzParseWindowScale(f *testing.F) {
	for _, s := range []string{"1h=1m", "0.1", "=", "1e-300", "5m=5m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseWindowScale(s)
		if err == nil && !(v > 0 && v <= 1) {
			t.Fatalf("ParseWindowScale(%q) = %v without an error", s, v)
		}
	})
}

func TestScale(t *testing.T) {
	c := Config{WindowScale: 1.0 / 60}.WithDefaults()
	for in, want := range map[time.Duration]time.Duration{
		time.Hour: time.Minute, 5 * time.Minute: 5 * time.Second, 30 * 24 * time.Hour: 12 * time.Hour,
		30 * time.Second: time.Second, 10 * time.Second: time.Second,
	} {
		if got := c.scale(in); got != want {
			t.Errorf("scale(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []struct {
		cfg  Config
		want string
	}{
		{Config{WindowScale: 2}, "window_scale"},
		{Config{EvaluationInterval: time.Millisecond}, "evaluation_interval"},
		{Config{EvaluationInterval: time.Minute, SLOWindowInterval: 30 * time.Second}, "slo_window_interval"},
		{Config{GrafanaURL: "grafana:3000"}, "grafana_url"},
		{Config{PageWebhookURL: "ftp://x/y"}, "page_webhook_url"},
		{Config{Policy: &slo.Policy{}}, "policy.windows"},
		{Config{Policy: &slo.Policy{Windows: []slo.BurnWindow{{Severity: "wake-everyone", BurnRate: 2, Long: time.Hour, Short: time.Minute}}}}, "policy.windows[0].severity"},
		{Config{Policy: &slo.Policy{Windows: []slo.BurnWindow{{Severity: slo.Page, BurnRate: 2, Long: time.Minute, Short: time.Hour}}}}, "policy.windows[0].short"},
	}
	for _, b := range bad {
		err := b.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: error %v, want one naming %s", b.cfg, err, b.want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// CheckRuleFile refuses what Prometheus 2.42 would not load.
func TestCheckRuleFileRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"utf-8 name":      "groups:\n- name: g\n  rules:\n  - record: 'a.b:c'\n    expr: vector(1)\n",
		"bad expr":        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: rate(x[5m]\n",
		"unknown field":   "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    severity: page\n",
		"bad template":    "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n      summary: '{{ $value '\n",
		"quoted selector": "groups:\n- name: g\n  rules:\n  - record: r\n    expr: '{\"my.metric\"}'\n",
	} {
		if err := CheckRuleFile([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCompat242(t *testing.T) {
	for expr, ok := range map[string]bool{
		`sum(rate(meshlens_requests_total{service="a"}[5m]))`: true,
		`clamp_min(1 - vector(1), 0) or vector(0)`:            true,
		`{"my.metric"}`:                     false,
		`sort_by_label(up, "job")`:          false,
		`up @ 100`:                          false,
		`limitk(2, up)`:                     false,
		`mad_over_time(up[5m])`:             false,
		`up offset -5m`:                     false,
		`{__name__="a.b"}`:                  false,
		`rate(meshlens_requests_total[5m])`: true,
	} {
		e, err := parser.NewParser(parser.Options{EnableExperimentalFunctions: true}).ParseExpr(expr)
		if err != nil {
			if ok {
				t.Errorf("%s: %v", expr, err)
			}
			continue
		}
		if got := compat242(e) == nil; got != ok {
			t.Errorf("compat242(%s) ok = %v, want %v", expr, got, ok)
		}
	}
}
