package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// sender posts OTLP/HTTP span batches at a fixed rate and retries each batch
// (on a connection error or any non-2xx answer) until the collector takes it,
// as an OTLP exporter with retries does. It remembers every span of every
// batch the collector acknowledged.
type sender struct {
	url      string
	batches  int           // how many batches in all
	perBatch int           // spans per batch
	interval time.Duration // between batch starts
	workers  int
	service  string

	mu     sync.Mutex
	acked  map[string]bool // trace_id/span_id
	status map[int]int     // answers by HTTP status (0: connection error)

	attempts atomic.Int64
}

func newSender(url, service string, batches, perBatch int, rate float64) *sender {
	return &sender{url: url + "/v1/traces", service: service, batches: batches, perBatch: perBatch,
		interval: time.Duration(float64(time.Second) / rate), workers: 8,
		acked: map[string]bool{}, status: map[int]int{}}
}

// batch builds one request: perBatch spans in traces of 10 spans.
func (s *sender) batch() ([]byte, []string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", s.service)
	ss := rs.ScopeSpans().AppendEmpty()
	now := time.Now()
	var ids []string
	var tid pcommon.TraceID
	for i := 0; i < s.perBatch; i++ {
		if i%10 == 0 {
			_, _ = rand.Read(tid[:])
		}
		var sid pcommon.SpanID
		_, _ = rand.Read(sid[:])
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName("e2e-op")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		ids = append(ids, hex.EncodeToString(tid[:])+"/"+hex.EncodeToString(sid[:]))
	}
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err) // a request built here always marshals
	}
	return b, ids
}

// run sends every batch and returns when all are acknowledged or ctx ends.
func (s *sender) run(ctx context.Context) error {
	jobs := make(chan int)
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	errs := make(chan error, s.workers)
	for w := 0; w < s.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				body, ids := s.batch()
				if err := s.send(ctx, client, body); err != nil {
					errs <- err
					return
				}
				s.mu.Lock()
				for _, id := range ids {
					s.acked[id] = true
				}
				s.mu.Unlock()
			}
		}()
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	var err error
feed:
	for i := 0; i < s.batches; i++ {
		select {
		case jobs <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func (s *sender) send(ctx context.Context, client *http.Client, body []byte) error {
	backoff := 100 * time.Millisecond
	for {
		s.attempts.Add(1)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		resp, err := client.Do(req)
		code := 0
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			code = resp.StatusCode
		}
		s.mu.Lock()
		s.status[code]++
		s.mu.Unlock()
		if code/100 == 2 {
			return nil
		}
		if code/100 == 4 && code != http.StatusTooManyRequests {
			return fmt.Errorf("collector refused a batch for good: HTTP %d", code)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("batch not acknowledged: %w", ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (s *sender) ackedIDs() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.acked))
	for k := range s.acked {
		out[k] = true
	}
	return out
}

func (s *sender) statuses() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.status)
}

// checkStored waits until the spans stored for the sender's service are
// exactly the acknowledged ones, each once.
func checkStored(t *testing.T, databaseURL string, s *sender, timeout time.Duration) {
	t.Helper()
	want := s.ackedIDs()
	if len(want) != s.batches*s.perBatch {
		t.Fatalf("%d spans acknowledged, %d sent", len(want), s.batches*s.perBatch)
	}
	sql := fmt.Sprintf("SELECT trace_id || '/' || span_id, count(*) FROM spans WHERE service = '%s' GROUP BY 1", s.service)
	var got map[string]int64
	eventually(t, timeout, func() error {
		got = pgCounts(t, databaseURL, sql)
		if len(got) < len(want) {
			return fmt.Errorf("%d of %d acknowledged spans stored", len(got), len(want))
		}
		return nil
	})
	for id, n := range got {
		if n != 1 {
			t.Errorf("span %s stored %d times", id, n)
		}
		if !want[id] {
			t.Errorf("span %s stored, never sent", id)
		}
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("span %s acknowledged, not stored", id)
		}
	}
	t.Logf("%d spans sent, %d stored once each; sender attempts %d, answers %s", len(want), len(got), s.attempts.Load(), s.statuses())
}
