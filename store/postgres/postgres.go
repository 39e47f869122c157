// Package postgres is the PostgreSQL store, through pgx. Spans are written
// with binary COPY straight into their table; a batch holding a span stored
// before goes through a per-session staging table and INSERT ... ON
// CONFLICT DO NOTHING instead, so a span sent twice is stored once. Spans and rollups
// live in daily range partitions that the store creates ahead of need and
// drops whole for retention. The schema comes from migrations/ and is
// applied by `meshlens migrate up`; Open refuses a schema it does not know.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/meshlens/meshlens/migrations"
	"github.com/meshlens/meshlens/store"
)

// Options configure the PostgreSQL store.
type Options struct {
	// URL is a PostgreSQL connection URL or keyword/value string. Pool size
	// and the like go in it (pool_max_conns=8).
	URL    string
	Logger *slog.Logger
	// PartitionsAhead is how many days of partitions after today Open
	// creates; 0 means DefaultPartitionsAhead.
	PartitionsAhead int
}

// DefaultPartitionsAhead is the number of future daily partitions Open
// creates.
const DefaultPartitionsAhead = 2

// SchemaError says the database schema is not the one this build writes. Its
// message names the command that fixes it.
type SchemaError struct {
	Have, Want int
	// URL is the database URL with any password removed.
	URL string
}

func (e *SchemaError) Error() string {
	if e.Have > e.Want {
		return fmt.Sprintf("database schema version %d is newer than this build knows (%d): run a newer meshlens, or `meshlens migrate down --to %d --database-url %s` with the newer one",
			e.Have, e.Want, e.Want, e.URL)
	}
	return fmt.Sprintf("database schema version %d, this build needs %d: run `meshlens migrate up --database-url %s`", e.Have, e.Want, e.URL)
}

// Store is the PostgreSQL store.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger

	// schema holds the tables (the first in the search path that has
	// them); partitions are created in it.
	schema string
	ahead  int // days of partitions kept ahead of today

	mu   sync.Mutex
	days map[int64]bool // days (Unix day numbers) whose partitions exist

	opsMu sync.Mutex
	ops   map[string]struct{} // operations written (writeOperations), appendOpKey form
}

var _ store.Store = (*Store)(nil)

// Open connects, checks that the schema is the one this build knows, and
// creates the partitions of today and the next days.
func Open(ctx context.Context, o Options) (*Store, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pool, err := connect(ctx, o.URL)
	if err != nil {
		return nil, err
	}
	have, err := schemaVersion(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if want := migrations.Latest(); have != want {
		pool.Close()
		return nil, &SchemaError{Have: have, Want: want, URL: Redact(o.URL)}
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = 'spans'::regclass`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: find the spans table: %w", err)
	}
	ahead := o.PartitionsAhead
	if ahead <= 0 {
		ahead = DefaultPartitionsAhead
	}
	s := &Store{pool: pool, logger: logger, schema: schema, ahead: ahead, days: map[int64]bool{}}
	if err := s.ensureDays(ctx, nil); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	return s, nil
}

func connect(ctx context.Context, u string) (*pgxpool.Pool, error) {
	if u == "" {
		return nil, errors.New("postgres store: database URL is empty")
	}
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		// pgx's parse errors can quote the URL, password included.
		return nil, fmt.Errorf("postgres store: database URL %s does not parse", Redact(u))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: connect to %s: %w", Redact(u), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: connect to %s: %w", Redact(u), err)
	}
	return pool, nil
}

// Redact returns u with any password replaced by "xxxxx".
func Redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		if err != nil {
			return "(unparsable URL)"
		}
		return u
	}
	return p.Redacted()
}

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// isUndefinedTable reports whether err is PostgreSQL's undefined_table.
func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}

// isNoPartition reports whether err says a row fits no partition (a day
// dropped by another collector's retention after this one cached it).
func isNoPartition(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23514"
}

// tx runs fn in a transaction.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}
