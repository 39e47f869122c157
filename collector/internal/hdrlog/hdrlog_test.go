package hdrlog

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

func enc(t *testing.T, vals ...int64) string {
	t.Helper()
	h := hdr.New()
	for _, v := range vals {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRoundTrip: every hop of a decoded batch comes back from the logs with
// its instance, interval, key and histograms.
func TestRoundTrip(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	keys := []model.HopKey{
		{Service: "web", Direction: model.Outbound, Peer: "users", Route: "/u", Method: "GET", StatusClass: "2xx"},
		{Service: "web", Direction: model.Inbound, Peer: "unknown", Route: "/", Method: "POST", StatusClass: "5xx"},
	}
	b := model.HistogramBatch{Instance: "i-7", Service: "web", Intervals: []model.Interval{
		{Seq: 3, StartUnixMs: start.UnixMilli(), EndUnixMs: start.Add(10 * time.Second).UnixMilli(),
			Hops: []model.HopHistograms{{HopKey: keys[0], Total: enc(t, 1, 2, 3), Upstream: enc(t, 1), Overhead: enc(t, 1)}}},
		{Seq: 4, StartUnixMs: start.Add(10 * time.Second).UnixMilli(), EndUnixMs: start.Add(20 * time.Second).UnixMilli(),
			Hops: []model.HopHistograms{{HopKey: keys[1], Total: enc(t, 5000), Upstream: enc(t, 4000), Overhead: enc(t, 1000)}}},
	}}
	raw, _ := json.Marshal(b)
	d, err := hdr.DecodeBatch(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ld, err := FromBatch(d)
	if err != nil {
		t.Fatal(err)
	}
	var got []Hop
	if err := Each(ld, func(h Hop) error { got = append(got, h); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d hops back, want 2", len(got))
	}
	for i, h := range got {
		if h.Instance != "i-7" || h.Service != "web" || h.Seq != uint64(3+i) || h.Key != keys[i] ||
			!h.Start.Equal(start.Add(time.Duration(i)*10*time.Second)) || !h.End.Equal(start.Add(time.Duration(i+1)*10*time.Second)) {
			t.Errorf("hop %d: %+v", i, h)
		}
		total, err := hdr.Decode(h.Total)
		if err != nil || total.TotalCount() != h.Count {
			t.Errorf("hop %d: total %v (%v), count %d", i, total, err, h.Count)
		}
	}
}

func TestEachMalformed(t *testing.T) {
	// Records of other scopes are not histograms and are skipped.
	other := plog.NewLogs()
	other.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	if err := Each(other, func(Hop) error { t.Error("called for a foreign record"); return nil }); err != nil {
		t.Errorf("foreign scope: %v", err)
	}
	for name, mutate := range map[string]func(plog.LogRecord){
		"no seq":       func(r plog.LogRecord) { r.Attributes().Remove(AttrSeq) },
		"no end":       func(r plog.LogRecord) { r.Attributes().Remove(AttrEnd) },
		"body string":  func(r plog.LogRecord) { r.Body().SetStr("x") },
		"bad key":      func(r plog.LogRecord) { r.Attributes().PutStr(AttrDirection, "sideways") },
		"no histogram": func(r plog.LogRecord) { r.Body().Map().Remove("total") },
	} {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(AttrService, "web")
		rl.Resource().Attributes().PutStr(AttrInstance, "i")
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(ScopeName)
		r := sl.LogRecords().AppendEmpty()
		r.Attributes().PutInt(AttrSeq, 1)
		r.Attributes().PutInt(AttrEnd, 1)
		r.Attributes().PutStr(AttrHopService, "web")
		r.Attributes().PutStr(AttrDirection, "inbound")
		r.Attributes().PutStr(AttrPeer, "unknown")
		r.Attributes().PutStr(AttrRoute, "/")
		r.Attributes().PutStr(AttrMethod, "GET")
		r.Attributes().PutStr(AttrStatusClass, "2xx")
		r.Body().SetEmptyMap().PutStr("total", "HISTx")
		if err := Each(ld, func(Hop) error { return nil }); err != nil {
			t.Fatalf("well-formed record: %v", err)
		}
		mutate(r)
		if err := Each(ld, func(Hop) error { return nil }); !errors.Is(err, ErrNotHistogram) {
			t.Errorf("%s: %v, want ErrNotHistogram", name, err)
		}
	}
}

// TestDecoded: the histograms carried with a batch are found by encoding
// (the very ones decoded), anything else is decoded, and a context without
// them decodes everything.
func TestDecoded(t *testing.T) {
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond).UTC()
	key := model.HopKey{Service: "web", Direction: model.Outbound, Peer: "users", Route: "/u", Method: "GET", StatusClass: "2xx"}
	b := model.HistogramBatch{Instance: "i-7", Service: "web", Intervals: []model.Interval{
		{Seq: 3, StartUnixMs: start.UnixMilli(), EndUnixMs: start.Add(10 * time.Second).UnixMilli(),
			Hops: []model.HopHistograms{{HopKey: key, Total: enc(t, 1, 2, 3), Upstream: enc(t, 1), Overhead: enc(t, 2)}}},
	}}
	raw, _ := json.Marshal(b)
	d, err := hdr.DecodeBatch(raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithDecoded(context.Background(), d)
	dec := DecodedFrom(ctx)
	hop := d.Intervals[0].Hops[0]
	for i, want := range []*hdr.Packed{hop.Total, hop.Upstream, hop.Overhead} {
		if got, err := dec.Packed(hop.Encoded[i]); err != nil || got != want {
			t.Errorf("histogram %d: %p (%v), want the batch's %p", i, got, err, want)
		}
	}
	other := enc(t, 7, 8)
	for _, d := range []*Decoded{dec, DecodedFrom(context.Background())} {
		if p, err := d.Packed(other); err != nil || p.TotalCount() != 2 {
			t.Errorf("an encoding not carried: %v, %v", p, err)
		}
		if _, err := d.Packed("HISTnot"); !errors.Is(err, hdr.ErrCorrupt) {
			t.Errorf("a corrupt encoding: %v", err)
		}
	}
}
