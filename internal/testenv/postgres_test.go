package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestThrowawayCluster starts the cluster Postgres falls back to when no
// server answers, and uses it.
func TestThrowawayCluster(t *testing.T) {
	url, err := startPostgres()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != "test" {
		t.Fatalf("current_database() = %q, %v", db, err)
	}
}

func TestPostgresSchemaAndDatabase(t *testing.T) {
	ctx := context.Background()
	for name, url := range map[string]string{"schema": PostgresSchema(t), "database": PostgresDatabase(t)} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		conn.Close(ctx)
	}
}
