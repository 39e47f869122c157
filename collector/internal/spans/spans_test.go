package spans

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestRedacted(t *testing.T) {
	r := NewRedactor(DefaultRedact)
	for key, want := range map[string]bool{
		"authorization":                       true,
		"Authorization":                       true,
		"http.request.header.authorization":   true,
		"http.request.header.cookie":          true,
		"http.response.header.set-cookie":     true,
		"grpc_metadata_x-api-key":             true,
		"rpc.request.metadata.x-api-key":      true,
		"my_api-key":                          true,
		"http.request.header.x-request-id":    false,
		"cookies.count":                       false,
		"http.request.header.authorization_x": false,
		"PROXY-AUTHORIZATION":                 true,
	} {
		if got := r.Redacted(key); got != want {
			t.Errorf("Redacted(%q) = %v, want %v", key, got, want)
		}
	}
}

func TestConvert(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "web")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Date(2026, 11, 20, 12, 0, 0, 123456789, time.UTC)

	client := ss.AppendEmpty()
	client.SetTraceID(pcommon.TraceID{1})
	client.SetSpanID(pcommon.SpanID{2})
	client.SetParentSpanID(pcommon.SpanID{3})
	client.SetKind(ptrace.SpanKindClient)
	client.SetName("GET /users/{id}")
	client.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	client.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(1500 * time.Microsecond)))
	client.Status().SetCode(ptrace.StatusCodeError)
	client.Status().SetMessage("upstream failed")
	client.Attributes().PutStr("meshlens.peer.service", "users")
	client.Attributes().PutEmptySlice("http.request.header.x-request-id").AppendEmpty().SetStr("req-9")
	client.Attributes().PutStr("http.request.header.cookie", "secret")
	client.Attributes().PutInt("http.response.status_code", 503)

	server := ss.AppendEmpty()
	server.SetTraceID(pcommon.TraceID{1})
	server.SetSpanID(pcommon.SpanID{4})
	server.SetKind(ptrace.SpanKindServer)
	server.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(-time.Second)))
	server.Attributes().PutStr("peer.service", "mobile")

	noID := ss.AppendEmpty()
	noID.SetSpanID(pcommon.SpanID{5})

	anon := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	anon.SetTraceID(pcommon.TraceID{7})
	anon.SetSpanID(pcommon.SpanID{7})
	anon.SetKind(ptrace.SpanKindClient)
	anon.Attributes().PutStr("peer.service", "users")

	res := Convert(td, NewRedactor(DefaultRedact))
	if res.Invalid != 1 || len(res.Spans) != 3 {
		t.Fatalf("%d spans, %d invalid; want 3 and 1", len(res.Spans), res.Invalid)
	}
	c := res.Spans[0]
	if c.TraceID != "01000000000000000000000000000000" || c.SpanID != "0200000000000000" || c.ParentSpanID != "0300000000000000" ||
		c.Service != "web" || c.Kind != "client" || c.Duration != 1500*time.Microsecond || !c.Start.Equal(start) ||
		c.StatusCode != "error" || c.StatusMsg != "upstream failed" || c.RequestID != "req-9" {
		t.Errorf("client span %+v", c)
	}
	if _, ok := c.Attributes["http.request.header.cookie"]; ok || c.Attributes["http.response.status_code"] != "503" {
		t.Errorf("client attributes %v", c.Attributes)
	}
	if s := res.Spans[1]; s.ParentSpanID != "" || s.Kind != "server" || s.Duration != 0 {
		t.Errorf("server span %+v (no end: duration 0)", s)
	}
	if s := res.Spans[2]; s.Service != "unknown" {
		t.Errorf("span without service.name: service %q, want unknown", s.Service)
	}
	services := map[string]bool{}
	for _, s := range res.Services {
		services[s.Name] = true
		if s.Name == "web" && (!s.FirstSeen.Equal(start.Add(-time.Second)) || !s.LastSeen.Equal(start)) {
			t.Errorf("web first/last seen %v %v", s.FirstSeen, s.LastSeen)
		}
	}
	if len(services) != 3 || !services["web"] || !services["users"] || !services["mobile"] {
		t.Errorf("services %v, want web, users, mobile (unknown is never a service)", services)
	}
	edges := map[string]bool{}
	for _, e := range res.Edges {
		edges[e.Caller+"->"+e.Callee] = true
	}
	if len(edges) != 2 || !edges["web->users"] || !edges["mobile->web"] {
		t.Errorf("edges %v, want web->users and mobile->web", edges)
	}
}
