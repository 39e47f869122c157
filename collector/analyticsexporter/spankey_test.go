package analyticsexporter

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/model"
)

// hopKeyOf reads each part from the first of its keys with a value,
// whatever order the attributes come in.
func TestHopKeyOf(t *testing.T) {
	cases := []struct {
		name  string
		kind  ptrace.SpanKind
		attrs [][2]string // string values; status codes are set as ints below
		code  map[string]int64
		want  model.HopKey
		ok    bool
	}{
		{
			name:  "preferred keys last",
			kind:  ptrace.SpanKindClient,
			attrs: [][2]string{{"peer.service", "b"}, {"meshlens.peer", "c"}, {"meshlens.peer.service", "users"}, {"meshlens.route", "/r2"}, {"http.route", "/users/{id}"}, {"http.method", "POST"}, {"http.request.method", "GET"}},
			code:  map[string]int64{"http.response.status_code": 503},
			want:  model.HopKey{Service: "web", Direction: model.Outbound, Peer: "users", Route: "/users/{id}", Method: "GET", StatusClass: "5xx"},
			ok:    true,
		},
		{
			name:  "empty preferred values fall back",
			kind:  ptrace.SpanKindServer,
			attrs: [][2]string{{"meshlens.peer.service", ""}, {"peer.service", "mobile"}, {"http.route", ""}, {"meshlens.route", "/r"}, {"http.request.method", ""}, {"http.method", "PUT"}},
			code:  map[string]int64{"http.response.status_code": 204},
			want:  model.HopKey{Service: "web", Direction: model.Inbound, Peer: "mobile", Route: "/r", Method: "PUT", StatusClass: "2xx"},
			ok:    true,
		},
		{
			name: "gRPC status wins over HTTP",
			kind: ptrace.SpanKindServer,
			code: map[string]int64{"http.response.status_code": 200, "rpc.grpc.status_code": 14},
			want: model.HopKey{Service: "web", Direction: model.Inbound, Peer: "unknown", StatusClass: model.GRPCStatusClass(14)},
			ok:   true,
		},
		{
			name:  "no status: no hop",
			kind:  ptrace.SpanKindServer,
			attrs: [][2]string{{"http.route", "/"}},
			want:  model.HopKey{Service: "web", Direction: model.Inbound, Peer: "unknown", Route: "/"},
		},
		{
			name:  "status as text",
			kind:  ptrace.SpanKindClient,
			attrs: [][2]string{{"http.response.status_code", "404"}, {"peer.service", "b"}},
			want:  model.HopKey{Service: "web", Direction: model.Outbound, Peer: "b", StatusClass: "4xx"},
			ok:    true,
		},
		{
			name: "internal span",
			kind: ptrace.SpanKindInternal,
			code: map[string]int64{"http.response.status_code": 200},
			want: model.HopKey{Service: "web", Peer: "unknown"},
		},
	}
	for _, c := range cases {
		sp := ptrace.NewSpan()
		sp.SetKind(c.kind)
		for _, kv := range c.attrs {
			sp.Attributes().PutStr(kv[0], kv[1])
		}
		for k, v := range c.code {
			sp.Attributes().PutInt(k, v)
		}
		got, ok := hopKeyOf("web", sp)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: got %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
