package open

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/migrations"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
	"github.com/meshlens/meshlens/store/spanrows"
	"github.com/meshlens/meshlens/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenPicksTheDriver(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*sqlite.Store); !ok {
		t.Errorf("data dir only: got %T, want *sqlite.Store", st)
	}
	st.Close()

	url := testenv.PostgresSchema(t)
	_, err = Open(ctx, Options{DataDir: t.TempDir(), DatabaseURL: url})
	var se *postgres.SchemaError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "meshlens migrate up --database-url") {
		t.Fatalf("unmigrated database: %v, want a SchemaError naming meshlens migrate up", err)
	}
	m, err := postgres.NewMigrator(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	m.Close()
	st, err = Open(ctx, Options{DataDir: t.TempDir(), DatabaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.(*postgres.Store); !ok {
		t.Errorf("database URL: got %T, want *postgres.Store", st)
	}
	st.Close()

	// A schema newer than this build knows (written by a newer meshlens):
	// refused, and the error says how to go back.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	newer := migrations.Latest() + 1
	if _, err := conn.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, 'from a newer build')`, newer); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Options{DataDir: t.TempDir(), DatabaseURL: url})
	if !errors.As(err, &se) || se.Have != newer || !strings.Contains(err.Error(), fmt.Sprintf("meshlens migrate down --to %d --database-url", migrations.Latest())) {
		t.Fatalf("newer schema: %v, want a SchemaError naming meshlens migrate down --to %d", err, migrations.Latest())
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{}); err == nil {
		t.Error("no data dir and no URL: no error")
	}
	if _, err := Open(ctx, Options{DataDir: t.TempDir(), Retention: -time.Hour}); err == nil {
		t.Error("negative retention: no error")
	}
}

func TestRetentionDropsOldData(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old := store.Span{TraceID: strings.Repeat("1", 32), SpanID: strings.Repeat("1", 16), Start: now.AddDate(0, 0, -10)}
	fresh := store.Span{TraceID: strings.Repeat("2", 32), SpanID: strings.Repeat("2", 16), Start: now.Add(-time.Hour)}
	if err := lite.WriteSpans(ctx, []store.Span{old, fresh}); err != nil {
		t.Fatal(err)
	}
	st := startRetention(lite, 7*24*time.Hour, 10*time.Millisecond, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.Trace(ctx, old.TraceID)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old span still there after 10s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := st.Trace(ctx, fresh.TraceID); err != nil {
		t.Errorf("fresh span: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// The retention wrapper passes span rows on: as they are to a store that
// takes them, decoded to one that does not.
func TestRetainedWritesSpanRows(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, Options{DataDir: t.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, ok := st.(spanrows.Writer)
	if !ok {
		t.Fatalf("%T does not take span rows", st)
	}
	sp := store.Span{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", Service: "web", Name: "GET",
		Kind: "server", Start: time.Now().UTC().Truncate(time.Microsecond), StatusCode: "unset", Attributes: map[string]string{"a": "1"}}
	if err := w.WriteSpanRows(ctx, spanrows.Batch{Rows: spanrows.AppendSpan(nil, &sp)}); err != nil {
		t.Fatal(err)
	}
	got, err := st.Trace(ctx, sp.TraceID)
	if err != nil || len(got) != 1 || got[0].Attributes["a"] != "1" || !got[0].Start.Equal(sp.Start) {
		t.Errorf("trace: %+v, %v", got, err)
	}
}
