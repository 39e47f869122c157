package slo

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

// HistoryFromStore merges a week of rollups exactly, across minutes and
// sources, and measures a service without a proxy through its callers.
func TestHistoryFromStore(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	rollupOf := func(minute time.Time, key model.HopKey, source string, micros ...int64) store.Rollup {
		h := hdr.New()
		for _, v := range micros {
			hdr.Record(h, v)
		}
		enc, err := hdr.Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		return store.Rollup{Minute: minute, Key: key, Source: source, Count: int64(len(micros)), Total: enc, Upstream: enc, Overhead: enc}
	}
	web := model.HopKey{Service: "web", Direction: model.Inbound, Peer: "unknown", Route: "/", Method: "GET", StatusClass: "2xx"}
	toDB := model.HopKey{Service: "web", Direction: model.Outbound, Peer: "db", Route: "/q", Method: "POST", StatusClass: "2xx"}
	// 1000 requests to web: 985 at 10ms, 15 at 180ms, split over two days
	// and two proxy instances; p99 is 180ms. An old rollup is out of range.
	var fast, slow []int64
	for i := 0; i < 985; i++ {
		fast = append(fast, 10_000)
	}
	for i := 0; i < 15; i++ {
		slow = append(slow, 180_000)
	}
	rs := []store.Rollup{
		rollupOf(now.Add(-48*time.Hour), web, "a", fast[:500]...),
		rollupOf(now.Add(-time.Hour), web, "b", append(fast[500:], slow...)...),
		rollupOf(now.Add(-30*24*time.Hour), web, "a", 5_000_000),
		rollupOf(now.Add(-time.Hour), toDB, "a", 2_000, 3_000, 4_000),
	}
	if err := st.WriteRollups(ctx, rs); err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveServices(ctx, []store.Service{
		{Name: "web", FirstSeen: now.Add(-72 * time.Hour), LastSeen: now, HasProxy: true},
		{Name: "db", FirstSeen: now.Add(-72 * time.Hour), LastSeen: now, HasProxy: false},
	}); err != nil {
		t.Fatal(err)
	}
	hs, err := HistoryFromStore(ctx, st, 7*24*time.Hour, 0.99, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ServiceHistory{}
	for _, h := range hs {
		got[h.Service] = h
	}
	w := got["web"]
	if w.Requests != 1000 || w.Quantile < 179*time.Millisecond || w.Quantile > 181*time.Millisecond || !w.HasProxy {
		t.Fatalf("web history %+v", w)
	}
	d := got["db"]
	if d.Requests != 3 || d.Quantile < 3990*time.Microsecond || d.Quantile > 4010*time.Microsecond || d.HasProxy {
		t.Fatalf("db history %+v", d)
	}
	// Status from the same rollups: web's last two days against a 99%
	// latency objective at 100ms (15 of 1000 slow) and its availability.
	lat := SLO{Name: "web-latency", Scope: Scope{Service: "web"}, Indicator: Latency, Threshold: 100 * time.Millisecond, Objective: 0.99, Window: DefaultWindow}
	r, ok, err := ErrorRatioFromStore(ctx, st, &lat, now.Add(-72*time.Hour), now)
	if err != nil || !ok || r != 0.015 {
		t.Fatalf("latency error ratio %v %v %v, want 0.015", r, ok, err)
	}
	if br := BurnRate(r, lat.Objective); br < 1.49 || br > 1.51 {
		t.Fatalf("burn rate %v", br)
	}
	lat.Threshold = 180 * time.Millisecond
	if r, _, _ := ErrorRatioFromStore(ctx, st, &lat, now.Add(-72*time.Hour), now); r != 0 {
		t.Fatalf("at the slow requests' own latency: ratio %v, want 0", r)
	}
	avail := SLO{Name: "web-availability", Scope: Scope{Service: "web"}, Indicator: Availability, Objective: 0.999, Window: DefaultWindow}
	if r, ok, err := ErrorRatioFromStore(ctx, st, &avail, now.Add(-72*time.Hour), now); err != nil || !ok || r != 0 {
		t.Fatalf("availability %v %v %v", r, ok, err)
	}
	if _, ok, _ := ErrorRatioFromStore(ctx, st, &avail, now.Add(-10*24*time.Hour), now.Add(-9*24*time.Hour)); ok {
		t.Fatal("a window without traffic has a ratio")
	}
	ps := Propose(DefaultsConfig{}, hs)
	if ps[1].SLOs[1].Threshold != 250*time.Millisecond || ps[0].SLOs[1].Threshold != 5*time.Millisecond || !ps[0].SLOs[0].Scope.ViaCallers {
		t.Fatalf("proposals %+v", ps)
	}
}
