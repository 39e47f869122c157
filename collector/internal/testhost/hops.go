package testhost

import (
	"encoding/json"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// Encoded records values (µs) into a meshlens histogram and encodes it.
func Encoded(t testing.TB, values ...int64) string {
	t.Helper()
	h := hdr.New()
	for _, v := range values {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Hop is a hop whose total latencies are values (µs), upstream the same
// values and overhead 10 µs per request.
func Hop(t testing.TB, key model.HopKey, values ...int64) model.HopHistograms {
	t.Helper()
	over := make([]int64, len(values))
	for i := range over {
		over[i] = 10
	}
	return model.HopHistograms{HopKey: key, Total: Encoded(t, values...), Upstream: Encoded(t, values...), Overhead: Encoded(t, over...)}
}

// Batch is one interval [start, start+10s) of one proxy instance.
func Batch(instance, service string, seq uint64, start time.Time, hops ...model.HopHistograms) model.HistogramBatch {
	return model.HistogramBatch{Instance: instance, Service: service, Intervals: []model.Interval{{
		Seq: seq, StartUnixMs: start.UnixMilli(), EndUnixMs: start.Add(10 * time.Second).UnixMilli(), Hops: hops,
	}}}
}

// Logs turns a batch into the logs the meshlens_hdr receiver would pass on,
// through the receiver's own decode path (hdr.DecodeBatch, hdrlog.FromBatch).
func Logs(t testing.TB, b model.HistogramBatch) plog.Logs {
	t.Helper()
	body, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	d, err := hdr.DecodeBatch(body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rejected) > 0 {
		t.Fatalf("batch rejected in part: %v", d.Rejected)
	}
	ld, err := hdrlog.FromBatch(d)
	if err != nil {
		t.Fatal(err)
	}
	return ld
}
