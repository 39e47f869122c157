package hdr

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/meshlens/meshlens/model"
)

var batchNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func encoded(t testing.TB, values ...int64) string {
	h := New()
	for _, v := range values {
		Record(h, v)
	}
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodHop(t testing.TB) model.HopHistograms {
	return model.HopHistograms{
		HopKey: model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "payments",
			Route: "/pay", Method: "POST", StatusClass: "2xx"},
		Total:    encoded(t, 1200, 1500, 90000),
		Upstream: encoded(t, 1100, 1400, 89000),
		Overhead: encoded(t, 100, 100, 1000),
	}
}

func goodBatch(t testing.TB) model.HistogramBatch {
	start := batchNow.Add(-20 * time.Second)
	return model.HistogramBatch{Instance: "i-1", Service: "checkout", Intervals: []model.Interval{{
		Seq: 7, StartUnixMs: start.UnixMilli(), EndUnixMs: start.Add(10 * time.Second).UnixMilli(),
		Hops: []model.HopHistograms{goodHop(t)},
	}}}
}

func marshal(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeBatchGood(t *testing.T) {
	d, err := DecodeBatch(marshal(t, goodBatch(t)), batchNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hops != 1 || len(d.Rejected) != 0 || d.Intervals[0].Seq != 7 {
		t.Fatalf("got %+v", d)
	}
	if got := d.Intervals[0].Hops[0].Total.TotalCount(); got != 3 {
		t.Fatalf("total count %d, want 3", got)
	}
}

func TestDecodeBatchRejectsWhole(t *testing.T) {
	f := func(name string, body []byte, want string) {
		t.Helper()
		_, err := DecodeBatch(body, batchNow)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", name, err, want)
		}
	}
	f("not json", []byte("{"), "bad histogram batch")
	f("unknown field", []byte(`{"instance":"i","service":"s","intervals":[],"extra":1}`), "unknown field")
	f("no instance", []byte(`{"service":"s","intervals":[{}]}`), "instance")
	f("no intervals", []byte(`{"instance":"i","service":"s","intervals":[]}`), "intervals")
	f("trailing", append(marshal(t, goodBatch(t)), []byte("{}")...), "after the JSON")
	f("oversized", make([]byte, model.MaxHistogramBatchBytes+1), "limit")
}

func TestDecodeBatchTakesInPart(t *testing.T) {
	b := goodBatch(t)
	bad := goodHop(t)
	bad.Total = bad.Total[:len(bad.Total)/2]
	noService := goodHop(t)
	noService.Service = ""
	future := b.Intervals[0]
	future.Seq = 8
	future.StartUnixMs = batchNow.Add(time.Hour).UnixMilli()
	future.EndUnixMs = batchNow.Add(time.Hour + 10*time.Second).UnixMilli()
	b.Intervals[0].Hops = append(b.Intervals[0].Hops, bad, noService)
	b.Intervals = append(b.Intervals, future)

	d, err := DecodeBatch(marshal(t, b), batchNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hops != 1 {
		t.Errorf("took %d hops, want the 1 good one", d.Hops)
	}
	var fields []string
	for _, r := range d.Rejected {
		fields = append(fields, r.Field)
	}
	want := []string{"intervals[0].hops[1].total", "intervals[0].hops[2].service", "intervals[1]"}
	if strings.Join(fields, ",") != strings.Join(want, ",") {
		t.Errorf("rejected %v, want %v", fields, want)
	}
}

func TestDecodeBatchValueOutOfRange(t *testing.T) {
	b := goodBatch(t)
	h := newWide()
	if err := h.RecordValue(2 * model.HighestTrackableMicros); err != nil {
		t.Fatal(err)
	}
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	b.Intervals[0].Hops[0].Total = s
	d, err := DecodeBatch(marshal(t, b), batchNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hops != 0 || len(d.Rejected) != 1 || !strings.Contains(d.Rejected[0].Reason, "out of range") {
		t.Fatalf("got %+v", d.Rejected)
	}
}

// TestDecodeBatchRangeEdge: a value equivalent to the limit is taken (Max
// may lie up to a bucket above it), a value in the next bucket is not, in
// the meshlens geometry and in a wider one.
func TestDecodeBatchRangeEdge(t *testing.T) {
	limit := int64(model.HighestTrackableMicros)
	top := newWide() // Max of a histogram holding only the limit: its bucket's top
	if err := top.RecordValue(limit); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		h     *Histogram
		value int64
		taken bool
	}{
		{"limit", New(), limit, true},
		{"wide limit", newWide(), limit, true},
		{"wide limit bucket top", newWide(), top.Max(), true},
		{"wide next bucket", newWide(), top.Max() + 1, false},
		{"wide far", newWide(), 3 * limit, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range []int64{100, 2_000, tc.value} {
				if err := tc.h.RecordValue(v); err != nil {
					t.Fatal(err)
				}
			}
			s, err := Encode(tc.h)
			if err != nil {
				t.Fatal(err)
			}
			b := goodBatch(t)
			b.Intervals[0].Hops[0].Upstream = s
			d, err := DecodeBatch(marshal(t, b), batchNow)
			if err != nil {
				t.Fatal(err)
			}
			if taken := d.Hops == 1; taken != tc.taken {
				t.Fatalf("taken %v, want %v (rejected %v)", taken, tc.taken, d.Rejected)
			}
			if !tc.taken && (len(d.Rejected) != 1 || d.Rejected[0].Field != "intervals[0].hops[0].upstream" ||
				!strings.Contains(d.Rejected[0].Reason, fmt.Sprintf("value %dµs out of range", tc.h.Max()))) {
				t.Fatalf("rejected %v", d.Rejected)
			}
		})
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add(marshal(f, goodBatch(f)))
	f.Add([]byte(`{"instance":"i","service":"s","intervals":[{"seq":1,"start_unix_ms":0,"end_unix_ms":1,"hops":[{}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := DecodeBatch(body, batchNow)
		if err != nil {
			return
		}
		for _, in := range d.Intervals {
			for _, h := range in.Hops {
				if h.Total == nil || h.Upstream == nil || h.Overhead == nil {
					t.Fatal("taken hop without histograms")
				}
				if err := h.Key.Validate(); err != nil {
					t.Fatalf("taken hop with invalid key: %v", err)
				}
			}
		}
	})
}

// newWide returns a histogram wider than the meshlens geometry, as another
// HdrHistogram implementation might send.
func newWide() *Histogram {
	return hdrhistogram.New(1, 4*model.HighestTrackableMicros, 3)
}

// TestDecodeBatchCountOverflow: a histogram whose bucket counts sum past
// int64 is rejected by name (the sparse decoder would otherwise saturate
// its total), and its hop with it.
func TestDecodeBatchCountOverflow(t *testing.T) {
	b := goodBatch(t)
	b.Intervals[0].Hops = append(b.Intervals[0].Hops, goodHop(t))
	b.Intervals[0].Hops[1].Overhead = rawEncoding(3, 1, model.HighestTrackableMicros, zz(math.MaxInt64/2, math.MaxInt64/2+2), nil)
	d, err := DecodeBatch(marshal(t, b), batchNow)
	if err != nil {
		t.Fatal(err)
	}
	if d.Hops != 1 || len(d.Rejected) != 1 || d.Rejected[0].Field != "intervals[0].hops[1].overhead" ||
		!strings.Contains(d.Rejected[0].Reason, "sum past 9223372036854775807") {
		t.Fatalf("took %d, rejected %v", d.Hops, d.Rejected)
	}
}
