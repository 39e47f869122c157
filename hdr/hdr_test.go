package hdr

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/meshlens/meshlens/model"
)

func TestEncodeDecodeExact(t *testing.T) {
	h := New()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		Record(h, int64(r.ExpFloat64()*2000)+1)
	}
	Record(h, model.HighestTrackableMicros)
	s, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equals(h) {
		t.Fatalf("decoded histogram differs: total %d vs %d", got.TotalCount(), h.TotalCount())
	}
}

func TestMergeEqualsSingle(t *testing.T) {
	all, a, b := New(), New(), New()
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 50_000 {
		v := int64(r.NormFloat64()*300+5000) + 1
		Record(all, v)
		if i%3 == 0 {
			Record(a, v)
		} else {
			Record(b, v)
		}
	}
	m := New()
	for _, part := range []*Histogram{a, b} {
		s, err := Encode(part)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Decode(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Merge(d)
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if m.ValueAtQuantile(q) != all.ValueAtQuantile(q) {
			t.Errorf("p%v: merged %d, single %d", q, m.ValueAtQuantile(q), all.ValueAtQuantile(q))
		}
	}
	if m.TotalCount() != all.TotalCount() {
		t.Errorf("count: merged %d, single %d", m.TotalCount(), all.TotalCount())
	}
}

func TestDecodeRejects(t *testing.T) {
	f := func(name, in, want string) {
		t.Helper()
		_, err := Decode(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, want)
		}
	}
	good, _ := Encode(New())
	f("empty", "", "shorter than")
	f("not base64", "!!!", "base64")
	f("truncated", good[:len(good)-8], "corrupt histogram")
	f("wrong cookie", "AAAAAAAAAAA=", "cookie")
	f("huge", strings.Repeat("A", MaxEncodedBytes+1), "limit")
}

func FuzzDecode(f *testing.F) {
	h := New()
	for _, v := range []int64{1, 10, 100, 1000, 1e6, 3e9} {
		Record(h, v)
	}
	s, _ := Encode(h)
	f.Add(s)
	f.Add("")
	f.Add("HISTFAAAACl4nJNpmSzMwMDAzwABTFCaEUrLMIlkXnQ6mVPxdF15tYL2X0M31oMCAHJ4Bj0=")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Decode(s)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same histogram.
		again, err := Encode(d)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		d2, err := Decode(again)
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !d2.Equals(d) {
			t.Fatal("round trip changed the histogram")
		}
	})
}

// TestDecodeReusesHeaderReader interleaves rejected and good encodings so
// the pooled zlib readers of checkHeader are reused after every kind of
// failure: each good one must still decode to its histogram.
func TestDecodeReusesHeaderReader(t *testing.T) {
	h := New()
	for _, v := range []int64{1, 250, 9_000, 3e9} {
		Record(h, v)
	}
	good, err := Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(good)
	badZlib := append([]byte(nil), raw...)
	for i := 8; i < len(badZlib); i++ {
		badZlib[i] ^= 0x5a
	}
	for i := range 20 {
		for _, bad := range []string{good[:len(good)-8], base64.StdEncoding.EncodeToString(badZlib), base64.StdEncoding.EncodeToString(raw[:12])} {
			if _, err := Decode(bad); err == nil {
				t.Fatalf("round %d: corrupt encoding accepted", i)
			}
		}
		got, err := Decode(good)
		if err != nil || !got.Equals(h) {
			t.Fatalf("round %d: good encoding after rejected ones: err %v", i, err)
		}
		p, err := DecodePacked(good)
		if err != nil || p.TotalCount() != h.TotalCount() || p.Max() != h.Max() {
			t.Fatalf("round %d: packed decode after rejected ones: err %v", i, err)
		}
	}
}
