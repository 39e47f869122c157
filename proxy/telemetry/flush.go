package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// maxIntervalsPerBatch bounds one POST: a collector that comes back after an
// outage gets the backlog in a few batches, not one huge one.
const maxIntervalsPerBatch = 30

type histSenderConfig struct {
	url       string // empty: record and rotate, send nothing
	token     string
	service   string
	instance  string
	interval  time.Duration
	backlog   int // intervals kept
	client    *http.Client
	logger    *slog.Logger
	startTime time.Time
}

// histSender rotates the interval histograms every flush interval and sends
// them, keeping what the collector has not taken in a bounded backlog.
type histSender struct {
	histSenderConfig
	rec *recorder

	// Retry waits: base doubles per failed attempt up to maxWait, with
	// jitter. Tests shorten them.
	baseWait, maxWait time.Duration

	wake chan struct{}

	mu         sync.Mutex
	seq        uint64
	ivStart    time.Time
	lastStart  time.Time // the last completed interval, for /stats
	lastEnd    time.Time
	lastSeq    uint64
	queue      []model.Interval // by seq, oldest first
	failing    bool             // for logging transitions only
	buf        bytes.Buffer
	gz         *gzip.Writer
	sentIvs    atomic.Uint64
	dropFull   atomic.Uint64 // backlog bound reached
	dropReject atomic.Uint64 // permanent 4xx
	dropLarge  atomic.Uint64 // one interval above the batch limit
	dropStop   atomic.Uint64 // unsent at shutdown
	errNetwork atomic.Uint64
	err4xx     atomic.Uint64
	err5xx     atomic.Uint64
	errEncode  atomic.Uint64
}

func newHistSender(c histSenderConfig, rec *recorder) *histSender {
	s := &histSender{
		histSenderConfig: c,
		rec:              rec,
		baseWait:         500 * time.Millisecond,
		maxWait:          30 * time.Second,
		wake:             make(chan struct{}, 1),
		ivStart:          c.startTime,
	}
	s.gz, _ = gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return s
}

func (s *histSender) resetStart(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seq == 0 {
		s.ivStart = t
	}
}

func (s *histSender) flushLoop(ctx context.Context) {
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			s.rotate(now)
		}
	}
}

// rotate closes the interval in progress at now, queues it and wakes the
// sender.
func (s *histSender) rotate(now time.Time) {
	iv := model.Interval{Hops: []model.HopHistograms{}}
	var encErr error
	s.rec.rotate(func(k model.HopKey, set *hopSet) {
		hh := model.HopHistograms{HopKey: k}
		var err error
		if hh.Total, err = hdr.Encode(set.total); err == nil {
			if hh.Upstream, err = hdr.Encode(set.upstream); err == nil {
				hh.Overhead, err = hdr.Encode(set.overhead)
			}
		}
		if err != nil {
			encErr = err
			return
		}
		iv.Hops = append(iv.Hops, hh)
	})
	if encErr != nil {
		s.errEncode.Add(1)
		s.logger.Error("encode histograms", "err", encErr)
	}

	s.mu.Lock()
	s.seq++
	iv.Seq = s.seq
	iv.StartUnixMs = s.ivStart.UnixMilli()
	iv.EndUnixMs = now.UnixMilli()
	if iv.EndUnixMs <= iv.StartUnixMs {
		iv.EndUnixMs = iv.StartUnixMs + 1
	}
	s.lastStart, s.lastEnd, s.lastSeq = s.ivStart, now, s.seq
	s.ivStart = now
	if s.url != "" {
		s.queue = append(s.queue, iv)
		if over := len(s.queue) - s.backlog; over > 0 {
			clear(s.queue[:over])
			s.queue = s.queue[over:]
			s.dropFull.Add(uint64(over))
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *histSender) backlogLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *histSender) lastInterval() (seq uint64, start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq, s.lastStart, s.lastEnd
}

// sendLoop sends the backlog whenever an interval is queued, retrying with
// backoff while the collector fails.
func (s *histSender) sendLoop(ctx context.Context) {
	if s.url == "" {
		<-ctx.Done()
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		_ = s.sendAll(ctx)
	}
}

// drain sends everything queued, with retries, until the queue is empty or
// ctx is done; what is left is dropped and counted.
func (s *histSender) drain(ctx context.Context) error {
	if s.url == "" {
		return nil
	}
	err := s.sendAll(ctx)
	s.mu.Lock()
	left := len(s.queue)
	s.queue = nil
	s.mu.Unlock()
	if left > 0 {
		s.dropStop.Add(uint64(left))
		return fmt.Errorf("telemetry: %d histogram intervals unsent at shutdown: %w", left, err)
	}
	return nil
}

// sendAll sends batches until the queue is empty, waiting and trying again
// after a retryable failure, until ctx is done.
func (s *histSender) sendAll(ctx context.Context) error {
	attempt := 0
	for {
		batch := s.peek()
		if len(batch) == 0 {
			return nil
		}
		retryAfter, err := s.post(ctx, batch)
		var perm *permanentError
		switch {
		case err == nil:
			s.remove(batch[len(batch)-1].Seq, &s.sentIvs)
			s.recovered()
			attempt = 0
		case errors.As(err, &perm):
			s.remove(batch[len(batch)-1].Seq, perm.counter)
			s.logger.Warn("collector refused histogram batch; dropped", "intervals", len(batch), "err", err)
			attempt = 0
		default:
			s.failed(err)
			if ctx.Err() != nil {
				return err
			}
			attempt++
			if werr := sleepCtx(ctx, backoff(s.baseWait, s.maxWait, attempt, retryAfter)); werr != nil {
				return err
			}
		}
	}
}

func (s *histSender) failed(err error) {
	s.mu.Lock()
	first := !s.failing
	s.failing = true
	s.mu.Unlock()
	if first {
		s.logger.Warn("histogram flush failing; keeping intervals and retrying", "collector", s.url, "err", err)
	}
}

func (s *histSender) recovered() {
	s.mu.Lock()
	was := s.failing
	s.failing = false
	s.mu.Unlock()
	if was {
		s.logger.Info("histogram flush recovered", "collector", s.url)
	}
}

// peek returns the oldest queued intervals, up to one batch.
func (s *histSender) peek() []model.Interval {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(len(s.queue), maxIntervalsPerBatch)
	return append([]model.Interval(nil), s.queue[:n]...)
}

// remove takes the intervals up to and including seq out of the queue and
// adds how many it took to counter.
func (s *histSender) remove(seq uint64, counter *atomic.Uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for n < len(s.queue) && s.queue[n].Seq <= seq {
		n++
	}
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	counter.Add(uint64(n))
}

// permanentError is a failure that retrying will not fix; counter is the
// drop reason it is counted under.
type permanentError struct {
	err     error
	counter *atomic.Uint64
}

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// post sends one batch. A nil error means the collector took it.
func (s *histSender) post(ctx context.Context, ivs []model.Interval) (retryAfter time.Duration, err error) {
	body, err := s.encode(ivs)
	if err != nil {
		s.errEncode.Add(1)
		return 0, &permanentError{err: err, counter: &s.dropLarge}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{err: fmt.Errorf("build request: %w", err), counter: &s.dropReject}
	}
	req.Header.Set("Content-Type", model.HistogramContentType)
	req.Header.Set("Content-Encoding", "gzip")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return doPost(s.client, req, &s.errNetwork, &s.err4xx, &s.err5xx, &s.dropReject)
}

// encode returns the gzipped JSON batch of ivs. A batch above the size limit
// is an error only when it holds one interval; otherwise the caller's peek
// is shortened and retried.
func (s *histSender) encode(ivs []model.Interval) ([]byte, error) {
	for {
		raw, err := json.Marshal(model.HistogramBatch{Instance: s.instance, Service: s.service, Intervals: ivs})
		if err != nil {
			return nil, fmt.Errorf("encode histogram batch: %w", err)
		}
		if len(raw) > model.MaxHistogramBatchBytes {
			if len(ivs) == 1 {
				return nil, fmt.Errorf("interval %d is %d bytes, above the %d-byte batch limit", ivs[0].Seq, len(raw), model.MaxHistogramBatchBytes)
			}
			ivs = ivs[:len(ivs)/2]
			continue
		}
		s.buf.Reset()
		s.gz.Reset(&s.buf)
		if _, err := s.gz.Write(raw); err != nil {
			return nil, fmt.Errorf("gzip histogram batch: %w", err)
		}
		if err := s.gz.Close(); err != nil {
			return nil, fmt.Errorf("gzip histogram batch: %w", err)
		}
		return bytes.Clone(s.buf.Bytes()), nil
	}
}

// doPost sends req and classifies the answer as docs/histogram-wire.md
// says: 2xx taken; 400, 413, 415 and other 4xx permanent; 401, 403, 408,
// 429 and 5xx retryable (Retry-After honoured); network errors retryable.
func doPost(c *http.Client, req *http.Request, errNet, err4xx, err5xx, dropReject *atomic.Uint64) (time.Duration, error) {
	resp, err := c.Do(req)
	if err != nil {
		errNet.Add(1)
		return 0, fmt.Errorf("post %s: %w", req.URL.Redacted(), err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return 0, nil
	}
	err = fmt.Errorf("post %s: %s: %s", req.URL.Redacted(), resp.Status, bytes.TrimSpace(msg))
	if code >= 500 {
		err5xx.Add(1)
	} else {
		err4xx.Add(1)
	}
	switch code {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return retryAfterHeader(resp.Header), err
	}
	if code >= 400 && code < 500 {
		return 0, &permanentError{err: err, counter: dropReject}
	}
	return retryAfterHeader(resp.Header), err
}

// retryAfterHeader reads a Retry-After of delay-seconds or an HTTP date,
// capped at five minutes.
func retryAfterHeader(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(max(d, 0), 5*time.Minute)
}

// backoff returns the wait before retry number attempt (1, 2, ...): base
// doubled per attempt up to maxWait, with jitter in [d/2, d), and at least
// retryAfter.
func backoff(base, maxWait time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	d = d/2 + rand.N(d/2+1)
	return max(d, retryAfter)
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
