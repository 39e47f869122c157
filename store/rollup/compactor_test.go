package rollup_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
	"github.com/meshlens/meshlens/store/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// compactorStore opens a SQLite store for the test, closed at its end, and
// returns it with an encoded histogram of one value to write rollups of.
func compactorStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := hdr.New()
	hdr.Record(h, 100)
	enc, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return st, enc
}

// TestCompactorRun: Run builds what closes, again after new writes, and
// returns when its context ends.
func TestCompactorRun(t *testing.T) {
	ctx := context.Background()
	st, enc := compactorStore(t)
	now := time.Date(2026, 5, 1, 12, 0, 30, 0, time.UTC)
	write := func(m time.Time, src string) {
		t.Helper()
		r := store.Rollup{Minute: m, Source: src, Count: 1, Total: enc,
			Key: model.HopKey{Service: "api", Direction: model.Outbound, Peer: "db", Route: "/", Method: "GET", StatusClass: "2xx"}}
		if err := st.WriteRollups(ctx, []store.Rollup{r}); err != nil {
			t.Fatal(err)
		}
	}
	for m := now.Add(-90 * time.Minute).Truncate(time.Minute); m.Before(now); m = m.Add(time.Minute) {
		write(m, "p")
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c := &rollup.Compactor{Store: st, Now: func() time.Time { return now }, Interval: 5 * time.Millisecond, Batch: 10}
	go func() {
		defer close(done)
		c.Run(runCtx)
	}()
	clean := func() {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			ps, err := st.DirtyPeriods(ctx, now.Add(-rollup.DefaultLateness).Truncate(time.Minute), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("still dirty: %v", ps)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	clean()
	write(now.Add(-80*time.Minute), "late") // late, in the closed hour 10:00
	clean()
	cs, err := st.CurrentCompactions(ctx, store.CompactionQuery{Service: "api", Period: time.Hour, From: now.Add(-3 * time.Hour), To: now})
	if err != nil || len(cs) != 2 || cs[1].Rollups != 31 {
		t.Fatalf("hour compactions %+v, %v: want 2, outbound of 30+1 rollups", cs, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

// lockedStore is a store whose compactor lock another collector may hold.
type lockedStore struct {
	*sqlite.Store
	held     bool
	unlocked int
}

func (s *lockedStore) TryLockCompactor(context.Context) (func(), bool, error) {
	if s.held {
		return nil, false, nil
	}
	return func() { s.unlocked++ }, true, nil
}

// TestCompactorTakesTurns: a tick builds nothing while another collector
// holds the store's compactor lock, and builds (then unlocks) once it may.
func TestCompactorTakesTurns(t *testing.T) {
	ctx := context.Background()
	sq, enc := compactorStore(t)
	st := &lockedStore{Store: sq, held: true}
	now := time.Date(2026, 5, 1, 12, 30, 30, 0, time.UTC)
	// A minute and an hour, both closed.
	r := store.Rollup{Minute: now.Add(-90 * time.Minute).Truncate(time.Minute), Source: "p", Count: 1, Total: enc,
		Key: model.HopKey{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/", Method: "GET", StatusClass: "2xx"}}
	if err := st.WriteRollups(ctx, []store.Rollup{r}); err != nil {
		t.Fatal(err)
	}
	c := &rollup.Compactor{Store: st, Now: func() time.Time { return now }}
	dirty := func() int {
		t.Helper()
		ps, err := st.DirtyPeriods(ctx, now, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	if n, err := c.Tick(ctx); n != 0 || err != nil || dirty() != 2 {
		t.Fatalf("tick with the lock held elsewhere: took %d, %v; %d periods dirty, want 2 left", n, err, dirty())
	}
	st.held = false
	if n, err := c.Tick(ctx); n != 2 || err != nil || dirty() != 0 {
		t.Fatalf("tick with the lock free: took %d, %v; %d periods dirty, want none", n, err, dirty())
	}
	if st.unlocked != 1 {
		t.Errorf("lock released %d times after one tick", st.unlocked)
	}
}
