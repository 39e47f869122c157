package proxy

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/proxy/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recordingSink keeps a copy of every finished hop.
type recordingSink struct {
	mu   sync.Mutex
	hops []telemetry.Hop
	cond *sync.Cond
}

func newRecordingSink() *recordingSink {
	s := &recordingSink{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *recordingSink) Finish(h *telemetry.Hop) {
	s.mu.Lock()
	s.hops = append(s.hops, *h)
	s.mu.Unlock()
	s.cond.Broadcast()
}

// wait returns the first n hops, failing the test after 5 s.
func (s *recordingSink) wait(t testing.TB, n int) []telemetry.Hop {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		if len(s.hops) >= n {
			out := append([]telemetry.Hop(nil), s.hops[:n]...)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d hops, have %d", n, s.count())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *recordingSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.hops)
}

type testProxy struct {
	*Proxy
	sink *recordingSink
	reg  *prometheus.Registry
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startProxy starts a proxy for cfg (listen addresses may use port 0) and
// shuts it down at the end of the test.
func startProxy(t testing.TB, cfg Config) *testProxy {
	t.Helper()
	return startProxyWith(t, cfg, Options{})
}

func startProxyWith(t testing.TB, cfg Config, o Options) *testProxy {
	t.Helper()
	cfg = cfg.Defaults()
	sink := newRecordingSink()
	reg := prometheus.NewRegistry()
	o.Config, o.Logger, o.Registry, o.Sink = cfg, testLogger(t), reg, sink
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	})
	return &testProxy{Proxy: p, sink: sink, reg: reg}
}

// inboundConfig is a proxy for service in front of app.
func inboundConfig(service, app string) Config {
	return Config{
		Service: service,
		Inbound: &InboundConfig{Listen: "127.0.0.1:0", App: app},
	}
}

// outboundConfig is a proxy for service that can call the upstreams.
func outboundConfig(service string, ups ...UpstreamConfig) Config {
	return Config{
		Service:   service,
		Outbound:  &OutboundConfig{Listen: "127.0.0.1:0"},
		Upstreams: ups,
	}
}

func hostPort(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	return srv.Listener.Addr().String()
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// client returns an HTTP/1.1 client that cleans up its connections.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// h2cClient returns a client speaking cleartext HTTP/2 with prior knowledge.
func h2cClient(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr.Protocols = &p
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func newRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
