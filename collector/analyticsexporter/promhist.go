package analyticsexporter

import (
	"math"
	"math/bits"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// bucketWidthMicros is the width of the HDR bucket holding v in the meshlens
// geometry (lowest 1 µs, 3 significant figures: 2048 sub-buckets): 1 below
// 2048 µs, then doubling with every power of two.
func bucketWidthMicros(v int64) int64 {
	n := bits.Len64(uint64(v))
	if n <= 11 {
		return 1
	}
	return int64(1) << (n - 11)
}

// asMeshlensGeometry returns p itself when it indexes values like the
// meshlens geometry, else p re-recorded into it.
func asMeshlensGeometry(p *hdr.Packed) *hdr.Packed {
	if p.SignificantFigures() == 3 && p.LowestTrackableValue() == 1 {
		return p
	}
	m := hdr.NewPacked()
	m.Merge(p)
	return m
}

// nativeIndex is the native-histogram bucket index of v (> 0) at schema s:
// bucket i holds (2^((i-1)/2^s), 2^(i/2^s)].
func nativeIndex(v float64, schema int32) int {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	if frac == 0.5 {           // an exact power of two is the upper bound of its bucket
		return (exp - 1) << schema
	}
	return int(math.Ceil(math.Log2(v) * float64(int64(1)<<schema)))
}

// promHistogram is the cumulative state of one Prometheus histogram series
// (native and classic buckets), fed from HDR histograms.
type promHistogram struct {
	count   uint64
	sum     float64 // seconds; each HDR bucket counted at its midpoint
	schema  int32
	native  map[int]int64
	classic []uint64 // non-cumulative counts per classic bound; above the last: only in count
	created time.Time

	exemplar exemplar // the latest span's, if any
}

// exemplar is a span's trace ID and latency, kept as plain values: the
// Prometheus form is built only when a scrape asks for it.
type exemplar struct {
	traceID pcommon.TraceID
	seconds float64
	at      time.Time // the span's end
}

func (e exemplar) valid() bool { return !e.at.IsZero() }

func (e exemplar) dto() *dto.Exemplar {
	return &dto.Exemplar{
		Label:     []*dto.LabelPair{{Name: ptr("trace_id"), Value: ptr(e.traceID.String())}},
		Value:     ptr(e.seconds),
		Timestamp: timestamppb.New(e.at),
	}
}

func newPromHistogram(schema int32, nClassic int, now time.Time) *promHistogram {
	return &promHistogram{schema: schema, native: map[int]int64{}, classic: make([]uint64, nClassic), created: now}
}

// bucketIndex maps each HDR bucket of the meshlens geometry (by its flat
// counts index) to the native bucket its midpoint falls in at the configured
// schema and to its classic bucket: computed once per exporter, so merging
// a histogram takes no logarithm or search per bucket.
type bucketIndex struct {
	schema  int32
	bounds  []float64 // classic bounds, µs
	native  []int32   // native bucket index at schema
	classic []int32   // index of the first classic bound >= the bucket's lowest value; len(bounds): none
}

// meshlensBuckets is the number of HDR buckets of the meshlens geometry (1 µs
// to one hour, 3 significant figures) up to the one holding one hour, the
// last that DecodeBatch lets a value into.
var meshlensBuckets = func() int {
	p := hdr.NewPacked()
	_ = p.RecordValue(model.HighestTrackableMicros)
	return meshlensFlat(p.Max()) + 1
}()

// meshlensFlat is the flat counts index of value v (> 0) in the meshlens
// geometry: 2048 sub-buckets, the lower half of each bucket after the first
// overlapping the bucket before.
func meshlensFlat(v int64) int {
	b := bits.Len64(uint64(v)|2047) - 11
	return b<<10 + int(v>>b)
}

func newBucketIndex(schema int32, bounds []float64) *bucketIndex {
	x := &bucketIndex{schema: schema, bounds: bounds, native: make([]int32, meshlensBuckets), classic: make([]int32, meshlensBuckets)}
	for f := range meshlensBuckets {
		// A value of 0 (which meshlens never records: it clamps to 1 µs)
		// counts as 1 µs.
		lo := max(meshlensValue(f), 1)
		x.native[f] = int32(nativeIndex(midSeconds(lo), schema))
		x.classic[f] = int32(sort.SearchFloat64s(bounds, float64(lo)))
	}
	return x
}

// meshlensValue is the lowest value of the bucket at flat index f, the
// inverse of meshlensFlat.
func meshlensValue(f int) int64 {
	b := f>>10 - 1
	sub := int64(f&1023 + 1024)
	if b < 0 {
		b, sub = 0, int64(f)
	}
	return sub << b
}

// lookup returns the native bucket index at x.schema and the classic
// bucket index of the HDR bucket starting at lo.
func (x *bucketIndex) lookup(lo int64) (native, classic int) {
	if f := meshlensFlat(max(lo, 1)); f < len(x.native) {
		return int(x.native[f]), int(x.classic[f])
	}
	// Past the meshlens range, which DecodeBatch does not let in.
	return nativeIndex(midSeconds(lo), x.schema), sort.SearchFloat64s(x.bounds, float64(lo))
}

// midSeconds is the midpoint of the HDR bucket starting at lo, in seconds.
func midSeconds(lo int64) float64 {
	hi := lo + bucketWidthMicros(lo) - 1
	return (float64(lo) + float64(hi)) / 2 / 1e6
}

// add adds the HDR histogram p (meshlens geometry) to h. maxBuckets bounds
// the native buckets.
func (h *promHistogram) add(p *hdr.Packed, x *bucketIndex, maxBuckets int) {
	// Runs of HDR buckets in one native bucket (ascending values give
	// ascending native indexes) are added to the map once.
	shift := x.schema - h.schema // halvings since the configured schema
	run, runCount := 0, int64(0)
	p.ForEachBucket(func(lo, n int64) bool {
		i, c := x.lookup(lo)
		h.count += uint64(n)
		h.sum += midSeconds(lo) * float64(n)
		for range shift {
			i = (i + 1) >> 1 // as halve merges buckets
		}
		if runCount > 0 && i != run {
			h.native[run] += runCount
			runCount = 0
		}
		run, runCount = i, runCount+n
		// A value counts toward bound b when its HDR bucket starts at or
		// below b: HdrHistogram's own rule (values in one bucket are
		// equivalent), the same as meshlens_requests_faster_than_total.
		if c < len(h.classic) {
			h.classic[c] += uint64(n)
		}
		return true
	})
	if runCount > 0 {
		h.native[run] += runCount
	}
	for len(h.native) > maxBuckets && h.schema > -4 {
		h.halve()
	}
}

// halve lowers the native resolution by one schema step, merging bucket
// pairs: at schema s-1, bucket j holds buckets 2j-1 and 2j of schema s.
func (h *promHistogram) halve() {
	out := make(map[int]int64, len(h.native)/2+1)
	for i, n := range h.native {
		out[(i+1)>>1] += n
	}
	h.native = out
	h.schema--
}

func ptr[T any](v T) *T { return &v }

// write fills a dto.Histogram with both the classic buckets and the native
// (sparse) buckets, so a Prometheus server without native-histogram support
// reads the classic ones and one with it reads both.
func (h *promHistogram) write(boundsSeconds []float64) *dto.Histogram {
	out := &dto.Histogram{
		SampleCount:      ptr(h.count),
		SampleSum:        ptr(h.sum),
		Schema:           ptr(h.schema),
		ZeroThreshold:    ptr(1e-7), // below the 1 µs HDR floor: always empty
		ZeroCount:        ptr(uint64(0)),
		CreatedTimestamp: timestamppb.New(h.created),
	}
	var ex *dto.Exemplar
	if h.exemplar.valid() {
		ex = h.exemplar.dto()
	}
	var cum uint64
	for i, b := range boundsSeconds {
		cum += h.classic[i]
		bk := &dto.Bucket{CumulativeCount: ptr(cum), UpperBound: ptr(b)}
		if ex != nil && ex.GetValue() <= b && (i == 0 || ex.GetValue() > boundsSeconds[i-1]) {
			bk.Exemplar = ex
		}
		out.Bucket = append(out.Bucket, bk)
	}
	idx := make([]int, 0, len(h.native))
	for i := range h.native {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var prevCount int64
	for k, i := range idx {
		switch {
		case k == 0:
			out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: ptr(int32(i)), Length: ptr(uint32(1))})
		case i == idx[k-1]+1:
			*out.PositiveSpan[len(out.PositiveSpan)-1].Length++
		default:
			out.PositiveSpan = append(out.PositiveSpan, &dto.BucketSpan{Offset: ptr(int32(i - idx[k-1] - 1)), Length: ptr(uint32(1))})
		}
		out.PositiveDelta = append(out.PositiveDelta, h.native[i]-prevCount)
		prevCount = h.native[i]
	}
	if len(idx) == 0 {
		// An empty native histogram still needs a span to be told apart
		// from a classic-only one.
		out.PositiveSpan = []*dto.BucketSpan{{Offset: ptr(int32(0)), Length: ptr(uint32(0))}}
	}
	if ex != nil {
		out.Exemplars = []*dto.Exemplar{ex}
	}
	return out
}
