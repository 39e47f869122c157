package dashboards

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

func TestServicesFromStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.ObserveServices(ctx, []store.Service{
		{Name: "payments", FirstSeen: now, LastSeen: now, HasProxy: true},
		{Name: "ledger", FirstSeen: now, LastSeen: now},
		{Name: "checkout", FirstSeen: now, LastSeen: now, HasProxy: true},
	}); err != nil {
		t.Fatal(err)
	}
	got, err := ServicesFromStore(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{{"checkout", true}, {"ledger", false}, {"payments", true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ServicesFromStore = %v, want %v", got, want)
	}
	if _, err := ServicesFromPrometheus(ctx, nil, "prometheus:9090"); err == nil {
		t.Fatal("a Prometheus URL without scheme was accepted")
	}
}

// TestServiceHook: the hook the collector calls for a new service writes
// the dashboards of every stored service plus the new one.
func TestServiceHook(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	if err := st.ObserveServices(ctx, []store.Service{{Name: "checkout", FirstSeen: now, LastSeen: now, HasProxy: true}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.ServiceHook(st)(ctx, store.Service{Name: "payments", HasProxy: true})
	files, _ := filepath.Glob(filepath.Join(dir, DashboardsDir, "*.json"))
	for i := range files {
		files[i] = filepath.Base(files[i])
	}
	want := []string{"meshlens-overview.json", "meshlens-slo.json", "meshlens-svc-checkout.json", "meshlens-svc-payments.json"}
	if !reflect.DeepEqual(files, want) {
		t.Fatalf("hook wrote %v, want %v", files, want)
	}
}
