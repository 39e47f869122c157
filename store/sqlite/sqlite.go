// Package sqlite is the embedded store: a pure-Go SQLite database (no cgo) in
// a data directory, in WAL mode. It is the default when no database URL is
// given. Open creates or migrates the schema itself, since nobody else
// manages an embedded database.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/meshlens/meshlens/store"
)

// FileName is the database file inside the data directory.
const FileName = "meshlens.db"

// Store is the SQLite store.
type Store struct {
	db     *sql.DB
	logger *slog.Logger
	// writeMu serialises writers: SQLite has one writer at a time, and
	// queueing here is cheaper than SQLITE_BUSY retries.
	writeMu sync.Mutex
}

var _ store.Store = (*Store)(nil)

// Open opens (creating when missing) the database in dataDir and brings its
// schema up to date.
func Open(ctx context.Context, dataDir string, logger *slog.Logger) (*Store, error) {
	if dataDir == "" {
		return nil, errors.New("sqlite store: data directory is empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite store: create data directory: %w", err)
	}
	path := filepath.Join(dataDir, FileName)
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	s := &Store{db: db, logger: logger}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite store: %s: %w", path, err)
	}
	return s, nil
}

// SchemaVersion is the schema version this build writes.
func SchemaVersion() int { return len(schema) - 1 }

func (s *Store) migrate(ctx context.Context) error {
	var have int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > SchemaVersion() {
		return fmt.Errorf("schema version %d is newer than this build knows (%d); use a newer meshlens", have, SchemaVersion())
	}
	for v := have + 1; v <= SchemaVersion(); v++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range schema[v] {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migrate to %d: %w", v, err)
				}
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v))
			return err
		})
		if err != nil {
			return err
		}
		s.logger.Info("sqlite store schema migrated", "version", v)
	}
	return nil
}

// tx runs fn in a write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }
