// Package postgres is the PostgreSQL store, through pgx.
package postgres

import (
	"context"
	"errors"
	"log/slog"

	"github.com/meshlens/meshlens/store"
)

// Options configure the PostgreSQL store.
type Options struct {
	URL    string
	Logger *slog.Logger
}

// Open connects to PostgreSQL.
func Open(ctx context.Context, o Options) (store.Store, error) {
	return nil, errors.New("postgres store: not available in this build yet")
}
