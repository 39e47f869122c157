package analyticsexporter

import (
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/collector/internal/spans"
	"github.com/meshlens/meshlens/model"
)

// hopKeyOf derives the hop key a proxy span was recorded under: SERVER spans
// are inbound hops of their service, CLIENT spans outbound; the peer comes
// from meshlens.peer or peer.service ("unknown" when neither is set), the
// route from http.route, the method from http.request.method, the status
// class from rpc.grpc.status_code or http.response.status_code.
func hopKeyOf(service string, sp ptrace.Span) (model.HopKey, bool) {
	k := model.HopKey{Service: service, Peer: "unknown"}
	switch sp.Kind() {
	case ptrace.SpanKindServer:
		k.Direction = model.Inbound
	case ptrace.SpanKindClient:
		k.Direction = model.Outbound
	default:
		return k, false
	}
	attrs := sp.Attributes()
	if p := firstAttr(attrs, spans.PeerKeys...); p != "" {
		k.Peer = p
	}
	k.Route = firstAttr(attrs, "http.route", "meshlens.route")
	k.Method = firstAttr(attrs, "http.request.method", "http.method")
	if v, ok := attrs.Get("rpc.grpc.status_code"); ok {
		k.StatusClass = model.GRPCStatusClass(int(v.Int()))
	} else if v, ok := attrs.Get("http.response.status_code"); ok {
		code := v.Int()
		if v.Type() == pcommon.ValueTypeStr {
			n, err := strconv.Atoi(v.Str())
			if err != nil {
				return k, false
			}
			code = int64(n)
		}
		k.StatusClass = model.StatusClass(int(code))
	} else {
		return k, false
	}
	return k, k.Validate() == nil
}

func firstAttr(m pcommon.Map, keys ...string) string {
	for _, key := range keys {
		if v, ok := m.Get(key); ok && v.AsString() != "" {
			return v.AsString()
		}
	}
	return ""
}
