package main

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/migrations"
	"github.com/meshlens/meshlens/store/postgres"
)

func TestMigrateUpStatusDown(t *testing.T) {
	url := testenv.PostgresSchema(t)
	ctx := context.Background()
	version := func() int {
		t.Helper()
		m, err := postgres.NewMigrator(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		_, have, err := m.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return have
	}
	run := func(args ...string) int { return runMigrate(ctx, args) }

	if code := run("status", "--database-url", url); code != 0 || version() != 0 {
		t.Fatalf("status on an empty database: exit %d, version %d", code, version())
	}
	if code := run("up", "--database-url", url); code != 0 || version() != migrations.Latest() {
		t.Fatalf("up: exit %d, version %d", code, version())
	}
	if code := run("up", "--database-url", url); code != 0 {
		t.Fatalf("up again: exit %d", code)
	}
	st, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatalf("open after up: %v", err)
	}
	st.Close()
	if code := run("down", "--database-url", url); code != 0 || version() != migrations.Latest()-1 {
		t.Fatalf("down: exit %d, version %d", code, version())
	}
	t.Setenv("MESHLENS_DATABASE_URL", url)
	if code := run("down", "--to", "0"); code != 0 || version() != 0 {
		t.Fatalf("down --to 0 from the environment's URL: exit %d, version %d", code, version())
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("after down --to 0: %d tables left, %v", tables, err)
	}
	// Down and up again: every down file undoes its up file.
	if code := run("up"); code != 0 || version() != migrations.Latest() {
		t.Fatalf("up after down: exit %d", code)
	}
}

func TestMigrateUsage(t *testing.T) {
	t.Setenv("MESHLENS_DATABASE_URL", "")
	for _, args := range [][]string{nil, {"sideways", "--database-url", "postgres://x"}, {"up"}, {"up", "extra", "--database-url", "postgres://x"}} {
		if code := runMigrate(context.Background(), args); code != 2 {
			t.Errorf("migrate %q: exit %d, want 2", args, code)
		}
	}
}
