package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshlens/meshlens/migrations"
)

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrationLock keys the advisory lock that keeps two migrators apart.
const migrationLock = 0x6d6c6d67 // "mlmg"

// schemaVersion is the newest applied version, 0 on an empty database.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if isUndefinedTable(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// MigrationStatus is one known migration and when it was applied.
type MigrationStatus struct {
	Version   int
	Name      string
	AppliedAt time.Time // zero when not applied
}

// Migrator applies the embedded migrations to a database.
type Migrator struct {
	pool *pgxpool.Pool
	all  []migrations.Migration
}

// NewMigrator connects to the database at url.
func NewMigrator(ctx context.Context, url string) (*Migrator, error) {
	all, err := migrations.All()
	if err != nil {
		return nil, err
	}
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	return &Migrator{pool: pool, all: all}, nil
}

// Close closes the connection.
func (m *Migrator) Close() { m.pool.Close() }

// Status lists every known migration and whether it is applied, and the
// database's version (which may be newer than any known migration).
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, int, error) {
	applied := map[int]time.Time{}
	rows, err := m.pool.Query(ctx, `SELECT version, applied_at FROM schema_migrations ORDER BY version`)
	switch {
	case isUndefinedTable(err):
	case err != nil:
		return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
	default:
		var v int
		var at time.Time
		_, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error { applied[v] = at; return nil })
		if err != nil {
			return nil, 0, fmt.Errorf("read schema_migrations: %w", err)
		}
	}
	out := make([]MigrationStatus, len(m.all))
	have := 0
	for i, mg := range m.all {
		out[i] = MigrationStatus{Version: mg.Version, Name: mg.Name, AppliedAt: applied[mg.Version]}
	}
	for v := range applied {
		have = max(have, v)
	}
	return out, have, nil
}

// Up applies every migration not yet applied, each in its own transaction,
// and returns the versions applied.
func (m *Migrator) Up(ctx context.Context) ([]int, error) {
	var done []int
	err := m.locked(ctx, func(conn *pgxpool.Conn) error {
		if _, err := conn.Exec(ctx, createSchemaMigrations); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		have, err := schemaVersion(ctx, conn)
		if err != nil {
			return err
		}
		if have > len(m.all) {
			return fmt.Errorf("database schema version %d is newer than this build knows (%d)", have, len(m.all))
		}
		for _, mg := range m.all[have:] {
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, mg.Up); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, mg.Version, mg.Name)
				return err
			})
			if err != nil {
				return fmt.Errorf("migrate up to %d (%s): %w", mg.Version, mg.Name, err)
			}
			done = append(done, mg.Version)
		}
		return nil
	})
	return done, err
}

// Down reverts migrations, newest first, down to version to (0 reverts
// everything), and returns the versions reverted.
func (m *Migrator) Down(ctx context.Context, to int) ([]int, error) {
	if to < 0 {
		return nil, fmt.Errorf("target version %d: must not be negative", to)
	}
	var done []int
	err := m.locked(ctx, func(conn *pgxpool.Conn) error {
		have, err := schemaVersion(ctx, conn)
		if err != nil {
			return err
		}
		if have > len(m.all) {
			return fmt.Errorf("database schema version %d is newer than this build knows (%d): revert it with the build that wrote it", have, len(m.all))
		}
		for v := have; v > to; v-- {
			mg := m.all[v-1]
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, mg.Down); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, mg.Version)
				return err
			})
			if err != nil {
				return fmt.Errorf("migrate down from %d (%s): %w", mg.Version, mg.Name, err)
			}
			done = append(done, mg.Version)
		}
		if to == 0 {
			if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS schema_migrations`); err != nil {
				return fmt.Errorf("drop schema_migrations: %w", err)
			}
		}
		return nil
	})
	return done, err
}

// locked runs fn on one connection holding the migration advisory lock.
func (m *Migrator) locked(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	conn, err := m.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	defer func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			// Close the session, which ends the lock, rather than hand the
			// connection back to the pool still holding it.
			_ = conn.Conn().Close(ctx)
		}
	}()
	return fn(conn)
}
