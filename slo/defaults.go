package slo

import (
	"fmt"
	"slices"
	"time"

	prommodel "github.com/prometheus/common/model"

	"github.com/meshlens/meshlens/model"
)

// DefaultsConfig says which SLOs every discovered service gets. The zero
// value is filled by WithDefaults.
type DefaultsConfig struct {
	// AvailabilityObjective of every service (default 0.999).
	AvailabilityObjective float64 `yaml:"availability_objective"`
	// LatencyObjective: share of requests that must be faster than the
	// service's latency threshold (default 0.99).
	LatencyObjective float64 `yaml:"latency_objective"`
	// Window is the rolling window (default 30 days).
	Window time.Duration `yaml:"window"`
	// HistoryWindow is how far back the latency threshold is proposed from
	// (default 7 days).
	HistoryWindow time.Duration `yaml:"history_window"`
	// HistoryQuantile is the quantile of that history proposed as threshold
	// (default 0.99), rounded up to a readable value.
	HistoryQuantile float64 `yaml:"history_quantile"`
	// FallbackThreshold is the latency threshold of a service with no
	// history (default 500ms).
	FallbackThreshold time.Duration `yaml:"fallback_threshold"`
	// Services overrides the defaults per service name.
	Services map[string]ServiceOverrideConfig `yaml:"services"`
}

// ServiceOverrideConfig overrides the default SLOs of one service. Zero
// fields keep the default.
type ServiceOverrideConfig struct {
	Disabled              bool          `yaml:"disabled"`
	AvailabilityObjective float64       `yaml:"availability_objective"`
	LatencyObjective      float64       `yaml:"latency_objective"`
	LatencyThreshold      time.Duration `yaml:"latency_threshold"`
	Window                time.Duration `yaml:"window"`
}

// WithDefaults returns c with every zero field set to its default.
func (c DefaultsConfig) WithDefaults() DefaultsConfig {
	if c.AvailabilityObjective == 0 {
		c.AvailabilityObjective = 0.999
	}
	if c.LatencyObjective == 0 {
		c.LatencyObjective = 0.99
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.HistoryWindow == 0 {
		c.HistoryWindow = 7 * 24 * time.Hour
	}
	if c.HistoryQuantile == 0 {
		c.HistoryQuantile = 0.99
	}
	if c.FallbackThreshold == 0 {
		c.FallbackThreshold = 500 * time.Millisecond
	}
	return c
}

// Validate checks the configuration; errors name the field path.
func (c DefaultsConfig) Validate() error {
	c = c.WithDefaults()
	objective := func(field string, v float64) error {
		if !(v > 0 && v < 1) {
			return &model.FieldError{Field: field, Reason: fmt.Sprintf("%v must be in (0, 1)", v)}
		}
		return nil
	}
	if err := objective("availability_objective", c.AvailabilityObjective); err != nil {
		return err
	}
	if err := objective("latency_objective", c.LatencyObjective); err != nil {
		return err
	}
	if err := objective("history_quantile", c.HistoryQuantile); err != nil {
		return err
	}
	if c.Window < time.Hour {
		return &model.FieldError{Field: "window", Reason: "must be at least 1h"}
	}
	if c.HistoryWindow < time.Minute {
		return &model.FieldError{Field: "history_window", Reason: "must be at least 1m"}
	}
	if c.FallbackThreshold < time.Millisecond {
		return &model.FieldError{Field: "fallback_threshold", Reason: "must be at least 1ms"}
	}
	for _, name := range sortedKeys(c.Services) {
		o := c.Services[name]
		f := fmt.Sprintf("services[%q].", name)
		if o.AvailabilityObjective != 0 {
			if err := objective(f+"availability_objective", o.AvailabilityObjective); err != nil {
				return err
			}
		}
		if o.LatencyObjective != 0 {
			if err := objective(f+"latency_objective", o.LatencyObjective); err != nil {
				return err
			}
		}
		if o.LatencyThreshold < 0 || (o.LatencyThreshold > 0 && o.LatencyThreshold < time.Millisecond) {
			return &model.FieldError{Field: f + "latency_threshold", Reason: "must be at least 1ms"}
		}
		if o.Window != 0 && o.Window < time.Hour {
			return &model.FieldError{Field: f + "window", Reason: "must be at least 1h"}
		}
	}
	return nil
}

// ServiceHistory is what a proposal for one service is based on.
type ServiceHistory struct {
	Service string
	// HasProxy is false for a service seen only through its callers.
	HasProxy bool
	// Requests counted over the history window, and the latency quantile
	// (DefaultsConfig.HistoryQuantile) of those requests.
	Requests int64
	Quantile time.Duration
	// From says where the figures came from ("store", "prometheus").
	From string
}

// Proposal is the default SLOs of one service with the data behind them.
type Proposal struct {
	History ServiceHistory
	SLOs    []SLO
	// Why explains the latency threshold: measured, overridden, fallback.
	Why string
}

// Propose returns the default SLOs of each service in history order, sorted
// by service name. A service disabled by an override gets none.
func Propose(c DefaultsConfig, history []ServiceHistory) []Proposal {
	c = c.WithDefaults()
	hs := slices.Clone(history)
	slices.SortFunc(hs, func(a, b ServiceHistory) int {
		switch {
		case a.Service < b.Service:
			return -1
		case a.Service > b.Service:
			return 1
		}
		return 0
	})
	var out []Proposal
	for _, h := range hs {
		o := c.Services[h.Service]
		if o.Disabled || h.Service == "" {
			continue
		}
		p := Proposal{History: h}
		avail, lat, window := c.AvailabilityObjective, c.LatencyObjective, c.Window
		if o.AvailabilityObjective != 0 {
			avail = o.AvailabilityObjective
		}
		if o.LatencyObjective != 0 {
			lat = o.LatencyObjective
		}
		if o.Window != 0 {
			window = o.Window
		}
		var threshold time.Duration
		switch {
		case o.LatencyThreshold > 0:
			threshold = o.LatencyThreshold
			p.Why = "threshold set for the service"
		case h.Requests > 0 && h.Quantile > 0:
			threshold = ReadableThreshold(h.Quantile)
			p.Why = fmt.Sprintf("p%s %v over %d requests in the last %v, rounded up", quantileName(c.HistoryQuantile), h.Quantile.Round(time.Microsecond), h.Requests, formatDuration(c.HistoryWindow))
		default:
			threshold = c.FallbackThreshold
			p.Why = "no history; fallback threshold"
		}
		scope := Scope{Service: h.Service, ViaCallers: !h.HasProxy}
		p.SLOs = []SLO{
			{
				Name: sanitizeName(h.Service) + "-availability", Scope: scope, Indicator: Availability,
				Objective: avail, Window: window, Origin: "default",
				Description: fmt.Sprintf("%s: share of requests without a server error", h.Service),
			},
			{
				Name: sanitizeName(h.Service) + "-latency", Scope: scope, Indicator: Latency, Threshold: threshold,
				Objective: lat, Window: window, Origin: "default",
				Description: fmt.Sprintf("%s: share of requests served within %v", h.Service, threshold),
			},
		}
		out = append(out, p)
	}
	return out
}

// readableSteps are the thresholds a proposal rounds up to: 1, 2.5 and 5
// times a power of ten milliseconds, up to a minute.
var readableSteps = func() []time.Duration {
	var s []time.Duration
	for scale := time.Millisecond; scale <= 10*time.Second; scale *= 10 {
		s = append(s, scale, scale*5/2, scale*5)
	}
	return append(s, 60*time.Second)
}()

// ReadableThresholds returns every threshold ReadableThreshold rounds to
// up to a minute: the latency thresholds the collector counts by default, so
// that a proposed default SLO always has its exact counter.
func ReadableThresholds() []time.Duration {
	return slices.Clone(readableSteps)
}

// ReadableThreshold rounds d up to the next readable threshold (1ms, 2.5ms,
// 5ms, 10ms, 25ms, 50ms, 100ms, 250ms, 500ms, 1s, 2.5s, 5s, 10s, 25s, 50s,
// 1m). Past a minute it returns d rounded up to a whole second.
func ReadableThreshold(d time.Duration) time.Duration {
	for _, s := range readableSteps {
		if d <= s {
			return s
		}
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// sanitizeName maps a service name onto the SLO name alphabet.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	if len(b) > 0 && !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z' || b[0] >= '0' && b[0] <= '9') {
		b = append([]byte("s"), b...)
	}
	if len(b) > 100 {
		b = b[:100]
	}
	return string(b)
}

func quantileName(q float64) string {
	s := fmt.Sprintf("%g", q*100)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// formatDuration prints d the way Prometheus and OpenSLO write durations:
// "30d", "1h", "5m", "1h30m".
func formatDuration(d time.Duration) string { return prommodel.Duration(d).String() }

// FormatDuration is formatDuration for other packages' messages.
func FormatDuration(d time.Duration) string { return formatDuration(d) }

// ParseDuration reads a Prometheus/OpenSLO duration: "30d", "1h", "250ms".
func ParseDuration(s string) (time.Duration, error) {
	d, err := prommodel.ParseDuration(s)
	return time.Duration(d), err
}
