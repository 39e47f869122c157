package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/internal/testenv"
)

// TestPostgresOutage: PostgreSQL goes away for 30 s (Toxiproxy between the
// collector and the database closes every connection and refuses new ones)
// while spans arrive at 2,000/s. The collector keeps acknowledging into its
// persistent queue; once the database is back every acknowledged span is
// stored, once.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	c, tp, db := behindToxiproxy(t)
	c.start()

	// 50 s at 20 batches/s of 100 spans: 10 s before, 30 s during and 10 s
	// after the outage.
	s := newSender("http://"+c.hdr, "e2e-outage", 1000, 100, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.run(ctx) }()

	time.Sleep(10 * time.Second)
	tp.setEnabled(t, "pg", false)
	outage := time.Now()
	time.Sleep(2 * time.Second)
	count := fmt.Sprintf("SELECT 'n', count(*) FROM spans WHERE service = '%s'", s.service)
	before := pgCounts(t, db, count)["n"]
	ackedBefore := len(s.ackedIDs())
	time.Sleep(30*time.Second - time.Since(outage))
	during := pgCounts(t, db, count)["n"]
	ackedDuring := len(s.ackedIDs()) - ackedBefore
	tp.setEnabled(t, "pg", true)
	t.Logf("outage 30s: stored %d → %d through it; %d spans acknowledged meanwhile", before, during, ackedDuring)
	if during != before {
		t.Errorf("spans were stored during the outage (%d → %d): the database was not cut off", before, during)
	}
	if ackedDuring < 20_000 {
		t.Errorf("only %d spans acknowledged during the outage: the persistent queue should take ~2,000/s", ackedDuring)
	}
	if err := <-sent; err != nil {
		t.Fatalf("sender: %v (answers %s)", err, s.statuses())
	}
	checkStored(t, db, s, 90*time.Second)
}

// TestCollectorSIGKILL: the collector is killed with SIGKILL twice while
// spans arrive at 2,000/s from senders that retry; restarted on the same
// data directory it loses nothing it acknowledged and stores nothing twice.
func TestCollectorSIGKILL(t *testing.T) {
	t.Parallel()
	db := migratedDatabase(t)
	c := newCollector(t, db)
	c.start()
	s := newSender("http://"+c.hdr, "e2e-sigkill", 400, 100, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.run(ctx) }()
	for _, at := range []time.Duration{5 * time.Second, 6 * time.Second} {
		time.Sleep(at)
		n := len(s.ackedIDs())
		c.kill()
		t.Logf("SIGKILL after %d spans acknowledged", n)
		time.Sleep(time.Second)
		c.start()
	}
	if err := <-sent; err != nil {
		t.Fatalf("sender: %v (answers %s)", err, s.statuses())
	}
	checkStored(t, db, s, 60*time.Second)
}

// TestHistogramsSIGKILL: a meshproxy sends its interval histograms every
// second while the collector is killed with SIGKILL and restarted; the
// proxy's backlog and the collector's persistent queue together keep every
// request: the stored rollups count exactly the requests sent.
func TestHistogramsSIGKILL(t *testing.T) {
	t.Parallel()
	db := migratedDatabase(t)
	c := newCollector(t, db)
	c.start()

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer app.Close()
	inbound, admin := testhost.FreeAddr(t), testhost.FreeAddr(t)
	pctx, pcancel := context.WithCancel(context.Background())
	proxy := exec.CommandContext(pctx, testenv.Tool(t, "meshproxy"), "--service", "e2e-api",
		"--inbound", inbound, "--outbound", testhost.FreeAddr(t), "--admin", admin,
		"--app", app.Listener.Addr().String(), "--collector", "http://"+c.hdr,
		"--flush-interval", "1s", "--log-level", "warn")
	var plogs lockedBuffer
	proxy.Stdout, proxy.Stderr = &plogs, &plogs
	proxy.Cancel = func() error { return proxy.Process.Signal(syscall.SIGTERM) }
	proxy.WaitDelay = 15 * time.Second
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		pcancel()
		_ = proxy.Wait()
		if t.Failed() {
			t.Logf("meshproxy:\n%s", tail(plogs.String(), 4000))
		}
	}()
	eventually(t, 20*time.Second, func() error {
		if code := httpStatus("http://" + admin + "/ready"); code != 200 {
			return fmt.Errorf("meshproxy not ready: %d", code)
		}
		return nil
	})

	// 1,200 requests at 100/s; the collector is down from 3 s to 6 s.
	const requests = 1200
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < requests; i++ {
			<-tick.C
			resp, err := http.Get("http://" + inbound + fmt.Sprintf("/work/%d", i%3))
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != 200 {
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}
	}()
	time.Sleep(3 * time.Second)
	c.kill()
	time.Sleep(3 * time.Second)
	c.start()
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d of %d requests through the proxy failed", failed, requests)
	}
	sql := "SELECT service, sum(count)::bigint FROM rollups WHERE service = 'e2e-api' AND direction = 'inbound' GROUP BY 1"
	var got int64
	eventually(t, 60*time.Second, func() error {
		got = pgCounts(t, db, sql)["e2e-api"]
		if got < requests {
			return fmt.Errorf("rollups count %d of %d requests", got, requests)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // a late duplicate would show now
	if got = pgCounts(t, db, sql)["e2e-api"]; got != requests {
		t.Fatalf("rollups count %d requests, %d were sent", got, requests)
	}
	t.Logf("rollups count %d requests, as sent", got)
}
