package telemetry

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/meshlens/meshlens/model"
)

func attrs(s *tracepb.Span) map[string]*commonpb.AnyValue {
	m := map[string]*commonpb.AnyValue{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// Two hops of one request, as the proxies A (outbound) and B (inbound) see
// it, become a CLIENT span and its SERVER child with the attributes of the
// HTTP conventions.
func TestSpanExport(t *testing.T) {
	r := newSpanReceiver(t)
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: time.Hour, Backlog: time.Hour})
	trace := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	appSpan := [8]byte{0xa, 0, 0, 0, 0, 0, 0, 1}
	clientSpan := [8]byte{0xc, 0, 0, 0, 0, 0, 0, 2}
	serverSpan := [8]byte{0x5, 0, 0, 0, 0, 0, 0, 3}
	start := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	out := Hop{
		Key:   model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "payments", Route: "/pay/{id}", Method: "POST", StatusClass: "5xx"},
		Start: start, Total: 30 * time.Millisecond, Upstream: 29 * time.Millisecond,
		TraceID: trace, SpanID: clientSpan, ParentSpanID: appSpan, Sampled: true, TraceState: "vendor=x",
		RequestID: "req-1", Method: "POST", Path: "/pay/42", Status: 503, GRPCStatus: -1,
		ServerAddress: "payments", PeerAddress: "127.0.0.1", UserAgent: "test/1", UpstreamEndpoint: "10.0.0.7:8080", Protocol: "1.1",
	}
	in := out
	in.Key.Direction, in.Key.Service, in.Key.Peer = model.Inbound, "payments", "checkout"
	in.SpanID, in.ParentSpanID = serverSpan, clientSpan
	in.Start, in.Total, in.Upstream = start.Add(time.Millisecond), 28*time.Millisecond, 27*time.Millisecond
	in.Status, in.GRPCStatus, in.Protocol = 200, 14, "2" // gRPC UNAVAILABLE in a 200
	root := out
	root.SpanID, root.ParentSpanID, root.TraceState = [8]byte{0xd, 0, 0, 0, 0, 0, 0, 4}, [8]byte{}, ""
	root.Status, root.Err, root.Key.Route = 0, "upstream timeout", ""
	unsampled := out
	unsampled.Sampled = false
	for _, h := range []Hop{out, in, root, unsampled} {
		tel.Finish(&h)
	}
	eventually(t, 20*time.Second, "3 spans", func() bool { return len(r.got()) >= 3 })
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := map[byte]*tracepb.Span{}
	for _, s := range r.got() {
		spans[s.SpanId[0]] = s
	}
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3 (the unsampled hop exports none)", len(spans))
	}
	if r.resource["service.name"] != "checkout" || r.resource["service.instance.id"] != tel.Instance() {
		t.Errorf("resource %v", r.resource)
	}

	c, s := spans[0xc], spans[0x5]
	if c.Kind != tracepb.Span_SPAN_KIND_CLIENT || s.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("kinds %v, %v; want CLIENT, SERVER", c.Kind, s.Kind)
	}
	if !bytes.Equal(c.TraceId, trace[:]) || !bytes.Equal(s.TraceId, trace[:]) {
		t.Error("trace IDs differ from the hop's")
	}
	if !bytes.Equal(s.ParentSpanId, c.SpanId) || !bytes.Equal(c.ParentSpanId, appSpan[:]) {
		t.Errorf("parent links: server's parent %x (want %x), client's parent %x (want %x)", s.ParentSpanId, c.SpanId, c.ParentSpanId, appSpan)
	}
	if c.TraceState != "vendor=x" {
		t.Errorf("trace state %q", c.TraceState)
	}
	if c.Name != "POST /pay/{id}" {
		t.Errorf("name %q", c.Name)
	}
	if c.StartTimeUnixNano != uint64(start.UnixNano()) || c.EndTimeUnixNano-c.StartTimeUnixNano != uint64(30*time.Millisecond) {
		t.Errorf("times %d..%d", c.StartTimeUnixNano, c.EndTimeUnixNano)
	}
	if c.Flags&0x1 == 0 || c.Flags&0x300 != 0x300 {
		t.Errorf("flags %#x, want sampled and remote parent", c.Flags)
	}
	ca := attrs(c)
	wantStr := map[string]string{
		"http.request.method": "POST", "url.path": "/pay/42", "http.route": "/pay/{id}", "server.address": "payments",
		"network.peer.address": "127.0.0.1", "user_agent.original": "test/1", "network.protocol.version": "1.1",
		"meshlens.request_id": "req-1", "meshlens.upstream.endpoint": "10.0.0.7:8080",
		"meshlens.hop.direction": "outbound", "meshlens.peer.service": "payments",
	}
	for k, v := range wantStr {
		if got := ca[k].GetStringValue(); got != v {
			t.Errorf("client span %s = %q, want %q", k, got, v)
		}
	}
	if got := ca["http.response.status_code"].GetIntValue(); got != 503 {
		t.Errorf("status code attribute %d", got)
	}
	if arr := ca["http.request.header.x-request-id"].GetArrayValue().GetValues(); len(arr) != 1 || arr[0].GetStringValue() != "req-1" {
		t.Errorf("x-request-id header attribute %v", arr)
	}
	if _, ok := ca["rpc.grpc.status_code"]; ok {
		t.Error("rpc.grpc.status_code on a non-gRPC hop")
	}
	if c.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR || c.Status.GetMessage() != "HTTP 503" {
		t.Errorf("client status %v, want Error on 503", c.Status)
	}

	sa := attrs(s)
	if got := sa["rpc.grpc.status_code"].GetIntValue(); got != 14 {
		t.Errorf("rpc.grpc.status_code %d, want 14", got)
	}
	if sa["meshlens.hop.direction"].GetStringValue() != "inbound" || sa["network.protocol.version"].GetStringValue() != "2" {
		t.Errorf("server attributes %v", sa)
	}
	if s.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("server status %v, want Error on grpc-status 14", s.Status)
	}

	rs := spans[0xd]
	if len(rs.ParentSpanId) != 0 || rs.Flags&0x300 != 0 {
		t.Errorf("root span: parent %x flags %#x", rs.ParentSpanId, rs.Flags)
	}
	if rs.Name != "POST" || rs.Status.GetMessage() != "upstream timeout" || attrs(rs)["error.type"].GetStringValue() != "upstream timeout" {
		t.Errorf("root span: name %q status %v", rs.Name, rs.Status)
	}
	if _, ok := attrs(rs)["http.response.status_code"]; ok {
		t.Error("status code attribute on a hop without a response")
	}
}

func TestSpanStatus(t *testing.T) {
	e := newSpanEncoder("s", "i")
	for _, tc := range []struct {
		name   string
		dir    model.Direction
		status int
		grpc   int
		err    string
		want   bool
	}{
		{"2xx", model.Inbound, 200, -1, "", false},
		{"4xx", model.Outbound, 404, -1, "", false},
		{"5xx server", model.Inbound, 500, -1, "", true},
		{"5xx client", model.Outbound, 502, -1, "", true},
		{"proxy error", model.Outbound, 0, -1, "connect refused", true},
		{"grpc ok", model.Inbound, 200, 0, "", false},
		{"grpc not found server", model.Inbound, 200, 5, "", false},
		{"grpc not found client", model.Outbound, 200, 5, "", true},
		{"grpc internal server", model.Inbound, 200, 13, "", true},
	} {
		h := &Hop{Key: model.HopKey{Direction: tc.dir}, Status: tc.status, GRPCStatus: tc.grpc, Err: tc.err}
		if _, got := e.spanError(h); got != tc.want {
			t.Errorf("%s: error %v, want %v", tc.name, got, tc.want)
		}
	}
}

// Sampling ratio 0 exports no span, whatever the hop says, and the
// histograms still count every request.
func TestSamplingZeroKeepsHistograms(t *testing.T) {
	r := newHistReceiver(t)
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: time.Hour, Backlog: time.Hour, SamplingRatio: ratio(0)})
	keys := testKeys(2)
	ss := samples(500, 2, 9)
	for i, s := range ss {
		var id [16]byte
		binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9e3779b97f4a7c15)
		if tel.ShouldSample(id) {
			t.Fatal("ShouldSample true at ratio 0")
		}
		tel.Finish(&Hop{Key: keys[s.key], Total: s.total, Upstream: s.upstream, Sampled: true, GRPCStatus: -1})
	}
	if err := tel.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.traces != 0 {
		t.Errorf("%d span exports at ratio 0", r.traces)
	}
	sameSets(t, serial(keys, ss), r.merged())
}

func TestShouldSampleRatio(t *testing.T) {
	for _, want := range []float64{0, 0.01, 0.25, 0.5, 1} {
		tel, err := New(Config{SamplingRatio: ratio(want)}, "s", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		const n = 100000
		hits := 0
		for i := range n {
			var id [16]byte
			binary.BigEndian.PutUint64(id[:8], uint64(i))
			binary.BigEndian.PutUint64(id[8:], uint64(i)*0x9e3779b97f4a7c15)
			a, b := tel.ShouldSample(id), tel.ShouldSample(id)
			if a != b {
				t.Fatal("not deterministic")
			}
			if a {
				hits++
			}
		}
		if got := float64(hits) / n; got < want-0.01 || got > want+0.01 {
			t.Errorf("ratio %v: sampled %.4f", want, got)
		}
	}
}

// A full span queue drops and counts; a failing receiver's batches are
// dropped after a few tries and counted.
func TestSpanDrops(t *testing.T) {
	r := newSpanReceiver(t)
	r.fail = http.StatusServiceUnavailable
	tel := newTest(t, Config{Collector: r.srv.URL, FlushInterval: time.Hour, Backlog: time.Hour, SpanQueueSize: 64},
		func(tel *Telemetry) { tel.spans.delay = time.Hour }) // only the half-full wake-up exports
	for i := range 1000 {
		h := Hop{Key: hopKey("/a", "GET", "2xx"), Total: time.Millisecond, Sampled: true, GRPCStatus: -1}
		h.SpanID[7] = byte(i)
		tel.Finish(&h)
	}
	if tel.spans.dropFull.Load() == 0 {
		t.Error("no span dropped for a full queue")
	}
	eventually(t, 20*time.Second, "failed exports dropped", func() bool { return tel.spans.dropFailed.Load() > 0 })
	if tel.spans.err5xx.Load() < spanExportAttempts {
		t.Errorf("%d 5xx answers counted, want at least %d tries", tel.spans.err5xx.Load(), spanExportAttempts)
	}
}
