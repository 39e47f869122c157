package telemetry

import (
	"fmt"
	"net/url"
	"time"

	"github.com/meshlens/meshlens/model"
)

// Hop is what the data plane reports for one finished request on one hop.
// The data plane owns the value (it may pool it): a Sink must not keep the
// pointer after Finish returns.
type Hop struct {
	Key model.HopKey

	Start    time.Time     // first byte of the request at the proxy
	Total    time.Duration // until the response's last byte went to the caller
	Upstream time.Duration // request sent upstream → response's last byte from upstream; 0 when no upstream answered

	// Trace context of this hop's span. SpanID is new for this hop;
	// ParentSpanID is the caller's span (zero for a root span).
	TraceID      [16]byte
	SpanID       [8]byte
	ParentSpanID [8]byte
	Sampled      bool
	TraceState   string

	RequestID string

	// HTTP semantic-convention attributes.
	Method           string // http.request.method
	Path             string // url.path
	Status           int    // http.response.status_code (0 when no response was written)
	GRPCStatus       int    // rpc.grpc.status_code; -1 when the call is not gRPC
	ServerAddress    string // server.address (the Host / :authority)
	PeerAddress      string // network.peer.address (the caller's IP)
	UserAgent        string // user_agent.original
	UpstreamEndpoint string // the upstream HOST:PORT the request was sent to
	Protocol         string // "1.1", "2"
	Err              string // why the hop failed at the proxy ("upstream timeout", ...), empty otherwise
}

// Sink receives finished hops. Finish must be safe for concurrent use, must
// not block, and must not retain h.
type Sink interface {
	Finish(h *Hop)
}

// Config is the telemetry section of the meshproxy config.
type Config struct {
	// Collector is the collector's base URL (its OTLP/HTTP address, e.g.
	// http://127.0.0.1:4318). Histograms go to Collector+/v1/histograms,
	// spans to Collector+/v1/traces. Empty: nothing is sent, but histograms
	// are still recorded and served on the admin listener.
	Collector string `yaml:"collector"`
	// Token is sent as "Authorization: Bearer TOKEN" when set.
	Token string `yaml:"token"`
	// FlushInterval is the histogram interval (default 10s).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// SamplingRatio is the head-sampling ratio for spans started here
	// (default 1.0). Histograms count every request whatever the sampling.
	SamplingRatio *float64 `yaml:"sampling_ratio"`
	// MaxRoutesPerService bounds route cardinality (default 100); routes past
	// it are recorded as "other" and counted.
	MaxRoutesPerService int `yaml:"max_routes_per_service"`
	// Backlog is how long unsent histogram intervals are kept while the
	// collector is unreachable (default 5m); oldest dropped first.
	Backlog time.Duration `yaml:"backlog"`
	// SpanQueueSize bounds the spans waiting for export (default 8192).
	SpanQueueSize int `yaml:"span_queue_size"`
}

// Defaults returns c with zero fields set to their defaults.
func (c Config) Defaults() Config {
	if c.FlushInterval == 0 {
		c.FlushInterval = 10 * time.Second
	}
	if c.SamplingRatio == nil {
		one := 1.0
		c.SamplingRatio = &one
	}
	if c.MaxRoutesPerService == 0 {
		c.MaxRoutesPerService = 100
	}
	if c.Backlog == 0 {
		c.Backlog = 5 * time.Minute
	}
	if c.SpanQueueSize == 0 {
		c.SpanQueueSize = 8192
	}
	return c
}

// Validate checks c (after Defaults); errors name the field under
// "telemetry".
func (c Config) Validate() error {
	if c.Collector != "" {
		u, err := url.Parse(c.Collector)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("telemetry.collector: %q is not an http(s) URL", c.Collector)
		}
	}
	if c.FlushInterval < 100*time.Millisecond {
		return fmt.Errorf("telemetry.flush_interval: %v is below 100ms", c.FlushInterval)
	}
	if c.SamplingRatio != nil && (*c.SamplingRatio < 0 || *c.SamplingRatio > 1) {
		return fmt.Errorf("telemetry.sampling_ratio: %v is outside 0..1", *c.SamplingRatio)
	}
	if c.MaxRoutesPerService < 1 {
		return fmt.Errorf("telemetry.max_routes_per_service: must be > 0")
	}
	if c.Backlog < c.FlushInterval {
		return fmt.Errorf("telemetry.backlog: %v is shorter than flush_interval %v", c.Backlog, c.FlushInterval)
	}
	if c.SpanQueueSize < 1 {
		return fmt.Errorf("telemetry.span_queue_size: must be > 0")
	}
	return nil
}
