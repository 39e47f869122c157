package analyticsexporter

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Config is the meshlens_analytics exporter's configuration.
type Config struct {
	// Extension names the meshlens extension whose registry serves the
	// metrics and whose store seeds discovery.
	Extension component.ID `mapstructure:"extension"`
	// SLOThresholds are the latency thresholds, in seconds, for which
	// meshlens_requests_faster_than_total is counted exactly.
	SLOThresholds []float64 `mapstructure:"slo_thresholds"`
	// ClassicBuckets are the classic histogram bucket bounds in seconds;
	// the SLO thresholds are added to them.
	ClassicBuckets []float64 `mapstructure:"classic_buckets"`
	// NativeSchema is the native histograms' schema (resolution): bucket
	// boundaries grow by 2^(2^-schema). 8, the finest Prometheus takes,
	// gives a factor of ~1.0027: a bucket's midpoint is within ±0.14% of
	// any value in it, about 3 significant digits.
	NativeSchema int32 `mapstructure:"native_schema"`
	// NativeMaxBuckets bounds the populated native buckets of one series;
	// past it the series halves its resolution.
	NativeMaxBuckets int `mapstructure:"native_max_buckets"`
	// CompleteAfter is how long after a minute ends its histograms are
	// taken as complete for the exact percentile gauges (proxies flush
	// every 10 s by default).
	CompleteAfter time.Duration `mapstructure:"complete_after"`
	// DedupeWindow is how long a received (instance, seq, hop) is
	// remembered, so a batch sent twice is counted once.
	DedupeWindow time.Duration `mapstructure:"dedupe_window"`
	// MaxSeries bounds the hop series kept; hops past it are counted as
	// dropped.
	MaxSeries int `mapstructure:"max_series"`
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	for i, t := range c.SLOThresholds {
		if !(t > 0) || math.IsInf(t, 0) || t > 3600 {
			errs = append(errs, fmt.Errorf("slo_thresholds[%d]: %v must be in (0, 3600] seconds", i, t))
		}
	}
	for i, b := range c.ClassicBuckets {
		if !(b > 0) || math.IsInf(b, 0) {
			errs = append(errs, fmt.Errorf("classic_buckets[%d]: %v must be a positive number of seconds", i, b))
		}
		if i > 0 && b <= c.ClassicBuckets[i-1] {
			errs = append(errs, fmt.Errorf("classic_buckets[%d]: %v must be greater than the bucket before", i, b))
		}
	}
	if c.NativeSchema < 0 || c.NativeSchema > 8 {
		errs = append(errs, fmt.Errorf("native_schema: %d outside 0..8", c.NativeSchema))
	}
	if c.NativeMaxBuckets < 20 {
		errs = append(errs, fmt.Errorf("native_max_buckets: %d is below 20", c.NativeMaxBuckets))
	}
	if c.CompleteAfter < 0 || c.CompleteAfter > 10*time.Minute {
		errs = append(errs, fmt.Errorf("complete_after: %v outside 0..10m", c.CompleteAfter))
	}
	if c.DedupeWindow < time.Minute {
		errs = append(errs, fmt.Errorf("dedupe_window: %v is below 1m", c.DedupeWindow))
	}
	if c.MaxSeries < 1 {
		errs = append(errs, errors.New("max_series: must be > 0"))
	}
	return errors.Join(errs...)
}

// classicBounds returns the classic buckets with the SLO thresholds added,
// sorted and unique.
func (c *Config) classicBounds() []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, b := range append(append([]float64(nil), c.ClassicBuckets...), c.SLOThresholds...) {
		if !seen[b] {
			seen[b] = true
			out = append(out, b)
		}
	}
	sort.Float64s(out)
	return out
}
