package hdrreceiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"

	"github.com/meshlens/meshlens/collector/internal/testhost"
)

// FuzzOTLPTraces feeds arbitrary OTLP/HTTP bodies, protobuf and JSON, to the
// /v1/traces endpoint: it never panics and answers 200 or a 4xx.
func FuzzOTLPTraces(f *testing.F) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	sp.Attributes().PutStr("http.request.header.authorization", "Bearer x")
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), true)
	f.Add([]byte{0x0a, 0xff, 0xff}, false)

	_, ext := testhost.Start(f, testhost.Options{})
	r := newReceiver(receiver.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()},
		createDefaultConfig().(*Config), func() {})
	r.ext, r.health = ext, ext.Health()
	r.setTraces(consumertest.NewNop())
	h := r.handler()
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", protobufContentType)
		if asJSON {
			req.Header.Set("Content-Type", jsonContentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
