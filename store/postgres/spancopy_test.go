package postgres

import (
	"encoding/json"
	"math/rand"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

// appendJSONString must give, once parsed, exactly clean(s): the text the
// store kept before it encoded COPY rows itself.
func TestAppendJSONString(t *testing.T) {
	cases := []string{
		"", "plain", "quote \" backslash \\ slash /", "ctl \x01\x1f\x7f tab\t nl\n cr\r",
		"nul\x00inside", "bad \xff\xfe run", "bad\xc3\x28", "\xff\x00\xfe", "ünïcode ✓ \u2028 😀",
		"<html>&amp;", "\xed\xa0\x80 surrogate",
	}
	r := rand.New(rand.NewSource(1))
	alphabet := []byte{0, 1, 0x1f, ' ', '"', '\\', 'a', 0x7f, 0x80, 0xbf, 0xc3, 0xa9, 0xe2, 0x9c, 0x93, 0xf0, 0x9f, 0x98, 0x80, 0xff}
	for range 20000 {
		b := make([]byte, r.Intn(12))
		for i := range b {
			b[i] = alphabet[r.Intn(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		enc := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(enc, &got); err != nil {
			t.Fatalf("%q encodes as %q, not JSON: %v", s, enc, err)
		}
		if want := clean(s); got != want {
			t.Fatalf("%q encodes as %q, parsed %q, want %q", s, enc, got, want)
		}
	}
}

func TestAppendClean(t *testing.T) {
	for _, s := range []string{"", "ok", "ü", "a\x00b", "\xff", "ü\x00", "x\xc3\x28"} {
		if got, want := string(appendClean([]byte("p"), s)), "p"+clean(s); got != want {
			t.Errorf("appendClean(%q) = %q, want %q", s, got, want)
		}
	}
}

// BenchmarkEncodeSpans encodes a batch of 1,000 realistic spans for COPY
// (one op); WriteSpans does this once per batch.
func BenchmarkEncodeSpans(b *testing.B) {
	spans := benchSpans(1000)
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = encodeSpans(buf[:0], spans)
	}
	b.SetBytes(int64(len(buf)))
}

// benchSpans is storetest.Spans without the import cycle of a test
// package: six attributes, request IDs.
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
