package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestUpstreamDown(t *testing.T) {
	p := startProxy(t, outboundConfig("frontend", UpstreamConfig{Name: "orders", Endpoints: []string{closedAddr(t)}}))

	// HTTP: 502 with a body that says why.
	req, _ := http.NewRequest("GET", "http://"+p.OutboundAddr()+"/orders/1", nil)
	req.Host = "orders"
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 502 || !strings.Contains(string(body), "connect failed") {
		t.Errorf("HTTP: %d %q", resp.StatusCode, body)
	}

	// gRPC: HTTP 200, trailers-only grpc-status 14, never a bare 5xx.
	req, _ = http.NewRequest("POST", "http://"+p.OutboundAddr()+"/pkg.Orders/Get", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Host = "orders"
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	resp, err = h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "14" || resp.Header.Get("Content-Type") != "application/grpc" {
		t.Errorf("gRPC: %d headers %v trailers %v", resp.StatusCode, resp.Header, resp.Trailer)
	}

	hops := p.sink.wait(t, 2)
	if hops[0].Key.StatusClass != "5xx" || hops[0].Err != "upstream connect failed" || hops[0].Upstream != 0 {
		t.Errorf("HTTP hop %+v", hops[0])
	}
	if hops[1].GRPCStatus != 14 || hops[1].Key.StatusClass != "5xx" || hops[1].Key.Route != "/pkg.Orders/Get" {
		t.Errorf("gRPC hop %+v", hops[1])
	}
	if got := counterValue(t, p.reg, "meshproxy_upstream_errors_total", map[string]string{"direction": "outbound", "kind": "connect"}); got != 2 {
		t.Errorf("connect errors counted %v, want 2", got)
	}

	// Unknown Host: 404 (gRPC: UNIMPLEMENTED), counted.
	req, _ = http.NewRequest("GET", "http://"+p.OutboundAddr()+"/", nil)
	req.Host = "nowhere:8080"
	resp, err = client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown upstream: %d", resp.StatusCode)
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	backend.Config.Protocols = &protos
	backend.Start()
	defer backend.Close()
	defer close(release)

	cfg := inboundConfig("users", hostPort(t, backend))
	cfg.Timeouts.Response = 200 * time.Millisecond
	p := startProxy(t, cfg)

	start := time.Now()
	resp, err := client(t).Get("http://" + p.InboundAddr() + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 504 || !strings.Contains(string(body), "timeout") {
		t.Errorf("HTTP: %d %q", resp.StatusCode, body)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v", d)
	}

	// gRPC with grpc-timeout: DEADLINE_EXCEEDED as a trailers-only answer.
	req, _ := http.NewRequest("POST", "http://"+p.InboundAddr()+"/pkg.Svc/Slow", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Grpc-Timeout", "150m")
	resp, err = h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "4" {
		t.Errorf("gRPC: %d %v", resp.StatusCode, resp.Header)
	}
	if got := counterValue(t, p.reg, "meshproxy_upstream_errors_total", map[string]string{"direction": "inbound", "kind": "timeout"}); got != 2 {
		t.Errorf("timeouts counted %v, want 2", got)
	}
	hops := p.sink.wait(t, 2)
	if hops[0].Status != 504 || hops[0].Err != "upstream timeout" || hops[1].GRPCStatus != 4 {
		t.Errorf("hops %+v / %+v", hops[0], hops[1])
	}
}

// TestClientAbort: a caller that goes away before any response is
// recorded with status 0 and class 4xx, and the upstream request is
// cancelled.
func TestClientAbort(t *testing.T) {
	cancelled := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(cancelled)
	}))
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))
	c := client(t)
	c.Timeout = 200 * time.Millisecond
	if _, err := c.Get("http://" + p.InboundAddr() + "/hang"); err == nil {
		t.Fatal("expected a client timeout")
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not cancelled")
	}
	h := p.sink.wait(t, 1)[0]
	if h.Status != 0 || h.Key.StatusClass != "4xx" || h.Err != "client aborted" {
		t.Errorf("hop %+v", h)
	}
}

// TestGRPCCallToNonGRPCError: an upstream HTTP 503 for a gRPC call reaches
// the caller as HTTP 200 with grpc-status UNAVAILABLE.
func TestGRPCCallToNonGRPCError(t *testing.T) {
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	backend.Config.Protocols = &protos
	backend.Start()
	defer backend.Close()
	p := startProxy(t, inboundConfig("users", hostPort(t, backend)))
	req, _ := http.NewRequest("POST", "http://"+p.InboundAddr()+"/pkg.Svc/M", bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Grpc-Status") != "14" {
		t.Errorf("%d %v", resp.StatusCode, resp.Header)
	}
	if h := p.sink.wait(t, 1)[0]; h.GRPCStatus != 14 || h.Key.StatusClass != "5xx" {
		t.Errorf("hop %+v", h)
	}
}
