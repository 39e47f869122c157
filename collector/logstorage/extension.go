package logstorage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
)

type logStorage struct {
	cfg    *Config
	logger *zap.Logger

	mu      sync.Mutex
	clients map[string]*client // open clients by directory name
}

var _ storage.Extension = (*logStorage)(nil)

func newExtension(set extension.Settings, cfg *Config) *logStorage {
	return &logStorage{cfg: cfg, logger: set.Logger, clients: map[string]*client{}}
}

func (e *logStorage) Start(context.Context, component.Host) error {
	if e.cfg.CreateDirectory {
		if err := os.MkdirAll(e.cfg.Directory, 0o750); err != nil {
			return fmt.Errorf("meshlens_log_storage: directory: %w", err)
		}
	}
	info, err := os.Stat(e.cfg.Directory)
	if err != nil {
		return fmt.Errorf("meshlens_log_storage: directory: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("meshlens_log_storage: directory: %s is not a directory", e.cfg.Directory)
	}
	return nil
}

// Shutdown closes the clients their owners left open.
func (e *logStorage) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	clients := make([]*client, 0, len(e.clients))
	for _, c := range e.clients {
		clients = append(clients, c)
	}
	e.mu.Unlock()
	var errs []error
	for _, c := range clients {
		errs = append(errs, c.Close(ctx))
	}
	return errors.Join(errs...)
}

// GetClient opens the log of one component and storage name, in a
// directory named as file_storage names its database file, plus ".log".
func (e *logStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	base := clientBase(kind, id, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, open := e.clients[base]; open {
		return nil, fmt.Errorf("meshlens_log_storage: %s is open already", base)
	}
	dir := filepath.Join(e.cfg.Directory, base+".log")
	opts := logOptions{segmentSize: e.cfg.SegmentSize, cacheSize: e.cfg.CacheSize, fsync: e.cfg.FSync}
	logger := e.logger.With(zap.String("client", base))
	if e.cfg.ImportFileStorage {
		if err := importFileStorage(filepath.Join(e.cfg.Directory, base), dir, opts, logger); err != nil {
			return nil, fmt.Errorf("meshlens_log_storage: %w", err)
		}
	}
	l, err := openLog(dir, opts, logger)
	if err != nil {
		return nil, fmt.Errorf("meshlens_log_storage: %w", err)
	}
	c := &client{log: l, release: func() {
		e.mu.Lock()
		delete(e.clients, base)
		e.mu.Unlock()
	}}
	e.clients[base] = c
	return c, nil
}

// clientBase names a client's directory (without ".log"), as file_storage
// names its database file.
func clientBase(kind component.Kind, id component.ID, name string) string {
	raw := fmt.Sprintf("%s_%s_%s", kindString(kind), id.Type(), id.Name())
	if name != "" {
		raw += "_" + name
	}
	return sanitize(raw)
}

// Peek calls fn with every value the client of kind, id and name holds,
// before that client is opened: an exporter counts the backlog its sending
// queue left at its last stop with it. A client that is open already
// cannot be peeked at. A backlog still in a file_storage database to import
// is not seen.
func (e *logStorage) Peek(kind component.Kind, id component.ID, name string, fn func(key string, value []byte) error) error {
	base := clientBase(kind, id, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, open := e.clients[base]; open {
		return fmt.Errorf("meshlens_log_storage: %s is open already", base)
	}
	if err := peekLog(filepath.Join(e.cfg.Directory, base+".log"), e.logger.With(zap.String("client", base)), fn); err != nil {
		return fmt.Errorf("meshlens_log_storage: %w", err)
	}
	return nil
}

type client struct {
	log     *log
	once    sync.Once
	release func()
}

var _ storage.Client = (*client)(nil)

func (c *client) Get(_ context.Context, key string) ([]byte, error) {
	op := storage.GetOperation(key)
	err := c.log.batch([]*storage.Operation{op})
	return op.Value, err
}

func (c *client) Set(_ context.Context, key string, value []byte) error {
	return c.log.batch([]*storage.Operation{storage.SetOperation(key, value)})
}

func (c *client) Delete(_ context.Context, key string) error {
	return c.log.batch([]*storage.Operation{storage.DeleteOperation(key)})
}

func (c *client) Batch(_ context.Context, ops ...*storage.Operation) error {
	return c.log.batch(ops)
}

func (c *client) Close(context.Context) error {
	var err error
	c.once.Do(func() {
		err = c.log.close()
		c.release()
	})
	return err
}

// importFileStorage moves the data of file_storage's database at dbPath
// into a new log at dir, when there is such a database and no log yet. The
// log is built aside and renamed into place, then the database renamed to
// dbPath.imported: a crash in between leaves either the database alone or
// the log complete.
func importFileStorage(dbPath, dir string, opts logOptions, logger *zap.Logger) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if _, err := os.Stat(dbPath); err != nil {
		return nil
	}
	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("import %s: %w", dbPath, err)
	}
	var ops []*storage.Operation
	err = db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("default"))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			ops = append(ops, storage.SetOperation(string(k), append([]byte(nil), v...)))
			return nil
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", dbPath, err)
	}
	tmp := dir + ".import"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	l, err := openLog(tmp, opts, logger)
	if err != nil {
		return err
	}
	if len(ops) > 0 {
		err = l.batch(ops)
	}
	if cerr := l.close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", dbPath, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	logger.Info("meshlens_log_storage: imported the file_storage queue", zap.String("from", dbPath), zap.Int("keys", len(ops)))
	return os.Rename(dbPath, dbPath+".imported")
}

func kindString(k component.Kind) string {
	switch k {
	case component.KindReceiver:
		return "receiver"
	case component.KindProcessor:
		return "processor"
	case component.KindExporter:
		return "exporter"
	case component.KindExtension:
		return "extension"
	case component.KindConnector:
		return "connector"
	default:
		return "other"
	}
}

// sanitize is file_storage's: every character but letters, digits, '.',
// '-' and '_' becomes '~' and its code point in hex, so both name a
// component's data alike.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, "~%04X", r)
		}
	}
	return b.String()
}
