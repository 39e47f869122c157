package spanrows

import (
	"encoding/json"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/meshlens/meshlens/store"
)

// AppendJSONString must give, once parsed, exactly Clean(s).
func TestAppendJSONString(t *testing.T) {
	cases := []string{
		"", "plain", "quote \" backslash \\ slash /", "ctl \x01\x1f\x7f tab\t nl\n cr\r",
		"nul\x00inside", "bad \xff\xfe run", "bad\xc3\x28", "\xff\x00\xfe", "ünïcode ✓ \u2028 😀",
		"<html>&amp;", "\xed\xa0\x80 surrogate",
	}
	r := rand.New(rand.NewSource(1))
	alphabet := []byte{0, 1, 0x1f, ' ', '"', '\\', 'a', 0x7f, 0x80, 0xbf, 0xc3, 0xa9, 0xe2, 0x9c, 0x93, 0xf0, 0x9f, 0x98, 0x80, 0xff}
	// Runs of plain bytes long enough for the eight-byte steps, with the
	// odd byte anywhere in them.
	plain := []byte("abcdefghijklmnopqrstuvwxyz.-_/:=~!#$%&'()*+,;<>?@[]^`{|}")
	for range 20000 {
		b := make([]byte, r.Intn(40))
		for i := range b {
			b[i] = plain[r.Intn(len(plain))]
			if r.Intn(8) == 0 {
				b[i] = alphabet[r.Intn(len(alphabet))]
			}
		}
		cases = append(cases, string(b))
	}
	for range 20000 {
		b := make([]byte, r.Intn(12))
		for i := range b {
			b[i] = alphabet[r.Intn(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		enc := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encodes as %q, not JSON: %v", s, enc, err)
		}
		if want := Clean(s); got != want {
			t.Fatalf("%q encodes as %q, parsed %q, want %q", s, enc, got, want)
		}
		if got := string(AppendText(nil, s)[4:]); got != Clean(s) {
			t.Fatalf("AppendText(%q) holds %q, want %q", s, got, Clean(s))
		}
		checkText(t, s)
	}
}

// checkText holds the eight-byte scans to their byte-by-byte definitions.
func checkText(t *testing.T, s string) {
	t.Helper()
	if got, want := isPlainText(s), utf8.ValidString(s) && !strings.Contains(s, "\x00"); got != want {
		t.Fatalf("isPlainText(%q) = %v, want %v", s, got, want)
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		ascii = ascii && s[i] < utf8.RuneSelf
	}
	if got := IsASCII(s); got != ascii {
		t.Fatalf("IsASCII(%q) = %v, want %v", s, got, ascii)
	}
	for i := 0; i+8 <= len(s); i++ {
		plain := true
		for _, c := range []byte(s[i : i+8]) {
			plain = plain && c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\'
		}
		if got := jsonPlain(word(s[i:])); got != plain {
			t.Fatalf("jsonPlain(%q) = %v, want %v", s[i:i+8], got, plain)
		}
	}
}

// FuzzText: AppendJSONString parses back to Clean(s), and the eight-byte
// scans agree with their byte-by-byte definitions.
func FuzzText(f *testing.F) {
	f.Add("plain text, long enough for words")
	f.Add("ünï \x00 \xff \" \\ \x1f")
	f.Fuzz(func(t *testing.T, s string) {
		var got string
		if err := json.Unmarshal(AppendJSONString(nil, s), &got); err != nil || got != Clean(s) {
			t.Fatalf("%q: parsed %q (%v), want %q", s, got, err, Clean(s))
		}
		checkText(t, s)
	})
}

func TestRoundTrip(t *testing.T) {
	start := time.Date(2026, 11, 26, 3, 0, 0, 123456789, time.UTC)
	spans := []store.Span{
		{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203331", Service: "web", Name: "GET /", Kind: "server",
			Start: start, Duration: 1500 * time.Microsecond, StatusCode: "error", StatusMsg: "boom", RequestID: "r-1",
			Attributes: map[string]string{"a": "1", "ü": "\"q\"\n", "": ""}},
		{TraceID: "0af7651916cd43dd8448eb211c80319c", SpanID: "b7ad6b7169203332", ParentSpanID: "b7ad6b7169203331",
			Service: "db", Name: "SELECT", Kind: "client", Start: start.Add(-time.Hour), StatusCode: "unset"},
		{TraceID: "t\x00", SpanID: "s\xff", Service: "svc", Start: time.Unix(0, -5).UTC(), Attributes: map[string]string{"k\x00": "v\xc3\x28"}},
	}
	var b []byte
	for i := range spans {
		b = AppendSpan(b, &spans[i])
	}
	got, err := Decode(b, len(spans))
	if err != nil {
		t.Fatal(err)
	}
	want := spans[:2:2]
	want = append(want, store.Span{TraceID: "t", SpanID: "s\uFFFD", Service: "svc", Start: time.Unix(0, -5).UTC(),
		Attributes: map[string]string{"k": "v\uFFFD("}})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	// An empty attribute map is NULL, as no map.
	if r, _, _ := Next(AppendSpan(nil, &store.Span{Attributes: map[string]string{}})); r[Attributes] != nil {
		t.Errorf("empty attributes: %q, want NULL", r[Attributes])
	}
	for cut := range len(b) - 1 {
		if _, err := Decode(b[:cut+1], 3); err == nil && cut+1 != len(b) {
			// A cut at a row boundary decodes the rows before it.
			n := 0
			for rest := b[:cut+1]; len(rest) > 0; n++ {
				_, rest, _ = Next(rest)
			}
			if n == 0 {
				t.Fatalf("cut at %d: no error", cut+1)
			}
		}
	}
}

// BenchmarkAppendSpan encodes a batch of 1,000 realistic spans (one op);
// the PostgreSQL store's WriteSpans does this once per batch.
func BenchmarkAppendSpan(b *testing.B) {
	spans := benchSpans(1000)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range spans {
			buf = AppendSpan(buf, &spans[i])
		}
	}
	b.SetBytes(int64(len(buf)))
}

func benchSpans(n int) []store.Span {
	out := make([]store.Span, n)
	start := time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)
	for i := range out {
		out[i] = store.Span{
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentSpanID: "00f067aa0ba902b6",
			Service: "checkout", Name: "GET /api/v1/items/{id}", Kind: "server", Start: start.Add(time.Duration(i) * time.Millisecond),
			Duration: 1234 * time.Microsecond, StatusCode: "unset", RequestID: "6f1c2a4e-1b2c-4d5e-8f90-123456789abc",
			Attributes: map[string]string{
				"http.request.method": "GET", "http.route": "/api/v1/items/{id}", "http.response.status_code": "200",
				"server.address": "checkout", "url.path": "/api/v1/items/42", "network.protocol.version": "1.1",
			},
		}
	}
	return out
}
