package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestWriteThrough: with PostgreSQL healthy, a span is in the database by
// the time the collector acknowledges it (the store exporter's
// write-through), so the acknowledged spans are all stored the moment the
// sender is done, without waiting for a queue to drain.
func TestWriteThrough(t *testing.T) {
	t.Parallel()
	db := migratedDatabase(t)
	c := newCollector(t, db)
	c.start()
	s := newSender("http://"+c.hdr, "e2e-write-through", 60, 100, 20)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.run(ctx); err != nil {
		t.Fatalf("sender: %v (answers %s)", err, s.statuses())
	}
	acked := s.ackedIDs()
	sql := fmt.Sprintf("SELECT trace_id || '/' || span_id, count(*) FROM spans WHERE service = '%s' GROUP BY 1", s.service)
	got := pgCounts(t, db, sql)
	missing := 0
	for id := range acked {
		if got[id] != 1 {
			missing++
		}
	}
	if missing > 0 || len(acked) != 6000 {
		t.Errorf("right after the last answer: %d of %d acknowledged spans not stored once (%d stored)", missing, len(acked), len(got))
	}
	if logs := c.logs.String(); strings.Contains(logs, "write-through to the store failed") {
		t.Errorf("the write-through failed with a healthy database:\n%s", tail(logs, 3000))
	}
}
