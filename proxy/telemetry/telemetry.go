package telemetry

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Telemetry records every finished hop and ships histograms and spans to the
// collector. Create it with New; it is a Sink.
type Telemetry struct {
	cfg      Config
	service  string
	instance string
	logger   *slog.Logger

	// sampleBelow is the head-sampling threshold on the trace ID's low 63
	// bits; spansOn is false when no span is ever exported.
	sampleBelow uint64
	sampleAll   bool
	spansOn     bool

	rec   *recorder
	hist  *histSender
	spans *spanExporter // nil when spans are off

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	loops   sync.WaitGroup
}

var _ Sink = (*Telemetry)(nil)

// New returns a Telemetry for the proxy beside service. cfg is defaulted and
// validated; its collectors are registered into reg unless reg is nil.
func New(cfg Config, service string, reg prometheus.Registerer, logger *slog.Logger) (*Telemetry, error) {
	cfg = cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if service == "" {
		return nil, errors.New("telemetry: service must not be empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	inst, err := newInstanceID()
	if err != nil {
		return nil, err
	}
	t := &Telemetry{
		cfg:      cfg,
		service:  service,
		instance: inst,
		logger:   logger.With("component", "telemetry"),
		rec:      newRecorder(cfg.MaxRoutesPerService),
	}
	ratio := *cfg.SamplingRatio
	t.sampleAll = ratio >= 1
	t.sampleBelow = uint64(ratio * (1 << 63))
	collector := strings.TrimRight(cfg.Collector, "/")
	client := newHTTPClient(cfg.FlushInterval)
	t.hist = newHistSender(histSenderConfig{
		url:       collectorURL(collector, "/v1/histograms"),
		token:     cfg.Token,
		service:   service,
		instance:  inst,
		interval:  cfg.FlushInterval,
		backlog:   int(math.Max(1, float64(cfg.Backlog/cfg.FlushInterval))),
		client:    client,
		logger:    t.logger,
		startTime: time.Now(),
	}, t.rec)
	if collector != "" && ratio > 0 {
		t.spansOn = true
		t.spans = newSpanExporter(spanExporterConfig{
			url:       collector + "/v1/traces",
			token:     cfg.Token,
			service:   service,
			instance:  inst,
			queueSize: cfg.SpanQueueSize,
			client:    client,
			logger:    t.logger,
		})
	}
	if reg != nil {
		if err := reg.Register(newMetrics(t)); err != nil {
			return nil, fmt.Errorf("telemetry: register metrics: %w", err)
		}
	}
	return t, nil
}

func collectorURL(base, path string) string {
	if base == "" {
		return ""
	}
	return base + path
}

func newInstanceID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("telemetry: instance id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// newHTTPClient returns the client both senders use. Every phase has a
// timeout so that a black-holed collector costs a bounded wait on the
// sender's goroutine, never on a request's.
func newHTTPClient(interval time.Duration) *http.Client {
	timeout := min(max(interval, 2*time.Second), 10*time.Second)
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConns:          4,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
	}
}

// Instance returns the random ID this proxy process sends with its
// histogram batches.
func (t *Telemetry) Instance() string { return t.instance }

// ShouldSample reports whether a trace started here with traceID is
// sampled. The decision is deterministic in the trace ID (its last 8 bytes
// against the ratio), like OpenTelemetry's TraceIDRatioBased sampler.
func (t *Telemetry) ShouldSample(traceID [16]byte) bool {
	if t.sampleAll {
		return true
	}
	return binary.BigEndian.Uint64(traceID[8:16])>>1 < t.sampleBelow
}

// Finish records h in the histograms and, when h is sampled and spans are
// on, queues its span. It never blocks and does not keep h.
func (t *Telemetry) Finish(h *Hop) {
	t.rec.record(h)
	if h.Sampled && t.spansOn {
		t.spans.push(h)
	}
}

// Start starts the flush and export loops. They run until Shutdown.
func (t *Telemetry) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.started || t.stopped {
		return errors.New("telemetry: already started")
	}
	t.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	t.hist.resetStart(time.Now())
	t.loops.Add(1)
	go func() {
		defer t.loops.Done()
		t.hist.flushLoop(runCtx)
	}()
	t.loops.Add(1)
	go func() {
		defer t.loops.Done()
		t.hist.sendLoop(runCtx)
	}()
	if t.spans != nil {
		t.loops.Add(1)
		go func() {
			defer t.loops.Done()
			t.spans.exportLoop(runCtx)
		}()
	}
	return nil
}

// Shutdown stops the loops, closes the interval in progress and sends what
// is still queued: histogram intervals first, then spans. It returns when
// everything is sent or ctx is done; what is left then is dropped and
// counted, and the error says so.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return nil
	}
	t.stopped = true
	started := t.started
	t.mu.Unlock()
	if started {
		t.cancel()
		stopped := make(chan struct{})
		go func() {
			t.loops.Wait()
			close(stopped)
		}()
		select {
		case <-stopped:
		case <-ctx.Done():
			// A loop is still finishing a rotation or a request: what is
			// queued stays unsent.
			t.countUnsent()
			return fmt.Errorf("telemetry: shutdown before the senders stopped; queued telemetry not sent: %w", ctx.Err())
		}
	}
	now := time.Now()
	if err := ctx.Err(); err != nil {
		t.countUnsent()
		return fmt.Errorf("telemetry: shutdown: interval in progress and backlog not sent: %w", err)
	}
	var errs []error
	t.hist.rotate(now)
	if err := t.hist.drain(ctx); err != nil {
		errs = append(errs, err)
	}
	if t.spans != nil {
		if err := t.spans.drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	t.hist.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// countUnsent counts what a Shutdown out of time leaves behind: the
// backlog, the interval in progress, and the queued spans.
func (t *Telemetry) countUnsent() {
	t.hist.dropStop.Add(uint64(t.hist.backlogLen()) + 1)
	if t.spans != nil {
		t.spans.dropStop.Add(uint64(t.spans.queueLen()))
	}
	t.hist.client.CloseIdleConnections()
}
