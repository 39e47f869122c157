// Package alerts turns SLOs into Prometheus recording and alerting rules
// (multi-window, multi-burn-rate, after the Google SRE Workbook), promtool
// unit tests for them, and an Alertmanager route and receiver template.
// Every expression is built with and checked by Prometheus's own parser, and
// every rule file by model/rulefmt, before it is written.
package alerts

import (
	"fmt"
	"math"
	"net/url"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/slo"
)

// Config says how rules are generated. Zero fields take the defaults of
// WithDefaults.
type Config struct {
	// Policy is the burn-rate policy of SLOs that bring none of their own
	// (default: slo.DefaultPolicy, the SRE Workbook's).
	Policy *slo.Policy
	// WindowScale multiplies every window and interval (default 1). Tests
	// use 1/60 so that 1h becomes 1m; production keeps 1.
	WindowScale float64
	// EvaluationInterval of the SLI and alert rule groups (default 30s,
	// before scaling).
	EvaluationInterval time.Duration
	// SLOWindowInterval of the group that computes the SLI over the whole
	// SLO window and the error budget left (default 5m, before scaling).
	SLOWindowInterval time.Duration
	// RunbookURL is a Prometheus template for the runbook_url annotation;
	// it may use {{ $labels.slo }}, {{ $labels.service }}, and so on.
	RunbookURL string
	// GrafanaURL is the base URL of Grafana (default http://localhost:3000).
	GrafanaURL string
	// TraceSearchURL is the base URL of the collector's trace search UI
	// (default http://localhost:16686).
	TraceSearchURL string
	// PageWebhookURL and TicketWebhookURL are where the generated
	// Alertmanager configuration sends page and ticket alerts.
	PageWebhookURL   string
	TicketWebhookURL string
}

// Defaults.
const (
	DefaultRunbookURL     = "https://github.com/meshlens/meshlens/blob/main/docs/slo.md#responding-to-a-burn-rate-alert"
	DefaultGrafanaURL     = "http://localhost:3000"
	DefaultTraceSearchURL = "http://localhost:16686"
	DefaultWebhookURL     = "http://localhost:5001/meshlens"
)

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Policy == nil {
		p := slo.DefaultPolicy()
		c.Policy = &p
	}
	if c.WindowScale == 0 {
		c.WindowScale = 1
	}
	if c.EvaluationInterval == 0 {
		c.EvaluationInterval = 30 * time.Second
	}
	if c.SLOWindowInterval == 0 {
		c.SLOWindowInterval = 5 * time.Minute
	}
	if c.RunbookURL == "" {
		c.RunbookURL = DefaultRunbookURL
	}
	if c.GrafanaURL == "" {
		c.GrafanaURL = DefaultGrafanaURL
	}
	if c.TraceSearchURL == "" {
		c.TraceSearchURL = DefaultTraceSearchURL
	}
	if c.PageWebhookURL == "" {
		c.PageWebhookURL = DefaultWebhookURL
	}
	if c.TicketWebhookURL == "" {
		c.TicketWebhookURL = DefaultWebhookURL
	}
	return c
}

// Validate checks the configuration after defaults; errors name the field.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("policy.%w", err)
	}
	if !(c.WindowScale > 0 && c.WindowScale <= 1) || math.IsNaN(c.WindowScale) {
		return &model.FieldError{Field: "window_scale", Reason: fmt.Sprintf("%v must be in (0, 1]", c.WindowScale)}
	}
	if c.EvaluationInterval < time.Second {
		return &model.FieldError{Field: "evaluation_interval", Reason: "must be at least 1s"}
	}
	if c.SLOWindowInterval < c.EvaluationInterval {
		return &model.FieldError{Field: "slo_window_interval", Reason: "must be at least the evaluation interval"}
	}
	for _, u := range []struct{ field, v string }{
		{"grafana_url", c.GrafanaURL}, {"trace_search_url", c.TraceSearchURL},
		{"page_webhook_url", c.PageWebhookURL}, {"ticket_webhook_url", c.TicketWebhookURL},
	} {
		p, err := url.Parse(u.v)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return &model.FieldError{Field: u.field, Reason: fmt.Sprintf("%q is not an http(s) URL", u.v)}
		}
	}
	return nil
}

// scale applies WindowScale to d, rounded to whole seconds, at least 1s.
func (c Config) scale(d time.Duration) time.Duration {
	s := time.Duration(math.Round(float64(d)*c.WindowScale/float64(time.Second))) * time.Second
	if s < time.Second {
		s = time.Second
	}
	return s
}

// ParseWindowScale reads a window scale flag: a factor ("0.0166") or a
// mapping "1h=1m" (1h becomes 1m, a factor of 1/60).
func ParseWindowScale(s string) (float64, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			from, err1 := slo.ParseDuration(s[:i])
			to, err2 := slo.ParseDuration(s[i+1:])
			if err1 != nil || err2 != nil || from <= 0 || to <= 0 || to > from {
				return 0, fmt.Errorf("window scale %q: want FROM=TO durations with TO <= FROM, e.g. 1h=1m", s)
			}
			return float64(to) / float64(from), nil
		}
	}
	var f float64
	if _, err := fmt.Sscanf(s, "%g", &f); err != nil || !(f > 0 && f <= 1) {
		return 0, fmt.Errorf("window scale %q: want a factor in (0, 1] or FROM=TO such as 1h=1m", s)
	}
	return f, nil
}

// policyFor is the policy an SLO is alerted on.
func (c Config) policyFor(s *slo.SLO) *slo.Policy {
	if s.Policy != nil {
		return s.Policy
	}
	return c.Policy
}
