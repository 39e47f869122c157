package proxy

import (
	"net/http"
	"testing"
)

func TestParseTraceparent(t *testing.T) {
	f := func(in string, ok bool) {
		t.Helper()
		_, _, _, got := parseTraceparent(in)
		if got != ok {
			t.Errorf("parseTraceparent(%q) ok=%v, want %v", in, got, ok)
		}
	}
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true)
	f("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future", true) // later versions may append
	f("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true)
	f("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false)   // version ff
	f("00-00000000000000000000000000000000-00f067aa0ba902b7-01", false)   // zero trace
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false)   // zero parent
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", false) // v00 with extra
	f("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false)
	f("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false) // short trace
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01", false)
	f("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false) // uppercase
	f("00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false) // non-hex
	f("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false)
	f("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0z", false)
	f("00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false)
	f("", false)

	tid, pid, flags, _ := parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if got := formatTraceparent(tid, pid, flags&1 == 1); got != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Errorf("round trip %q", got)
	}
}

func TestParseB3(t *testing.T) {
	f := func(in string, ok, sampled bool) {
		t.Helper()
		_, _, s, got := parseB3Single(in)
		if got != ok || (ok && s != sampled) {
			t.Errorf("parseB3Single(%q) = sampled %v ok %v, want %v %v", in, s, got, sampled, ok)
		}
	}
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90", true, true)
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0", true, false)
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d", true, true)
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1", true, true)
	f("64fe8b2a57d3eff7-e457b5a2e4d86bd1-1", true, true) // 64-bit trace ID
	f("0", false, false)
	f("1", false, false)
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-x", false, false)
	f("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3", false, false)
	f("00000000000000000000000000000000-e457b5a2e4d86bd1-1", false, false)

	tid, _, _, _ := parseB3Single("64fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
	if tid[0] != 0 || tid[8] != 0x64 {
		t.Errorf("64-bit trace ID not left-padded: %x", tid)
	}
	h := http.Header{}
	h.Set("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7")
	h.Set("X-B3-SpanId", "e457b5a2e4d86bd1")
	h.Set("X-B3-Sampled", "0")
	if _, _, s, ok := parseB3Multi(h); !ok || s {
		t.Errorf("multi: ok %v sampled %v", ok, s)
	}
}

func TestContinueTracePrefersW3C(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
	h.Set("B3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")
	h["Tracestate"] = []string{"a=1", "b=2"}
	tc := continueTrace(h, 1)
	if tc.b3 || tc.sampled || tc.state != "a=1,b=2" || tc.traceID[0] != 0x4b {
		t.Errorf("%+v", tc)
	}
	if tc.spanID == tc.parentID || tc.spanID == ([8]byte{}) {
		t.Errorf("span ID not new")
	}
	if tc := continueTrace(http.Header{}, 0); tc.sampled || tc.parentID != ([8]byte{}) {
		t.Errorf("ratio 0 sampled a new trace: %+v", tc)
	}
}

func TestRequestID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := newRequestID()
		if !uuidV4.MatchString(id) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "a b", "x\x00", string(make([]byte, 129))} {
		if validRequestID(bad) {
			t.Errorf("accepted request id %q", bad)
		}
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
	f.Fuzz(func(t *testing.T, s string) {
		tid, pid, flags, ok := parseTraceparent(s)
		if !ok {
			return
		}
		if isZero(tid[:]) || isZero(pid[:]) || s[:2] == "ff" {
			t.Fatalf("accepted invalid %q", s)
		}
		// What parses formats back to the same IDs.
		out := formatTraceparent(tid, pid, flags&1 == 1)
		tid2, pid2, _, ok2 := parseTraceparent(out)
		if !ok2 || tid2 != tid || pid2 != pid || out[3:52] != s[3:52] {
			t.Fatalf("round trip %q → %q", s, out)
		}
	})
}

func FuzzParseB3(f *testing.F) {
	f.Add("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")
	f.Add("64fe8b2a57d3eff7-e457b5a2e4d86bd1")
	f.Fuzz(func(t *testing.T, s string) {
		tid, sid, _, ok := parseB3Single(s)
		if ok && (isZero(tid[:]) || isZero(sid[:])) {
			t.Fatalf("accepted zero IDs in %q", s)
		}
	})
}

func BenchmarkParseTraceparent(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	}
}

func BenchmarkContinueTrace(b *testing.B) {
	h := http.Header{}
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	b.ReportAllocs()
	for b.Loop() {
		tc := continueTrace(h, 1)
		_ = formatTraceparent(tc.traceID, tc.spanID, tc.sampled)
	}
}

func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		newRequestID()
	}
}
