package hdrreceiver

import (
	"errors"
	"fmt"
	"net"

	"go.opentelemetry.io/collector/component"

	"github.com/meshlens/meshlens/model"
)

// Config is the meshlens_hdr receiver's configuration.
type Config struct {
	// Endpoint is where the receiver listens (HOST:PORT). It serves
	// POST /v1/histograms and the OTLP/HTTP path POST /v1/traces, so a
	// proxy given the collector's URL reaches both.
	Endpoint string `mapstructure:"endpoint"`
	// Extension names the meshlens extension that holds the ingest token
	// and the health metrics.
	Extension component.ID `mapstructure:"extension"`
	// MaxHistogramBytes bounds a histogram batch after decompression.
	MaxHistogramBytes int64 `mapstructure:"max_histogram_bytes"`
	// MaxTraceBytes bounds an OTLP/HTTP traces request after decompression.
	MaxTraceBytes int64 `mapstructure:"max_trace_bytes"`
}

// Validate checks the configuration; errors name the field.
func (c *Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint: %q is not HOST:PORT: %w", c.Endpoint, err))
	}
	if c.MaxHistogramBytes < 1024 || c.MaxHistogramBytes > 64*model.MaxHistogramBatchBytes {
		errs = append(errs, fmt.Errorf("max_histogram_bytes: %d outside 1024..%d", c.MaxHistogramBytes, 64*model.MaxHistogramBatchBytes))
	}
	if c.MaxHistogramBytes < model.MaxHistogramBatchBytes {
		errs = append(errs, fmt.Errorf("max_histogram_bytes: %d is below the %d bytes docs/histogram-wire.md promises senders", c.MaxHistogramBytes, model.MaxHistogramBatchBytes))
	}
	if c.MaxTraceBytes < 1024 || c.MaxTraceBytes > 1<<30 {
		errs = append(errs, fmt.Errorf("max_trace_bytes: %d outside 1024..%d", c.MaxTraceBytes, 1<<30))
	}
	return errors.Join(errs...)
}
