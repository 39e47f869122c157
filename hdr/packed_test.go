package hdr

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/meshlens/meshlens/model"
)

// rawEncoding builds a V2 compressed encoding by hand: the header fields
// given, the payload body, and extra bytes after the payload inside the
// zlib stream.
func rawEncoding(digits int32, lowest, highest int64, body, extra []byte) string {
	inner := make([]byte, headerSize)
	binary.BigEndian.PutUint32(inner[0:], v2CookieBase|0x10)
	binary.BigEndian.PutUint32(inner[4:], uint32(len(body)))
	binary.BigEndian.PutUint32(inner[12:], uint32(digits))
	binary.BigEndian.PutUint64(inner[16:], uint64(lowest))
	binary.BigEndian.PutUint64(inner[24:], uint64(highest))
	binary.BigEndian.PutUint64(inner[32:], math.Float64bits(1))
	inner = append(append(inner, body...), extra...)
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(inner)
	w.Close()
	out := make([]byte, 8, 8+z.Len())
	binary.BigEndian.PutUint32(out[0:], v2CompressedCookieBase|0x10)
	binary.BigEndian.PutUint32(out[4:], uint32(z.Len()))
	return base64.StdEncoding.EncodeToString(append(out, z.Bytes()...))
}

// zz is a payload of zig-zag varints (negative: a run of empty buckets).
func zz(counts ...int64) []byte {
	var b []byte
	for _, v := range counts {
		b = appendZigZag(b, v)
	}
	return b
}

func appendZigZag(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for k := 0; k < 8; k++ {
		if u < 0x80 {
			return append(b, byte(u))
		}
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// buckets lists a sparse histogram's (value, count) pairs.
func buckets(p *Packed) [][2]int64 {
	var out [][2]int64
	p.ForEachBucket(func(v, n int64) bool {
		out = append(out, [2]int64{v, n})
		return true
	})
	return out
}

func sameBuckets(a, b [][2]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDecodePackedMatchesDense: the sparse decode holds the buckets, total,
// min and max of the dense one, in the meshlens geometry and others.
func TestDecodePackedMatchesDense(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, g := range []struct{ lowest, highest, digits int64 }{
		{1, model.HighestTrackableMicros, 3}, {1, 1000, 1}, {1000, 3_600_000_000_000, 2},
		{7, 86_400_000_000_000, 3}, {1, 4 * model.HighestTrackableMicros, 3},
	} {
		h := hdrhistogram.New(g.lowest, g.highest, int(g.digits))
		for range 5000 {
			_ = h.RecordValue(min(int64(r.ExpFloat64()*float64(g.highest)/50), g.highest))
		}
		s, err := Encode(h)
		if err != nil {
			t.Fatal(err)
		}
		p, err := DecodePacked(s)
		if err != nil {
			t.Fatalf("%+v: %v", g, err)
		}
		lib, err := hdrhistogram.DecodePacked([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		if p.TotalCount() != h.TotalCount() || p.Max() != h.Max() || p.Min() != h.Min() || !sameBuckets(buckets(p), buckets(lib)) {
			t.Fatalf("%+v: total %d max %d min %d, dense %d %d %d", g, p.TotalCount(), p.Max(), p.Min(), h.TotalCount(), h.Max(), h.Min())
		}
		again, err := EncodePacked(p)
		if err != nil || again != s {
			t.Fatalf("%+v: re-encoding differs (%v)", g, err)
		}
	}
}

func TestDecodePackedRejects(t *testing.T) {
	f := func(name, in, want string) {
		t.Helper()
		if _, err := DecodePacked(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, want)
		}
	}
	const top = model.HighestTrackableMicros
	good, _ := Encode(New())
	f("empty", "", "shorter than")
	f("not base64", "!!!", "base64")
	f("truncated", good[:len(good)-8], "corrupt histogram")
	f("wrong cookie", "AAAAAAAAAAA=", "cookie")
	f("huge", strings.Repeat("A", MaxEncodedBytes+1), "limit")
	f("digits", rawEncoding(5, 1, top, zz(1), nil), "significant figures")
	f("highest", rawEncoding(3, 1, MaxHighestTrackable+1, zz(1), nil), "highest trackable")
	f("overflow", rawEncoding(3, 1, top, zz(math.MaxInt64/2, math.MaxInt64/2+2), nil), "sum past")
	f("run past the end", rawEncoding(3, 1, top, zz(-1<<40), nil), "empty buckets")
	f("MinInt64 run", rawEncoding(3, 1, top, zz(math.MinInt64), nil), "empty buckets")
	f("trailing", rawEncoding(3, 1, top, zz(1), []byte{0}), "after the payload")
	f("varint", rawEncoding(3, 1, top, []byte{2, 0x80}, nil), "varint truncated")
	if _, err := DecodePacked(rawEncoding(3, 1, top, zz(math.MaxInt64/2, math.MaxInt64/2+1), nil)); err != nil {
		t.Errorf("counts summing to exactly MaxInt64: %v", err)
	}
}

// FuzzDecodePacked holds the sparse decode to hdrhistogram-go's own: what
// it takes, the library takes with the same buckets; what it rejects fails
// the header limits, or the library rejects too, or sums past int64.
func FuzzDecodePacked(f *testing.F) {
	h := New()
	for _, v := range []int64{1, 10, 100, 1000, 1e6, 3e9} {
		Record(h, v)
	}
	s, _ := Encode(h)
	f.Add(s)
	f.Add("")
	f.Add("HISTFAAAACl4nJNpmSzMwMDAzwABTFCaEUrLMIlkXnQ6mVPxdF15tYL2X0M31oMCAHJ4Bj0=")
	f.Add(rawEncoding(3, 1, model.HighestTrackableMicros, zz(math.MaxInt64/2, math.MaxInt64/2+2), nil))
	f.Add(rawEncoding(2, 1000, 3_600_000_000_000, zz(-5, 3, 0, 7, -100, 1), nil))
	f.Add(rawEncoding(1, 0, 2, zz(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24), nil))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := DecodePacked(s)
		lib, libErr := hdrhistogram.DecodePacked([]byte(s))
		if err != nil {
			if checkEncoded(s) == nil && libErr == nil && lib.TotalCount() != math.MaxInt64 {
				t.Fatalf("rejected what hdrhistogram-go takes (total %d): %v", lib.TotalCount(), err)
			}
			return
		}
		if libErr != nil {
			t.Fatalf("took what hdrhistogram-go rejects: %v", libErr)
		}
		if checkEncoded(s) != nil {
			t.Fatal("took what the header check rejects")
		}
		if p.TotalCount() != lib.TotalCount() || p.Max() != lib.Max() || !sameBuckets(buckets(p), buckets(lib)) {
			t.Fatalf("total %d max %d, hdrhistogram-go %d %d", p.TotalCount(), p.Max(), lib.TotalCount(), lib.Max())
		}
		d, err := Decode(s)
		if err != nil || d.TotalCount() != p.TotalCount() || d.Max() != p.Max() {
			t.Fatalf("dense decode: %v", err)
		}
	})
}

// FuzzDecodePackedPayload is FuzzDecodePacked with the header fields and
// the inflated payload as inputs, so the fuzzer reaches the payload reader
// instead of the zlib checksum.
func FuzzDecodePackedPayload(f *testing.F) {
	top := int64(model.HighestTrackableMicros)
	f.Add(int32(3), int64(1), top, zz(1, -5, 3, 0, 2))
	f.Add(int32(3), int64(1), top, zz(math.MaxInt64/2, math.MaxInt64/2+2))
	f.Add(int32(1), int64(0), int64(2), zz(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17))
	f.Add(int32(2), int64(1000), int64(3_600_000_000_000), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add(int32(3), int64(1), top, zz(-23000, 4, -551, 9))
	f.Fuzz(func(t *testing.T, digits int32, lowest, highest int64, payload []byte) {
		s := rawEncoding(digits, lowest, highest, payload, nil)
		p, err := DecodePacked(s)
		lib, libErr := hdrhistogram.DecodePacked([]byte(s))
		if err != nil {
			if checkEncoded(s) == nil && libErr == nil && lib.TotalCount() != math.MaxInt64 {
				t.Fatalf("rejected what hdrhistogram-go takes (total %d): %v", lib.TotalCount(), err)
			}
			return
		}
		if libErr != nil {
			t.Fatalf("took what hdrhistogram-go rejects: %v", libErr)
		}
		if p.TotalCount() != lib.TotalCount() || p.Max() != lib.Max() || p.Min() != lib.Min() || !sameBuckets(buckets(p), buckets(lib)) {
			t.Fatalf("total %d max %d, hdrhistogram-go %d %d", p.TotalCount(), p.Max(), lib.TotalCount(), lib.Max())
		}
		if d, err := Decode(s); err != nil || d.TotalCount() != p.TotalCount() || d.Max() != p.Max() {
			t.Fatalf("dense decode: %v", err)
		}
		// The bucket DecodeBatch checks the range by: the last one.
		bs := buckets(lib)
		if _, last, _ := decodePacked(s); len(bs) > 0 && last != bs[len(bs)-1][0] {
			t.Fatalf("last bucket at %d, hdrhistogram-go %d", last, bs[len(bs)-1][0])
		}
	})
}

// BenchmarkDecode decodes one histogram of 200 latencies (100 µs–2 s, the
// collector benchmark's): dense, hdrhistogram-go's sparse decode, and
// DecodePacked.
func BenchmarkDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	h := New()
	for range 200 {
		Record(h, 100+int64(r.ExpFloat64()*20_000)%2_000_000)
	}
	s, err := Encode(h)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		decode func(string) error
	}{
		{"dense", func(s string) error { _, err := Decode(s); return err }},
		{"hdrhistogram-go packed", func(s string) error { _, err := hdrhistogram.DecodePacked([]byte(s)); return err }},
		{"DecodePacked", func(s string) error { _, err := DecodePacked(s); return err }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
