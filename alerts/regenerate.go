package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshlens/meshlens/slo"
)

// Regenerator rewrites the alert files when the set of services changes,
// and asks Prometheus to reload them. The collector calls Regenerate when
// it discovers a service. Safe for concurrent use.
type Regenerator struct {
	// Dir is the output directory (Prometheus's rule_files glob points at
	// Dir/slo-*.rules.yml).
	Dir    string
	Config Config
	// Defaults are the default SLOs of discovered services; Explicit are
	// the SLOs from OpenSLO files, which replace defaults.
	Defaults slo.DefaultsConfig
	Explicit []slo.SLO
	// PrometheusURL, when set, gets a POST to /-/reload after a change
	// (Prometheus must run with --web.enable-lifecycle).
	PrometheusURL string
	Client        *http.Client
	Logger        *slog.Logger

	mu sync.Mutex
}

// Regenerate generates the files for the services in history, writes those
// that changed, removes generated files of services no longer present, and
// reloads Prometheus when anything changed. It returns the SLO set in force
// (slo.Thresholds of it are the thresholds the collector must count).
func (r *Regenerator) Regenerate(ctx context.Context, history []slo.ServiceHistory) ([]slo.SLO, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := slo.Combine(slo.DefaultSLOs(slo.Propose(r.Defaults, history)), r.Explicit)
	files, err := Generate(set, r.Config)
	if err != nil {
		return set, false, err
	}
	changed, err := WriteDir(r.Dir, files)
	if err != nil {
		return set, changed, err
	}
	removed, err := removeStale(r.Dir, files)
	if err != nil {
		return set, changed, err
	}
	changed = changed || removed
	if changed && r.PrometheusURL != "" {
		if err := Reload(ctx, r.Client, r.PrometheusURL); err != nil {
			return set, changed, err
		}
	}
	if changed && r.Logger != nil {
		r.Logger.Info("alert rules regenerated", "dir", r.Dir, "services", len(slo.Services(set)), "slos", len(set))
	}
	return set, changed, nil
}

// removeStale deletes generated per-service files (slo-*.rules.yml,
// slo-*.test.yml) that are not in files.
func removeStale(dir string, files []File) (bool, error) {
	keep := map[string]bool{}
	for _, f := range files {
		keep[f.Name] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("list %s: %w", dir, err)
	}
	removed := false
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || keep[n] || !strings.HasPrefix(n, "slo-") || !(strings.HasSuffix(n, ".rules.yml") || strings.HasSuffix(n, ".test.yml")) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			return removed, fmt.Errorf("remove stale %s: %w", n, err)
		}
		removed = true
	}
	return removed, nil
}

// Reload asks the Prometheus at baseURL to reload its configuration and
// rules (POST /-/reload).
func Reload(ctx context.Context, client *http.Client, baseURL string) error {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(baseURL, "/")+"/-/reload", nil)
	if err != nil {
		return fmt.Errorf("reload Prometheus: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reload Prometheus: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reload Prometheus at %s: %s (is --web.enable-lifecycle set?)", baseURL, resp.Status)
	}
	return nil
}
