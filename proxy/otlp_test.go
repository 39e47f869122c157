package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/meshlens/meshlens/proxy/telemetry"
)

// otlpReceiver is an OTLP/HTTP trace receiver that decodes what it gets
// with the OpenTelemetry protobuf definitions.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracev1.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path != "/v1/traces" {
		w.WriteHeader(http.StatusOK) // histograms: not this test's subject
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			o.spans = append(o.spans, ss.Spans...)
		}
	}
	o.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(nil)
}

// TestTwoProxiesExportLinkedSpans runs A (outbound) → B (inbound) with
// the real telemetry sink exporting to an OTLP/HTTP receiver: B's SERVER
// span is the child of A's CLIENT span, in the caller's trace.
func TestTwoProxiesExportLinkedSpans(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	backend := newEchoBackend(t)

	start := func(cfg Config) *Proxy {
		cfg.Telemetry.Collector = collector.URL
		cfg.Telemetry.FlushInterval = 100 * time.Millisecond
		cfg = cfg.Defaults()
		reg := prometheus.NewRegistry()
		log := slog.New(slog.DiscardHandler)
		sink, err := telemetry.New(cfg.Telemetry, cfg.Service, reg, log)
		if err != nil {
			t.Fatal(err)
		}
		if err := sink.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		p, err := New(Options{Config: cfg, Logger: log, Registry: reg, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b := start(inboundConfig("users", hostPort(t, backend.Server)))
	a := start(outboundConfig("frontend", UpstreamConfig{Name: "users", Endpoints: []string{b.InboundAddr()}}))

	req, _ := http.NewRequest("GET", "http://"+a.OutboundAddr()+"/users/7", nil)
	req.Host = "users"
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Shutdown flushes what is queued.
	for _, p := range []*Proxy{a, b} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		cancel()
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	var client, server *tracev1.Span
	for _, s := range recv.spans {
		switch s.Kind {
		case tracev1.Span_SPAN_KIND_CLIENT:
			client = s
		case tracev1.Span_SPAN_KIND_SERVER:
			server = s
		}
	}
	if client == nil || server == nil {
		t.Fatalf("received %d spans, want a CLIENT and a SERVER span", len(recv.spans))
	}
	wantTrace := []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	if !bytes.Equal(client.TraceId, wantTrace) || !bytes.Equal(server.TraceId, wantTrace) {
		t.Errorf("trace IDs %x %x", client.TraceId, server.TraceId)
	}
	if !bytes.Equal(server.ParentSpanId, client.SpanId) {
		t.Errorf("server span's parent %x, want the client span %x", server.ParentSpanId, client.SpanId)
	}
	if !bytes.Equal(client.ParentSpanId, []byte{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}) {
		t.Errorf("client span's parent %x, want the caller's span", client.ParentSpanId)
	}
}
