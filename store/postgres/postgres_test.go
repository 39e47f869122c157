package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/meshlens/meshlens/internal/testenv"
	"github.com/meshlens/meshlens/migrations"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
	"github.com/meshlens/meshlens/store/storetest"
)

// migrated returns the URL of a fresh schema with the migrations applied.
func migrated(t *testing.T) string {
	t.Helper()
	return migratedTB(t)
}

func migratedTB(t testing.TB) string {
	t.Helper()
	url := testenv.PostgresSchema(t)
	m, err := postgres.NewMigrator(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return url
}

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), postgres.Options{URL: migrated(t) + "&pool_max_conns=4"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestOpenRefusesUnknownSchema(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresSchema(t)
	_, err := postgres.Open(ctx, postgres.Options{URL: url})
	var se *postgres.SchemaError
	if !errors.As(err, &se) || se.Have != 0 || se.Want != migrations.Latest() {
		t.Fatalf("open on an empty database: %v, want a SchemaError", err)
	}
	if !strings.Contains(err.Error(), "meshlens migrate up --database-url") {
		t.Errorf("error %q does not name the command that fixes it", err)
	}
}

func TestRedact(t *testing.T) {
	got := postgres.Redact("postgres://meshlens:s3cret@db:5432/meshlens")
	if strings.Contains(got, "s3cret") {
		t.Errorf("Redact kept the password: %s", got)
	}
}
