package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestQueueFullRefusesRetryable: the persistent queue is bounded. With
// PostgreSQL gone, once queue_size requests wait, new spans are refused
// with a retryable answer (503 and Retry-After) and counted; the collector
// keeps running; when the database returns every span acknowledged before
// is stored, once.
func TestQueueFullRefusesRetryable(t *testing.T) {
	t.Parallel()
	c, tp, db := behindToxiproxy(t,
		"--set", "exporters::meshlens_store::sending_queue::queue_size=8",
		"--set", "exporters::meshlens_store::retry_on_failure::max_interval=1s")
	c.start()
	tp.setEnabled(t, "pg", false)

	s := newSender("http://"+c.hdr, "e2e-queue-full", 1, 10, 1)
	const overloaded = `meshlens_collector_rejected_total{reason="overloaded",signal="spans"}`
	before := scrapeValue(t, c.prom, overloaded)
	acked := map[string]bool{}
	answers := map[int]int{}
	refused := 0
	for i := 0; i < 60 && refused < 3; i++ {
		body, ids := s.batch()
		resp, err := http.Post(s.url, "application/x-protobuf", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("POST %d: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answers[resp.StatusCode]++
		switch resp.StatusCode {
		case http.StatusOK:
			for _, id := range ids {
				acked[id] = true
			}
		case http.StatusServiceUnavailable, http.StatusTooManyRequests:
			refused++
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("POST %d: %d without Retry-After", i, resp.StatusCode)
			}
		default:
			t.Fatalf("POST %d: %d, want 200 or a retryable refusal", i, resp.StatusCode)
		}
	}
	t.Logf("database gone, queue_size 8: answers %v", answers)
	if refused == 0 {
		t.Fatalf("60 requests taken with the database gone and queue_size 8: the queue is not bounded (answers %v)", answers)
	}
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged before the queue filled")
	}
	if after := scrapeValue(t, c.prom, overloaded); after < before+float64(refused*s.perBatch) {
		t.Errorf("%s went %v -> %v, want at least +%d", overloaded, before, after, refused*s.perBatch)
	}
	if code := httpStatus("http://" + c.api + "/healthz"); code != 200 {
		t.Fatalf("collector health with a full queue: %d", code)
	}

	tp.setEnabled(t, "pg", true)
	sql := fmt.Sprintf("SELECT trace_id || '/' || span_id, count(*) FROM spans WHERE service = '%s' GROUP BY 1", s.service)
	eventually(t, 90*time.Second, func() error {
		got := pgCounts(t, db, sql)
		for id := range acked {
			if got[id] != 1 {
				return fmt.Errorf("span %s acknowledged, stored %d times (%d of %d stored)", id, got[id], len(got), len(acked))
			}
		}
		return nil
	})
}

// TestQueueLengthAfterRestart: spans acknowledged into the persistent queue
// while PostgreSQL is away, then the collector killed. Restarted, it counts
// that backlog in meshlens_collector_queue_length before writing any of it
// (the database answers slowly, so the first write takes seconds), and the
// gauge goes back to zero once every span is stored.
func TestQueueLengthAfterRestart(t *testing.T) {
	t.Parallel()
	c, tp, db := behindToxiproxy(t,
		"--set", "exporters::meshlens_store::retry_on_failure::max_interval=1s")
	c.start()
	tp.setEnabled(t, "pg", false)

	const gauge = `meshlens_collector_queue_length{signal="spans"}`
	s := newSender("http://"+c.hdr, "e2e-queue-restart", 20, 50, 20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.run(ctx); err != nil {
		t.Fatalf("sender: %v (answers %s)", err, s.statuses())
	}
	acked := len(s.ackedIDs())
	if got := scrapeValue(t, c.prom, gauge); got != float64(acked) {
		t.Fatalf("%s = %v with %d spans acknowledged and the database away", gauge, got, acked)
	}
	c.kill()

	// Back, but every answer a second late: the restarted collector opens
	// its store, and its first COPY takes seconds.
	tp.call(t, http.MethodPost, "/proxies/pg/toxics", map[string]any{
		"name": "slow", "type": "latency", "stream": "downstream", "toxicity": 1.0,
		"attributes": map[string]any{"latency": 1000},
	}, nil)
	tp.setEnabled(t, "pg", true)
	c.start()
	if got := scrapeValue(t, c.prom, gauge); got != float64(acked) {
		t.Errorf("after the restart %s = %v, want the backlog of %d spans", gauge, got, acked)
	}
	tp.call(t, http.MethodDelete, "/proxies/pg/toxics/slow", nil, nil)
	checkStored(t, db, s, 60*time.Second)
	eventually(t, 30*time.Second, func() error {
		if got := scrapeValue(t, c.prom, gauge); got != 0 {
			return errorf("%s = %v once every span is stored", gauge, got)
		}
		return nil
	})
}
