package dashboards

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/meshlens/meshlens/slo"
	"github.com/meshlens/meshlens/store"
)

// WriteDir writes the dashboards into dir/dashboards and Grafana's
// provisioning files into dir/provisioning. A file whose content is already
// what it would be is left alone (so Grafana does not reload it); a changed
// one is replaced atomically. It returns the paths it wrote, relative to dir.
func WriteDir(dir string, dashboards []Dashboard, prov ProvisioningConfig) ([]string, error) {
	if dir == "" {
		return nil, errors.New("out: no output folder given")
	}
	files, err := provisioningFiles(dir, prov)
	if err != nil {
		return nil, err
	}
	for _, d := range dashboards {
		b, err := d.JSON()
		if err != nil {
			return nil, err
		}
		files[filepath.Join(DashboardsDir, d.File)] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var written []string
	for _, n := range names {
		changed, err := writeIfChanged(filepath.Join(dir, n), files[n])
		if err != nil {
			return written, err
		}
		if changed {
			written = append(written, n)
		}
	}
	return written, nil
}

// writeIfChanged replaces path with b through a temporary file and a rename,
// unless path already holds b.
func writeIfChanged(path string, b []byte) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
		return false, fmt.Errorf("write %s: %w", path, werr)
	}
	return true, nil
}

// WriterConfig configures a Writer. At least one of Dir and Grafana.URL is
// set.
type WriterConfig struct {
	// Dir is the output folder (dashboards and provisioning files).
	Dir          string
	Provisioning ProvisioningConfig
	// Grafana, when its URL is set, receives every dashboard that changed.
	Grafana GrafanaConfig
	// SLOs and Defaults are used by ServiceHook (see Input).
	SLOs     []slo.SLO
	Defaults slo.DefaultsConfig
}

// Validate checks the configuration, naming the field at fault.
func (c WriterConfig) Validate() error {
	if c.Dir == "" && c.Grafana.URL == "" {
		return errors.New("dir: set an output folder, grafana.url, or both")
	}
	if err := c.Provisioning.Validate(); err != nil {
		return fmt.Errorf("provisioning.%w", err)
	}
	if c.Grafana.URL != "" {
		if err := c.Grafana.Validate(); err != nil {
			return fmt.Errorf("grafana.%w", err)
		}
	}
	return nil
}

// Writer keeps the dashboards of a running collector up to date: Update is
// called with the discovered services whenever they change (a new service
// appears), and writes and pushes only what changed. It is safe for
// concurrent use.
type Writer struct {
	cfg     WriterConfig
	grafana *GrafanaClient
	logger  *slog.Logger

	mu     sync.Mutex
	pushed map[string][32]byte // dashboard UID → hash of the JSON last pushed
}

// NewWriter returns a Writer for cfg.
func NewWriter(cfg WriterConfig, logger *slog.Logger) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{cfg: cfg, logger: logger, pushed: map[string][32]byte{}}
	if cfg.Grafana.URL != "" {
		c, err := NewGrafanaClient(cfg.Grafana)
		if err != nil {
			return nil, err
		}
		w.grafana = c
	}
	return w, nil
}

// ServiceHook returns a function for the collector's new-service hooks
// (analyticsexporter.WithOnNewService): it lists the services in st, adds
// the new one (which may not be stored yet), and updates the dashboards
// with the configured SLOs. A failure is logged, since a hook has no caller
// to return it to; the next new service retries everything.
func (w *Writer) ServiceHook(st store.Store) func(ctx context.Context, s store.Service) {
	return func(ctx context.Context, s store.Service) {
		list, err := ServicesFromStore(ctx, st)
		if err != nil {
			w.logger.Warn("dashboards: cannot list services", "service", s.Name, "err", err)
			return
		}
		found := false
		for i := range list {
			if list[i].Name == s.Name {
				list[i].HasProxy = list[i].HasProxy || s.HasProxy
				found = true
			}
		}
		if !found {
			list = append(list, Service{Name: s.Name, HasProxy: s.HasProxy})
		}
		if _, err := w.Update(ctx, Input{Services: list, SLOs: w.cfg.SLOs, Defaults: w.cfg.Defaults}); err != nil {
			w.logger.Warn("dashboards: update after a new service failed", "service", s.Name, "err", err)
		}
	}
}

// Update generates the dashboards for in, writes the files that changed and
// pushes the dashboards that changed since the last successful push. It
// returns the UIDs of the dashboards that were written or pushed.
func (w *Writer) Update(ctx context.Context, in Input) ([]string, error) {
	ds, err := Generate(in)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := map[string]bool{}
	if w.cfg.Dir != "" {
		files, err := WriteDir(w.cfg.Dir, ds, w.cfg.Provisioning)
		if err != nil {
			return nil, err
		}
		byFile := map[string]string{}
		for _, d := range ds {
			byFile[filepath.Join(DashboardsDir, d.File)] = d.UID
		}
		for _, f := range files {
			if uid, ok := byFile[f]; ok {
				changed[uid] = true
			}
		}
	}
	if w.grafana != nil {
		if err := w.grafana.EnsureFolder(ctx); err != nil {
			return nil, err
		}
		for _, d := range ds {
			b, err := d.JSON()
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(b)
			if w.pushed[d.UID] == sum {
				continue
			}
			if err := w.grafana.Push(ctx, d); err != nil {
				return nil, err
			}
			w.pushed[d.UID] = sum
			changed[d.UID] = true
		}
	}
	uids := make([]string, 0, len(changed))
	for u := range changed {
		uids = append(uids, u)
	}
	sort.Strings(uids)
	if len(uids) > 0 {
		w.logger.Info("dashboards updated", "count", len(uids), "services", len(in.Services))
	}
	return uids, nil
}
