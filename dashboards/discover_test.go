package dashboards

import (
	"context"
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
