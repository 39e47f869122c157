package alerts

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/meshlens/meshlens/slo"
)

func TestRegenerateWritesRemovesAndReloads(t *testing.T) {
	var reloads atomic.Int32
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/-/reload" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		reloads.Add(1)
	}))
	defer prom.Close()
	dir := t.TempDir()
	r := &Regenerator{Dir: dir, PrometheusURL: prom.URL}
	ctx := context.Background()

	set, changed, err := r.Regenerate(ctx, []slo.ServiceHistory{{Service: "web", HasProxy: true}})
	if err != nil || !changed || len(set) != 2 || reloads.Load() != 1 {
		t.Fatalf("first: set %d changed %v err %v reloads %d", len(set), changed, err, reloads.Load())
	}
	// Same services: nothing written, no reload.
	if _, changed, err := r.Regenerate(ctx, []slo.ServiceHistory{{Service: "web", HasProxy: true}}); err != nil || changed || reloads.Load() != 1 {
		t.Fatalf("again: changed %v err %v reloads %d", changed, err, reloads.Load())
	}
	// A new service appears.
	if _, changed, err := r.Regenerate(ctx, []slo.ServiceHistory{{Service: "web", HasProxy: true}, {Service: "api", HasProxy: true}}); err != nil || !changed || reloads.Load() != 2 {
		t.Fatalf("new service: changed %v err %v reloads %d", changed, err, reloads.Load())
	}
	if _, err := os.Stat(filepath.Join(dir, "slo-api.rules.yml")); err != nil {
		t.Fatal(err)
	}
	// A service disabled by configuration loses its files.
	r.Defaults.Services = map[string]slo.ServiceOverrideConfig{"web": {Disabled: true}}
	if _, changed, err := r.Regenerate(ctx, []slo.ServiceHistory{{Service: "web", HasProxy: true}, {Service: "api", HasProxy: true}}); err != nil || !changed {
		t.Fatalf("disable: changed %v err %v", changed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "slo-web.rules.yml")); !os.IsNotExist(err) {
		t.Fatalf("stale file kept: %v", err)
	}
	// A Prometheus without the lifecycle API is an error.
	prom.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Lifecycle API is not enabled.", http.StatusForbidden)
	})
	if _, _, err := r.Regenerate(ctx, []slo.ServiceHistory{{Service: "db", HasProxy: true}}); err == nil {
		t.Fatal("reload refused, but no error")
	}
}
