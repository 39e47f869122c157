package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawExchange writes raw to addr and returns everything read until the
// server closes the connection (or 3 s pass: then closed is false).
func rawExchange(t *testing.T, addr, raw string) (resp string, closed bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return string(b), false
	}
	return string(b), true
}

func TestSmugglingRefused(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	cases := []struct {
		name, raw, reason string
	}{
		{"CL and TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", rejectCLAndTE},
		{"TE and CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", rejectCLAndTE},
		{"duplicate CL same", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", rejectDuplicateCL},
		{"duplicate CL differ", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", rejectDuplicateCL},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", rejectMalformedCL},
		{"CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", rejectMalformedCL},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc", rejectMalformedCL},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", rejectMalformedCL},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", rejectObsFold},
		{"obs-fold tab into CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\t3\r\n\r\nabc", rejectMalformedCL},
		{"TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", rejectTEUnsupported},
		{"TE twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", rejectTEUnsupported},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", rejectTEUnsupported},
		{"obs-fold in trailer", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\r\n folded\r\n\r\n", rejectObsFold},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := counterValue(t, p.reg, "meshproxy_smuggling_rejections_total", map[string]string{"reason": c.reason})
			resp, closed := rawExchange(t, p.InboundAddr(), c.raw)
			if !strings.HasPrefix(resp, "HTTP/1.1 400 ") {
				t.Errorf("response %q, want 400", resp)
			}
			if !closed {
				t.Errorf("connection left open")
			}
			after := counterValue(t, p.reg, "meshproxy_smuggling_rejections_total", map[string]string{"reason": c.reason})
			if after != before+1 {
				t.Errorf("rejection %s counted %v→%v", c.reason, before, after)
			}
		})
	}
	// The chunked-body-with-trailer case passes the guard on the trailer's
	// first line only; everything else must never reach the backend.
	if n := backend.count(); n != 0 {
		t.Errorf("backend saw %d requests", n)
	}
	if n := p.sink.count(); n != 0 {
		t.Errorf("%d hops recorded for refused requests", n)
	}
}

// TestSmugglingAfterValidRequest: a good request followed by a smuggling
// attempt on the same connection: the first is answered, the second
// refused, and only the first reaches the backend.
func TestSmugglingAfterValidRequest(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	raw := "POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /evil HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	resp, closed := rawExchange(t, p.InboundAddr(), raw)
	if !strings.HasPrefix(resp, "HTTP/1.1 200 ") || !strings.Contains(resp, "HTTP/1.1 400 ") || !closed {
		t.Errorf("closed %v response %q", closed, resp)
	}
	if n := backend.count(); n != 1 || backend.last(t).URL.Path != "/ok" {
		t.Errorf("backend saw %d requests", n)
	}
}

// TestGuardPassesValidFraming: pipelined keep-alive requests with chunked
// bodies (extensions, trailers) and Content-Length bodies all get through.
func TestGuardPassesValidFraming(t *testing.T) {
	backend := newEchoBackend(t)
	p := startProxy(t, inboundConfig("users", hostPort(t, backend.Server)))
	raw := "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world" +
		"\r\nGET /c HTTP/1.1\r\nHost: a\r\ncontent-length:  0 \r\n\r\n" +
		"POST /d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\nB\r\nhello world\r\n0\r\n\r\n" +
		"GET /e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	conn, err := net.Dial("tcp", p.InboundAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// Byte by byte, so every split point of the guard's state machine runs.
	for i := 0; i < len(raw); i++ {
		if _, err := conn.Write([]byte{raw[i]}); err != nil {
			t.Fatal(err)
		}
	}
	br := bufio.NewReader(conn)
	want := []string{"hello world", "hello world", "", "hello world", ""}
	for i, w := range want {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != w {
			t.Errorf("response %d: %d %q, want %q", i, resp.StatusCode, body, w)
		}
	}
	if n := backend.count(); n != 5 {
		t.Errorf("backend saw %d requests, want 5", n)
	}
}

func FuzzFramingGuard(f *testing.F) {
	f.Add([]byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n"), 3)
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"), 1)
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 7)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		// Feeding in two pieces must decide exactly as feeding at once.
		var whole, parts framingGuard
		_, r1 := whole.feed(data)
		if split < 0 {
			split = -split
		}
		if len(data) > 0 {
			split %= len(data) + 1
		} else {
			split = 0
		}
		_, r2 := parts.feed(data[:split])
		if r2 == "" {
			_, r2 = parts.feed(data[split:])
		}
		if r1 != r2 {
			t.Fatalf("whole %q, split at %d %q", r1, split, r2)
		}
	})
}
