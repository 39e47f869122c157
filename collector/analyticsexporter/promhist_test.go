package analyticsexporter

import (
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// TestBucketIndex: the precomputed index gives, for every HDR bucket of the
// meshlens geometry, the native bucket of its midpoint at the configured
// schema and, halved as a series halves its resolution, at every lower
// schema; and the classic bucket of its lowest value.
func TestBucketIndex(t *testing.T) {
	bounds := []float64{1_000, 2_500, 100_000, 1_000_000}
	x := newBucketIndex(7, bounds)
	for f := 1; f < meshlensBuckets; f++ {
		lo := meshlensValue(f)
		p := hdr.NewPacked()
		if err := p.RecordValue(lo); err != nil || p.Min() != lo || meshlensFlat(lo) != f {
			t.Fatalf("flat index %d: value %d, a bucket of the meshlens geometry from %d (%v), back to %d", f, lo, p.Min(), err, meshlensFlat(lo))
		}
		native, classic := x.lookup(lo)
		if want := sort.SearchFloat64s(bounds, float64(lo)); classic != want {
			t.Fatalf("bucket %d: classic %d, want %d", lo, classic, want)
		}
		for s := int32(7); s >= 0; s-- {
			if want := nativeIndex(midSeconds(lo), s); native != want {
				t.Fatalf("bucket %d at schema %d: native %d, want %d", lo, s, native, want)
			}
			native = (native + 1) >> 1
		}
	}
	p := hdr.NewPacked()
	hdr.RecordPacked(p, model.HighestTrackableMicros)
	if meshlensFlat(p.Max()) != meshlensBuckets-1 {
		t.Fatalf("the top bucket is at %d, want %d", meshlensFlat(p.Max()), meshlensBuckets-1)
	}
}

// TestHalveBelowZero: a series whose values span more powers of two than
// native_max_buckets keeps halving its resolution below schema 0 and goes on
// taking histograms (a negative schema once made nativeIndex shift by a
// negative count and panic).
func TestHalveBelowZero(t *testing.T) {
	x := newBucketIndex(2, nil)
	h := newPromHistogram(2, 0, time.Now())
	r := rand.New(rand.NewPCG(7, 8))
	for range 3 {
		p := hdr.NewPacked()
		for range 2000 {
			hdr.RecordPacked(p, int64(1)<<r.IntN(32))
		}
		h.add(p, x, 20)
	}
	if h.schema >= 0 || len(h.native) > 20 || h.count != 6000 {
		t.Fatalf("schema %d, %d native buckets, count %d", h.schema, len(h.native), h.count)
	}
	var sum int64
	for _, c := range h.native {
		sum += c
	}
	if sum != 6000 {
		t.Fatalf("native buckets hold %d, want 6000", sum)
	}
}
