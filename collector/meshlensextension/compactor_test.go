package meshlensextension_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

// TestCompactorBuildsClosedPeriods: rollups stored before the collector
// starts (a restart) are compacted by the extension's background compactor,
// through the retention wrapper the extension's store is, without a query;
// Shutdown stops it (goleak in TestMain checks nothing is left running).
func TestCompactorBuildsClosedPeriods(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lite, err := sqlite.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := hdr.New()
	hdr.Record(h, 1234)
	enc, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)
	var rs []store.Rollup
	for m := from; m.Before(from.Add(20 * time.Minute)); m = m.Add(time.Minute) {
		rs = append(rs, store.Rollup{Minute: m, Source: "p", Count: 1, Total: enc, Upstream: enc, Overhead: enc,
			Key: model.HopKey{Service: "api", Direction: model.Inbound, Peer: "web", Route: "/", Method: "GET", StatusClass: "2xx"}})
	}
	if err := lite.WriteRollups(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := lite.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := defaultConfig()
	cfg.DataDir = dir
	cfg.Metrics.Endpoint = testhost.FreeAddr(t)
	cfg.API.Endpoint = testhost.FreeAddr(t)
	ext, err := meshlensextension.NewFactory().Create(ctx,
		extension.Settings{ID: testhost.ID, TelemetrySettings: componenttest.NewNopTelemetrySettings()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ext.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := ext.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	cs, _, ok := store.CompactionsOf(ext.(*meshlensextension.Extension).Store())
	if !ok {
		t.Fatal("the extension's store keeps no compactions (or hides them)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := cs.CurrentCompactions(ctx, store.CompactionQuery{Service: "api", Period: time.Minute, From: from, To: from.Add(20 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2*20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d minute compactions after 30s, want %d", len(got), 2*20)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
