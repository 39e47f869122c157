package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	spanShards = 8 // power of two; a hop's shard is picked by its span ID
	// maxSpansPerExport bounds one OTLP request.
	maxSpansPerExport = 512
	// spanExportAttempts is how often one batch is tried before it is
	// dropped: spans are worth less than the queue space they hold.
	spanExportAttempts = 3
)

type spanExporterConfig struct {
	url       string
	token     string
	service   string
	instance  string
	queueSize int
	client    *http.Client
	logger    *slog.Logger
}

// spanShard is one lock's worth of the span queue. The padding keeps two
// shards' mutexes off one cache line.
type spanShard struct {
	mu  sync.Mutex
	buf []Hop
	_   [64]byte
}

// spanExporter queues sampled hops in sharded, bounded buffers (grown on
// demand up to queueSize in all) and exports
// them as OTLP/HTTP protobuf from its own goroutine. push never blocks:
// a full shard drops the span and counts it.
type spanExporter struct {
	spanExporterConfig
	perShard int
	shards   [spanShards]spanShard

	// delay is the longest a span waits in the queue; a shard half full
	// wakes the exporter sooner.
	delay             time.Duration
	baseWait, maxWait time.Duration
	wake              chan struct{}

	enc   *spanEncoder
	spare []Hop

	failing    atomic.Bool
	sent       atomic.Uint64
	dropFull   atomic.Uint64
	dropFailed atomic.Uint64
	dropReject atomic.Uint64
	dropStop   atomic.Uint64
	errNetwork atomic.Uint64
	err4xx     atomic.Uint64
	err5xx     atomic.Uint64
}

func newSpanExporter(c spanExporterConfig) *spanExporter {
	per := (c.queueSize + spanShards - 1) / spanShards
	e := &spanExporter{
		spanExporterConfig: c,
		perShard:           per,
		delay:              time.Second,
		baseWait:           200 * time.Millisecond,
		maxWait:            2 * time.Second,
		wake:               make(chan struct{}, 1),
		enc:                newSpanEncoder(c.service, c.instance),
	}
	// The buffers grow as spans come, up to perShard each: a sidecar whose
	// traffic samples few spans holds few slots (a full queue is 8,192
	// hops, about 3 MB).
	return e
}

// push copies h into the queue, or drops it when its shard is full.
func (e *spanExporter) push(h *Hop) {
	s := &e.shards[h.SpanID[7]&(spanShards-1)]
	s.mu.Lock()
	n := len(s.buf)
	if n >= e.perShard {
		s.mu.Unlock()
		e.dropFull.Add(1)
		return
	}
	s.buf = append(s.buf, *h)
	s.mu.Unlock()
	if n+1 == e.perShard/2 {
		select {
		case e.wake <- struct{}{}:
		default:
		}
	}
}

// queueLen returns how many spans wait for export.
func (e *spanExporter) queueLen() int {
	n := 0
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		n += len(s.buf)
		s.mu.Unlock()
	}
	return n
}

func (e *spanExporter) exportLoop(ctx context.Context) {
	tick := time.NewTicker(e.delay)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.wake:
		}
		e.exportQueued(ctx)
	}
}

// drain exports what is queued, bounded by ctx; the rest is dropped and
// counted.
func (e *spanExporter) drain(ctx context.Context) error {
	e.exportQueued(ctx)
	left := 0
	for i := range e.shards {
		s := &e.shards[i]
		s.mu.Lock()
		left += len(s.buf)
		clear(s.buf)
		s.buf = s.buf[:0]
		s.mu.Unlock()
	}
	if left > 0 {
		e.dropStop.Add(uint64(left))
		return fmt.Errorf("telemetry: %d spans unsent at shutdown", left)
	}
	return nil
}

// exportQueued takes every shard's spans (swapping in the spare buffer so
// push keeps going) and exports them in requests of up to
// maxSpansPerExport spans.
func (e *spanExporter) exportQueued(ctx context.Context) {
	for i := range e.shards {
		if ctx.Err() != nil {
			return
		}
		s := &e.shards[i]
		s.mu.Lock()
		taken := s.buf
		s.buf = e.spare
		s.mu.Unlock()
		for j := range taken {
			e.enc.add(&taken[j])
			if e.enc.n == maxSpansPerExport {
				e.flush(ctx)
			}
		}
		clear(taken)
		e.spare = taken[:0]
	}
	if e.enc.n > 0 {
		e.flush(ctx)
	}
}

// flush sends the encoder's spans, retrying a few times, then resets it.
func (e *spanExporter) flush(ctx context.Context) {
	n := uint64(e.enc.n)
	body := e.enc.request()
	defer e.enc.reset()
	var err error
	for attempt := 1; attempt <= spanExportAttempts; attempt++ {
		var retryAfter time.Duration
		retryAfter, err = e.post(ctx, body)
		var perm *permanentError
		switch {
		case err == nil:
			e.sent.Add(n)
			if e.failing.Swap(false) {
				e.logger.Info("span export recovered", "collector", e.url)
			}
			return
		case errors.As(err, &perm):
			e.dropReject.Add(n)
			e.logger.Warn("collector refused spans; dropped", "spans", n, "err", err)
			return
		}
		if attempt == spanExportAttempts || ctx.Err() != nil {
			break
		}
		if sleepCtx(ctx, backoff(e.baseWait, e.maxWait, attempt, min(retryAfter, e.maxWait))) != nil {
			break
		}
	}
	e.dropFailed.Add(n)
	if !e.failing.Swap(true) {
		e.logger.Warn("span export failing; dropping batches", "collector", e.url, "err", err)
	}
}

func (e *spanExporter) post(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	var dropReject atomic.Uint64 // spans count their own rejections in flush
	return doPost(e.client, req, &e.errNetwork, &e.err4xx, &e.err5xx, &dropReject)
}
