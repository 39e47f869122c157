package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestPostgresHung: PostgreSQL hangs for 15 s (Toxiproxy's timeout toxic:
// connections stay open, nothing comes back, new connections get no
// answer either) while spans arrive. Store writes time out and are
// retried; the collector keeps acknowledging into its persistent queue;
// once the database answers again every acknowledged span is stored, once.
func TestPostgresHung(t *testing.T) {
	t.Parallel()
	c, tp, db := behindToxiproxy(t,
		// A hung write gives up after 3 s and is retried from the queue.
		"--set", "exporters::meshlens_store::timeout=3s",
		"--set", "exporters::meshlens_store::retry_on_failure::max_interval=2s")
	c.start()

	// 30 s at 10 batches/s of 50 spans: 5 s before, 15 s during and 10 s
	// after the hang.
	s := newSender("http://"+c.hdr, "e2e-hung", 300, 50, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.run(ctx) }()

	time.Sleep(5 * time.Second)
	tp.call(t, http.MethodPost, "/proxies/pg/toxics", map[string]any{
		"name": "hang", "type": "timeout", "stream": "upstream", "toxicity": 1.0,
		"attributes": map[string]any{"timeout": 0},
	}, nil)
	hung := time.Now()
	time.Sleep(3 * time.Second) // writes in flight when it hung time out
	count := fmt.Sprintf("SELECT 'n', count(*) FROM spans WHERE service = '%s'", s.service)
	before := pgCounts(t, db, count)["n"]
	ackedBefore := len(s.ackedIDs())
	time.Sleep(15*time.Second - time.Since(hung))
	during := pgCounts(t, db, count)["n"]
	ackedDuring := len(s.ackedIDs()) - ackedBefore
	tp.call(t, http.MethodDelete, "/proxies/pg/toxics/hang", nil, nil)
	t.Logf("hung 15s: stored %d → %d through it; %d spans acknowledged meanwhile", before, during, ackedDuring)
	if during != before {
		t.Errorf("spans were stored while the database hung (%d → %d): it did not hang", before, during)
	}
	if ackedDuring < 2_000 {
		t.Errorf("only %d spans acknowledged while the database hung: the persistent queue should take ~500/s", ackedDuring)
	}
	if err := <-sent; err != nil {
		t.Fatalf("sender: %v (answers %s)", err, s.statuses())
	}
	checkStored(t, db, s, 90*time.Second)
}
