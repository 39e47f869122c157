package hdr

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/model"
)

// TestBucketValue: bucketValue is the library's index arithmetic for every
// bucket of the meshlens geometry.
func TestBucketValue(t *testing.T) {
	h := New()
	for i := range meshlensCountsLen {
		if err := h.RecordValues(BucketValue(i), int64(i+1)); err != nil {
			t.Fatalf("bucket %d: value %d: %v", i, BucketValue(i), err)
		}
	}
	for i, c := range h.Export().Counts {
		if c != int64(i+1) {
			t.Fatalf("bucket %d holds %d, want %d (value %d went elsewhere)", i, c, i+1, BucketValue(i))
		}
	}
	if h.Max() != New().Max() && meshlensLimitIndex >= meshlensCountsLen {
		t.Fatalf("limit index %d outside %d buckets", meshlensLimitIndex, meshlensCountsLen)
	}
}

func randomEncoded(t testing.TB, r *rand.Rand) (string, *Histogram) {
	h := New()
	for range r.IntN(3000) {
		v := int64(r.ExpFloat64() * r.ExpFloat64() * float64(int64(1)<<r.IntN(25)))
		if r.IntN(50) == 0 {
			h.RecordValues(1+r.Int64N(model.HighestTrackableMicros), 1+r.Int64N(1<<40))
			continue
		}
		Record(h, v)
	}
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// TestDecodeBucketsExact: what meshlens writes decodes on the fast path to
// exactly the histogram encoded, and merges as the sparse decode does.
func TestDecodeBucketsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var b Buckets
	viaBuckets, viaPacked := New(), New()
	for round := range 300 {
		s, want := randomEncoded(t, r)
		if !DecodeBuckets(s, &b) {
			t.Fatalf("round %d: fast path refused a meshlens histogram", round)
		}
		got := New()
		b.MergeInto(got)
		if !got.Equals(want) || b.TotalCount() != want.TotalCount() {
			t.Fatalf("round %d: decoded %d values, encoded %d", round, got.TotalCount(), want.TotalCount())
		}
		b.MergeInto(viaBuckets)
		p, err := DecodePacked(s)
		if err != nil {
			t.Fatal(err)
		}
		p.MergeInto(viaPacked)
	}
	if !viaBuckets.Equals(viaPacked) {
		t.Fatalf("merges differ: %d vs %d values", viaBuckets.TotalCount(), viaPacked.TotalCount())
	}
	// The empty histogram.
	s, _ := Encode(New())
	if !DecodeBuckets(s, &b) || b.TotalCount() != 0 || b.Len() != 0 {
		t.Fatalf("empty histogram: %+v", b)
	}
}

// TestDecodeBucketsRefuses: other geometries, values above the limit and
// corrupt input go to DecodePacked.
func TestDecodeBucketsRefuses(t *testing.T) {
	var b Buckets
	enc := func(h *hdrhistogram.Histogram) string {
		s, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			t.Fatal(err)
		}
		return string(s)
	}
	other := hdrhistogram.New(1, model.HighestTrackableMicros, 2)
	other.RecordValue(1000)
	nanos := hdrhistogram.New(1000, 3_600_000_000_000, 3)
	nanos.RecordValue(5000)
	above := New()
	above.RecordValue(model.HighestTrackableMicros + model.HighestTrackableMicros/100)
	h := New()
	h.RecordValue(1000)
	good, _ := Encode(h)
	if !DecodeBuckets(good, &b) {
		t.Fatal("a valid histogram refused")
	}
	badSum, _ := base64.StdEncoding.DecodeString(good)
	badSum[len(badSum)-1] ^= 0xff // the zlib checksum
	cut, _ := base64.StdEncoding.DecodeString(good)
	cut = cut[:len(cut)-4] // no checksum: the stream ends early
	binary.BigEndian.PutUint32(cut[4:], uint32(len(cut)-8))
	corrupt := map[string]string{
		"not base64":          "HISTF!!!",
		"empty":               "",
		"bad checksum":        base64.StdEncoding.EncodeToString(badSum),
		"unterminated stream": base64.StdEncoding.EncodeToString(cut),
		"truncated":           good[:len(good)-8],
	}
	for name, s := range map[string]string{
		"2 significant figures": enc(other),
		"nanoseconds":           enc(nanos),
		"above the limit":       enc(above),
	} {
		if DecodeBuckets(s, &b) {
			t.Errorf("%s: taken by the fast path", name)
		}
	}
	for name, s := range corrupt {
		if DecodeBuckets(s, &b) {
			t.Errorf("%s: taken by the fast path", name)
		}
		if _, err := DecodePacked(s); err == nil {
			t.Errorf("%s: DecodePacked takes it", name)
		}
	}
}

// FuzzDecodeBuckets: whatever the input, the fast path takes it only when
// DecodePacked decodes it to the same buckets within the meshlens limit.
func FuzzDecodeBuckets(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 4 {
		s, _ := randomEncoded(f, r)
		f.Add(s)
	}
	s, _ := Encode(New())
	f.Add(s)
	f.Add("HISTFAAAAB54nJNpmSzMwMDAxwABzFAaxmey38YAAQCIGgQL")
	f.Fuzz(func(t *testing.T, s string) {
		var b Buckets
		if !DecodeBuckets(s, &b) {
			return
		}
		p, err := DecodePacked(s)
		if err != nil {
			t.Fatalf("fast path took what DecodePacked refuses: %v", err)
		}
		if p.TotalCount() != b.TotalCount() {
			t.Fatalf("total %d, DecodePacked %d", b.TotalCount(), p.TotalCount())
		}
		want, got := New(), New()
		p.MergeInto(want)
		b.MergeInto(got)
		if !got.Equals(want) {
			t.Fatalf("buckets differ from DecodePacked's")
		}
		if p.TotalCount() > 0 && p.Max() > got.Max() {
			t.Fatalf("max %d above the merged max %d", p.Max(), got.Max())
		}
	})
}

func BenchmarkDecodeBuckets(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 9))
	var encs []string
	for range 64 {
		s, _ := randomEncoded(b, r)
		encs = append(encs, s)
	}
	b.Run("buckets", func(b *testing.B) {
		var bk Buckets
		h := New()
		b.ReportAllocs()
		for i := range b.N {
			if !DecodeBuckets(encs[i%len(encs)], &bk) {
				b.Fatal("refused")
			}
			bk.MergeInto(h)
		}
	})
	b.Run("packed", func(b *testing.B) {
		h := New()
		b.ReportAllocs()
		for i := range b.N {
			p, err := DecodePacked(encs[i%len(encs)])
			if err != nil {
				b.Fatal(err)
			}
			p.MergeInto(h)
		}
	})
}

// TestSum: a Sum of decoded histograms is their merge, encodes to what
// the library decodes to that merge, and resets to empty.
func TestSum(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := NewSum()
	var b Buckets
	for round := range 20 {
		s.Reset()
		want := New()
		for range r.IntN(6) {
			enc, h := randomEncoded(t, r)
			if !DecodeBuckets(enc, &b) {
				t.Fatal("refused")
			}
			s.AddBuckets(&b)
			want.Merge(h)
		}
		if got := s.Histogram(); !got.Equals(want) || s.TotalCount() != want.TotalCount() {
			t.Fatalf("round %d: sum of %d values differs from the merge of %d", round, s.TotalCount(), want.TotalCount())
		}
		got, err := s.Encode()
		if err != nil {
			t.Fatal(err)
		}
		// The library decodes it to the merge.
		if d, err := Decode(got); err != nil || !d.Equals(want) {
			t.Fatalf("round %d: encoding decodes to %v, %v", round, d, err)
		}
		// And what it encodes decodes back on the fast path.
		if !DecodeBuckets(got, &b) || b.TotalCount() != want.TotalCount() {
			t.Fatalf("round %d: own encoding not taken back", round)
		}
		var again Buckets
		s.Buckets(&again)
		if again.Len() != b.Len() || again.TotalCount() != b.TotalCount() {
			t.Fatalf("round %d: Buckets differs from the decoded encoding", round)
		}
		for i := range b.Len() {
			ai, ac := again.At(i)
			bi, bc := b.At(i)
			if ai != bi || ac != bc {
				t.Fatalf("round %d: bucket %d: %d:%d, decoded %d:%d", round, i, ai, ac, bi, bc)
			}
		}
	}
	// A histogram of another geometry adds as Histogram.Merge records it.
	other := hdrhistogram.New(1, model.HighestTrackableMicros, 2)
	for v := int64(1); v < 1e9; v = v*3 + 1 {
		other.RecordValue(v)
	}
	s.Reset()
	s.AddHistogram(other)
	want := New()
	want.Merge(other)
	if !s.Histogram().Equals(want) {
		t.Fatal("AddHistogram differs from Merge")
	}
}

// BenchmarkSumEncode: encoding the merge of 60 rollup-sized histograms (a
// busy minute's compaction).
func BenchmarkSumEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(13, 14))
	s := NewSum()
	var bk Buckets
	for range 60 {
		enc, _ := randomEncoded(b, r)
		DecodeBuckets(enc, &bk)
		s.AddBuckets(&bk)
	}
	var n int
	for range b.N {
		enc, err := s.Encode()
		if err != nil {
			b.Fatal(err)
		}
		n = len(enc)
	}
	b.ReportMetric(float64(n), "bytes")
}

// TestBucketsWide: counts past 32 bits switch the buckets to 64-bit counts,
// exactly.
func TestBucketsWide(t *testing.T) {
	h := New()
	h.RecordValues(10, 3)
	h.RecordValues(2000, 1<<40)
	h.RecordValues(3_000_000, 7)
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	var b Buckets
	if !DecodeBuckets(s, &b) || b.Len() != 3 {
		t.Fatalf("decoded %d buckets", b.Len())
	}
	for _, bk := range []*Buckets{&b, b.Clone()} {
		got := New()
		bk.MergeInto(got)
		sum := NewSum()
		sum.AddBuckets(bk)
		if !got.Equals(h) || !sum.Histogram().Equals(h) {
			t.Fatalf("wide counts: merged %d values, want %d", got.TotalCount(), h.TotalCount())
		}
	}
}
