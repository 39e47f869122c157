package proxy

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"net/http"
)

// traceContext is one hop's place in a trace: the trace it belongs to, the
// caller's span (parent) and the new span this hop starts.
type traceContext struct {
	traceID  [16]byte
	parentID [8]byte // zero for a root span
	spanID   [8]byte
	sampled  bool
	state    string // tracestate, passed on unchanged
	b3       bool   // the caller spoke B3 (and not W3C)
}

const traceparentLen = 55

// parseTraceparent parses a W3C traceparent header. ok is false for anything
// the spec says to ignore: version ff, all-zero IDs, wrong lengths,
// non-lowercase-hex, a version-00 header with trailing data.
func parseTraceparent(s string) (traceID [16]byte, parentID [8]byte, flags byte, ok bool) {
	if len(s) < traceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return traceID, parentID, 0, false
	}
	version, vok := hexByte(s[0], s[1])
	if !vok || version == 0xff {
		return traceID, parentID, 0, false
	}
	if version == 0 && len(s) != traceparentLen {
		return traceID, parentID, 0, false
	}
	if version > 0 && len(s) > traceparentLen && s[traceparentLen] != '-' {
		return traceID, parentID, 0, false
	}
	if !decodeHex(traceID[:], s[3:35]) || !decodeHex(parentID[:], s[36:52]) {
		return traceID, parentID, 0, false
	}
	flags, fok := hexByte(s[53], s[54])
	if !fok || isZero(traceID[:]) || isZero(parentID[:]) {
		return traceID, parentID, 0, false
	}
	return traceID, parentID, flags, true
}

// formatTraceparent writes a version-00 traceparent.
func formatTraceparent(traceID [16]byte, spanID [8]byte, sampled bool) string {
	var b [traceparentLen]byte
	b[0], b[1], b[2] = '0', '0', '-'
	encodeHex(b[3:35], traceID[:])
	b[35] = '-'
	encodeHex(b[36:52], spanID[:])
	b[52], b[53], b[54] = '-', '0', '0'
	if sampled {
		b[54] = '1'
	}
	return string(b[:])
}

// formatB3 writes a single-header B3 value: traceid-spanid-sampled.
func formatB3(traceID [16]byte, spanID [8]byte, sampled bool) string {
	var b [32 + 1 + 16 + 2]byte
	encodeHex(b[0:32], traceID[:])
	b[32] = '-'
	encodeHex(b[33:49], spanID[:])
	b[49], b[50] = '-', '0'
	if sampled {
		b[50] = '1'
	}
	return string(b[:])
}

// parseB3Single parses the single "b3" header:
// {traceid(16|32 hex)}-{spanid(16 hex)}[-{0|1|d}[-{parentspanid}]].
// A header that only carries a sampling decision ("0", "1", "d") has no
// context to continue and is not ok.
func parseB3Single(s string) (traceID [16]byte, spanID [8]byte, sampled bool, ok bool) {
	var tlen int
	switch {
	case len(s) >= 32+1+16 && s[32] == '-':
		tlen = 32
	case len(s) >= 16+1+16 && s[16] == '-':
		tlen = 16
	default:
		return traceID, spanID, false, false
	}
	if !decodeB3TraceID(&traceID, s[:tlen]) || !decodeHex(spanID[:], s[tlen+1:tlen+17]) {
		return traceID, spanID, false, false
	}
	rest := s[tlen+17:]
	sampled = true // absent: the caller decided to propagate; defer to it
	if rest != "" {
		if len(rest) < 2 || rest[0] != '-' {
			return traceID, spanID, false, false
		}
		switch rest[1] {
		case '1', 'd':
			sampled = true
		case '0':
			sampled = false
		default:
			return traceID, spanID, false, false
		}
		rest = rest[2:]
		if rest != "" && (len(rest) != 17 || rest[0] != '-' || !validHex(rest[1:])) {
			return traceID, spanID, false, false
		}
	}
	if isZero(traceID[:]) || isZero(spanID[:]) {
		return traceID, spanID, false, false
	}
	return traceID, spanID, sampled, true
}

// parseB3Multi parses X-B3-TraceId, X-B3-SpanId, X-B3-Sampled, X-B3-Flags.
func parseB3Multi(h http.Header) (traceID [16]byte, spanID [8]byte, sampled bool, ok bool) {
	tid, sid := headerValue(h, "X-B3-Traceid"), headerValue(h, "X-B3-Spanid")
	if tid == "" || sid == "" || (len(tid) != 16 && len(tid) != 32) || len(sid) != 16 {
		return traceID, spanID, false, false
	}
	if !decodeB3TraceID(&traceID, tid) || !decodeHex(spanID[:], sid) || isZero(traceID[:]) || isZero(spanID[:]) {
		return traceID, spanID, false, false
	}
	sampled = true
	switch headerValue(h, "X-B3-Sampled") {
	case "0", "false":
		sampled = false
	}
	if headerValue(h, "X-B3-Flags") == "1" {
		sampled = true
	}
	return traceID, spanID, sampled, true
}

func decodeB3TraceID(dst *[16]byte, s string) bool {
	if len(s) == 16 { // 64-bit trace IDs are left-padded with zeros
		*dst = [16]byte{}
		return decodeHex(dst[8:], s)
	}
	return decodeHex(dst[:], s)
}

// headerValue is h.Get for an already canonical key, without the
// canonicalisation cost.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// continueTrace reads the caller's trace context from h (W3C first, then B3)
// and starts this hop's span. sampleRatio decides for new traces.
func continueTrace(h http.Header, sampleRatio float64) traceContext {
	var tc traceContext
	if tp := headerValue(h, "Traceparent"); tp != "" {
		if tid, pid, flags, ok := parseTraceparent(tp); ok {
			tc.traceID, tc.parentID, tc.sampled = tid, pid, flags&1 == 1
			if ts := h["Tracestate"]; len(ts) > 0 {
				tc.state = joinTraceState(ts)
			}
			tc.spanID = newSpanID()
			return tc
		}
	}
	if b3 := headerValue(h, "B3"); b3 != "" {
		if tid, sid, sampled, ok := parseB3Single(b3); ok {
			tc.traceID, tc.parentID, tc.sampled, tc.b3 = tid, sid, sampled, true
			tc.spanID = newSpanID()
			return tc
		}
	}
	if tid, sid, sampled, ok := parseB3Multi(h); ok {
		tc.traceID, tc.parentID, tc.sampled, tc.b3 = tid, sid, sampled, true
		tc.spanID = newSpanID()
		return tc
	}
	tc.traceID = newTraceID()
	tc.spanID = newSpanID()
	tc.sampled = sampleTrace(tc.traceID, sampleRatio)
	return tc
}

func joinTraceState(v []string) string {
	if len(v) == 1 {
		return v[0]
	}
	n := 0
	for _, s := range v {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, s...)
	}
	return string(b)
}

// sampleTrace decides like OpenTelemetry's TraceIDRatioBased sampler: the
// trace ID's lower 63 bits against ratio, so every hop that starts the
// same trace decides the same way.
func sampleTrace(traceID [16]byte, ratio float64) bool {
	if ratio >= 1 {
		return true
	}
	if ratio <= 0 {
		return false
	}
	x := binary.BigEndian.Uint64(traceID[8:]) >> 1
	return x < uint64(ratio*(1<<63))
}

func newTraceID() (id [16]byte) {
	for isZero(id[:]) {
		binary.BigEndian.PutUint64(id[:8], rand.Uint64())
		binary.BigEndian.PutUint64(id[8:], rand.Uint64())
	}
	return id
}

func newSpanID() (id [8]byte) {
	for isZero(id[:]) {
		binary.BigEndian.PutUint64(id[:], rand.Uint64())
	}
	return id
}

// newRequestID returns a random (version 4) UUID from crypto/rand.
func newRequestID() string {
	var u [16]byte
	_, _ = crand.Read(u[:]) // never returns an error (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	encodeHex(b[0:8], u[0:4])
	b[8] = '-'
	encodeHex(b[9:13], u[4:6])
	b[13] = '-'
	encodeHex(b[14:18], u[6:8])
	b[18] = '-'
	encodeHex(b[19:23], u[8:10])
	b[23] = '-'
	encodeHex(b[24:36], u[10:16])
	return string(b[:])
}

// validRequestID keeps a caller's x-request-id only when it is a sane
// token: 1..128 visible ASCII characters.
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

func encodeHex(dst, src []byte) {
	for i, v := range src {
		dst[2*i] = hexDigits[v>>4]
		dst[2*i+1] = hexDigits[v&0x0f]
	}
}

// decodeHex decodes exactly len(dst)*2 lowercase hex digits.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		b, ok := hexByte(s[2*i], s[2*i+1])
		if !ok {
			return false
		}
		dst[i] = b
	}
	return true
}

func validHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if _, ok := hexNibble(s[i]); !ok {
			return false
		}
	}
	return true
}

func hexByte(hi, lo byte) (byte, bool) {
	h, ok1 := hexNibble(hi)
	l, ok2 := hexNibble(lo)
	return h<<4 | l, ok1 && ok2
}

// hexNibble accepts lowercase hex only, as W3C trace context requires.
func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

func isZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}
