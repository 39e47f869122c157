package telemetry

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/meshlens/meshlens/model"
)

// FuzzSpanEncode checks that any hop encodes to an OTLP request that both
// the generated OTLP types and the collector's pdata decode, with the
// hop's strings intact (invalid UTF-8 replaced).
func FuzzSpanEncode(f *testing.F) {
	f.Add("GET", "/a/{id}", "/a/1", "k=v", "req-1", "ua/1", "", 200, -1, true, int64(1500))
	f.Add("POST", "", "/\xff\xfe", "", "", "curl/\x80", "upstream \xc3 timeout", 503, 14, false, int64(-5))
	f.Add("", "other", "", "a=b,c=d", "x", "", "", 0, 0, true, int64(1<<62))
	f.Fuzz(func(t *testing.T, method, route, path, state, rid, ua, errMsg string, status, grpcStatus int, outbound bool, totalNs int64) {
		h := Hop{
			Key:   model.HopKey{Service: "s", Direction: model.Inbound, Peer: "p", Route: route, Method: method, StatusClass: "2xx"},
			Start: time.Unix(1764113400, 5), Total: time.Duration(totalNs),
			TraceID: [16]byte{1}, SpanID: [8]byte{2}, ParentSpanID: [8]byte{3}, TraceState: state,
			RequestID: rid, Method: method, Path: path, Status: status, GRPCStatus: grpcStatus, UserAgent: ua, Err: errMsg,
		}
		if outbound {
			h.Key.Direction = model.Outbound
		}
		e := newSpanEncoder("svc", "inst")
		e.add(&h)
		e.add(&h)
		body := bytes.Clone(e.request())

		var msg coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			t.Fatalf("generated types: %v", err)
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			t.Fatalf("pdata: %v", err)
		}
		if n := req.Traces().SpanCount(); n != 2 {
			t.Fatalf("pdata: %d spans, want 2", n)
		}
		spans := msg.ResourceSpans[0].ScopeSpans[0].Spans
		if len(spans) != 2 {
			t.Fatalf("%d spans", len(spans))
		}
		s := spans[0]
		got := map[string]string{}
		for _, kv := range s.Attributes {
			got[kv.Key] = kv.Value.GetStringValue()
		}
		for k, v := range map[string]string{"url.path": path, "user_agent.original": ua, "meshlens.request_id": rid, "http.request.method": method} {
			if want := strings.ToValidUTF8(v, "\uFFFD"); got[k] != want {
				t.Errorf("%s = %q, want %q", k, got[k], want)
			}
		}
		if s.TraceState != strings.ToValidUTF8(state, "\uFFFD") {
			t.Errorf("trace state %q", s.TraceState)
		}
		if s.EndTimeUnixNano-s.StartTimeUnixNano != uint64(totalNs) {
			t.Errorf("duration %d, want %d", s.EndTimeUnixNano-s.StartTimeUnixNano, totalNs)
		}
	})
}
