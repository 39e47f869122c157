package postgres_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
)

// TestRetentionDropsPartitions: spans and rollups live in one partition
// per day; retention drops whole partitions of the days past it (not just
// their rows) and keeps the rest. The spans table carries the indexes the
// lookups need.
func TestRetentionDropsPartitions(t *testing.T) {
	ctx := context.Background()
	url := migrated(t)
	st, err := postgres.Open(ctx, postgres.Options{URL: url + "&pool_max_conns=2"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	today := time.Now().UTC().Truncate(24 * time.Hour)
	old := today.AddDate(0, 0, -10)
	h := hdr.New()
	hdr.Record(h, 1500)
	enc, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	key := model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "web", Route: "/", Method: "GET", StatusClass: "2xx"}
	for i, day := range []time.Time{old, today} {
		at := day.Add(time.Hour)
		sp := store.Span{TraceID: strings.Repeat(string(rune('1'+i)), 32), SpanID: strings.Repeat("a", 16), Service: "checkout",
			Name: "GET /", Kind: "server", Start: at, Duration: time.Millisecond, StatusCode: "unset"}
		if err := st.WriteSpans(ctx, []store.Span{sp}); err != nil {
			t.Fatal(err)
		}
		r := store.Rollup{Minute: at, Key: key, Source: "i/1", Count: 1, Total: enc, Upstream: enc, Overhead: enc}
		if err := st.WriteRollups(ctx, []store.Rollup{r}); err != nil {
			t.Fatal(err)
		}
	}
	partitions := func() []string {
		t.Helper()
		rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent IN ('spans'::regclass, 'rollups'::regclass)`)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(names)
		return names
	}
	has := func(names []string, name string) bool {
		i := sort.SearchStrings(names, name)
		return i < len(names) && names[i] == name
	}
	oldSuffix, todaySuffix := "_p"+old.Format("20060102"), "_p"+today.Format("20060102")
	before := partitions()
	for _, name := range []string{"spans" + oldSuffix, "rollups" + oldSuffix, "spans" + todaySuffix, "rollups" + todaySuffix} {
		if !has(before, name) {
			t.Fatalf("no partition %s among %v", name, before)
		}
	}
	if err := st.DropBefore(ctx, today.AddDate(0, 0, -7)); err != nil {
		t.Fatal(err)
	}
	after := partitions()
	for _, name := range []string{"spans" + oldSuffix, "rollups" + oldSuffix} {
		if has(after, name) {
			t.Errorf("after retention: partition %s is still there (%v)", name, after)
		}
	}
	for _, name := range []string{"spans" + todaySuffix, "rollups" + todaySuffix} {
		if !has(after, name) {
			t.Errorf("after retention: today's partition %s is gone (%v)", name, after)
		}
	}
	if _, err := st.Trace(ctx, strings.Repeat("2", 32)); err != nil {
		t.Errorf("today's span after retention: %v", err)
	}

	// Indexes: trace ID (the primary key), request ID, service plus time,
	// service plus duration (the service as its hash and the duration as
	// its bucket, 0004; that the queries use them is
	// TestSpanLookupsUseIndexes).
	rows, err := conn.Query(ctx, `SELECT indexdef FROM pg_indexes WHERE tablename = 'spans' AND schemaname = current_schema()`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(defs, "\n")
	for _, cols := range []string{"(trace_id, span_id", "hash (request_id)", "(hashtext(service), start_ns)", "(hashtext(service), ((duration_ns >> 16)))"} {
		if !strings.Contains(all, cols) {
			t.Errorf("spans has no index on %s:\n%s", cols, all)
		}
	}
}

// TestCompactorLock: of two stores on one database (two collectors), one
// compactor lock holder at a time; unlocking hands it on.
func TestCompactorLock(t *testing.T) {
	ctx := context.Background()
	url := migrated(t)
	open := func() *postgres.Store {
		st, err := postgres.Open(ctx, postgres.Options{URL: url + "&pool_max_conns=2"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := open(), open()
	unlockA, ok, err := a.TryLockCompactor(ctx)
	if err != nil || !ok {
		t.Fatalf("first lock: %v, %v", ok, err)
	}
	if _, ok, err := b.TryLockCompactor(ctx); err != nil || ok {
		t.Fatalf("second collector took the held lock: %v, %v", ok, err)
	}
	if _, ok, err := a.TryLockCompactor(ctx); err != nil || ok {
		t.Fatalf("the holder took it again on another connection: %v, %v", ok, err)
	}
	unlockA()
	unlockB, ok, err := b.TryLockCompactor(ctx)
	if err != nil || !ok {
		t.Fatalf("after unlock: %v, %v", ok, err)
	}
	unlockB()
	// Released connections went back to the pool without the lock.
	for range 3 {
		unlock, ok, err := a.TryLockCompactor(ctx)
		if err != nil || !ok {
			t.Fatalf("lock again: %v, %v", ok, err)
		}
		unlock()
	}
}

// TestCompactorLockSmallPool: with one pooled connection the lock holds
// none, and the compactor's own queries still get the connection.
func TestCompactorLockSmallPool(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Options{URL: migrated(t) + "&pool_max_conns=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	unlock, ok, err := st.TryLockCompactor(ctx)
	if err != nil || !ok {
		t.Fatalf("lock: %v, %v", ok, err)
	}
	defer unlock()
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := st.DirtyPeriods(qctx, time.Now(), 1); err != nil {
		t.Fatalf("a query while the lock is held: %v", err)
	}
}
