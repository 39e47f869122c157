// Package open opens the store the configuration asks for: PostgreSQL when a
// database URL is given, otherwise the embedded SQLite store in a data
// directory. With a retention set, the opened store drops data older than
// the retention in the background (whole days at a time).
package open

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
	"github.com/meshlens/meshlens/store/spanrows"
	"github.com/meshlens/meshlens/store/sqlite"
)

// Options say which store to open.
type Options struct {
	// DataDir is the embedded SQLite store's directory, used when
	// DatabaseURL is empty.
	DataDir string
	// DatabaseURL is a PostgreSQL URL (postgres://user@host:port/db). The
	// schema must be migrated (meshlens migrate up).
	DatabaseURL string
	// Retention is how long spans and rollups are kept; 0 keeps them
	// forever.
	Retention time.Duration
	Logger    *slog.Logger
}

// RetentionInterval is how often the retention is applied.
const RetentionInterval = time.Hour

// Open opens the store.
func Open(ctx context.Context, o Options) (store.Store, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.Retention < 0 {
		return nil, fmt.Errorf("retention %v: must not be negative", o.Retention)
	}
	var st store.Store
	switch {
	case o.DatabaseURL != "":
		pg, err := postgres.Open(ctx, postgres.Options{URL: o.DatabaseURL, Logger: logger})
		if err != nil {
			return nil, err
		}
		st = pg
	case o.DataDir != "":
		lite, err := sqlite.Open(ctx, o.DataDir, logger)
		if err != nil {
			return nil, err
		}
		st = lite
	default:
		return nil, errors.New("open store: neither a data directory nor a database URL is set")
	}
	if o.Retention == 0 {
		return st, nil
	}
	return startRetention(st, o.Retention, RetentionInterval, logger), nil
}

// retained is a store whose old data a background loop drops.
type retained struct {
	store.Store
	stop     context.CancelFunc
	done     sync.WaitGroup
	stopOnce sync.Once
}

func startRetention(st store.Store, keep, every time.Duration, logger *slog.Logger) *retained {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &retained{Store: st, stop: cancel}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			// Whole days, so that PostgreSQL drops whole partitions and
			// never deletes row by row.
			cutoff := time.Now().Add(-keep).UTC().Truncate(24 * time.Hour)
			if err := st.DropBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
				logger.Warn("retention: drop old data", "before", cutoff, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return r
}

// WriteSpanRows passes rows on (spanrows.Writer), so that the store under
// the retention loop still takes them as they are.
func (r *retained) WriteSpanRows(ctx context.Context, b spanrows.Batch) error {
	return spanrows.Write(ctx, r.Store, b)
}

// Close stops the retention loop and closes the store.
func (r *retained) Close() error {
	r.stopOnce.Do(func() {
		r.stop()
		r.done.Wait()
	})
	return r.Store.Close()
}
