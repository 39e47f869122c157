package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/open"
)

func TestDiscoveryGeneratorWritesRulesAndDashboards(t *testing.T) {
	ctx := context.Background()
	dataDir, out := t.TempDir(), t.TempDir()
	so := open.Options{DataDir: dataDir, Logger: slog.New(slog.DiscardHandler)}

	// A store that already knows "checkout", with an hour of latency.
	st, err := open.Open(ctx, so)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	if err := st.ObserveServices(ctx, []store.Service{{Name: "checkout", FirstSeen: now.Add(-time.Hour), LastSeen: now, HasProxy: true}}); err != nil {
		t.Fatal(err)
	}
	h := hdr.New()
	for i := range 1000 {
		hdr.Record(h, int64(1000+i*100)) // 1 ms .. 101 ms: p99 ≈ 100 ms
	}
	enc, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	key := model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "frontend", Route: "/pay", Method: "POST", StatusClass: "2xx"}
	if err := st.WriteRollups(ctx, []store.Rollup{{Minute: now.Add(-10 * time.Minute), Key: key, Source: "test",
		Count: h.TotalCount(), Total: enc, Upstream: enc, Overhead: enc}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	g, err := newDiscoveryGenerator(discoveryGeneratorConfig{Dir: out}, so, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.close()
	// "payments" is new: the hook hears of it before the store has it.
	g.hook()(ctx, store.Service{Name: "payments", HasProxy: true})

	for _, f := range []string{
		"alerts/slo-checkout.rules.yml", "alerts/slo-payments.rules.yml", "alerts/meshlens-alertmanager.yml",
		"dashboards/meshlens-overview.json", "dashboards/meshlens-svc-checkout.json", "dashboards/meshlens-svc-payments.json",
		"provisioning/datasources/meshlens.yaml",
	} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	rules, err := os.ReadFile(filepath.Join(out, "alerts/slo-checkout.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// checkout's latency SLO is proposed from its history (p99 ≈ 100 ms,
	// rounded up to a readable value): a threshold the collector counts by
	// default, so the SLI has data with no configuration.
	if !strings.Contains(string(rules), `threshold="0.1"`) && !strings.Contains(string(rules), `threshold="0.25"`) {
		t.Errorf("checkout rules use no default-counted threshold:\n%s", rules)
	}
}

func TestDiscoveryGeneratorThresholds(t *testing.T) {
	g := &discoveryGenerator{}
	got := g.thresholds()
	if len(got) != 16 || got[0] != 0.001 || got[len(got)-1] != 60 {
		t.Fatalf("default thresholds %v", got)
	}
	if s := thresholdSet([]float64{0.001, 0.25, 1}); s != "[0.001, 0.25, 1]" {
		t.Fatalf("thresholdSet = %q", s)
	}
}
