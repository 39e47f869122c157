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
// from spans.PeerKeys ("unknown" when none is set), the route from
// http.route or meshlens.route, the method from http.request.method or
// http.method, the status class from rpc.grpc.status_code or else
// http.response.status_code (a span with neither has no hop key).
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
	// One pass over the attributes; for each part the first key listed
	// above with a non-empty value wins.
	var (
		peer, route, method        string
		peerRank, routeRank        = len(spans.PeerKeys), 2
		methodRank                 = 2
		grpcCode, httpCode         pcommon.Value
		haveGRPCCode, haveHTTPCode bool
	)
	for key, v := range sp.Attributes().All() {
		switch key {
		case "http.route":
			if routeRank > 0 && v.AsString() != "" {
				route, routeRank = v.AsString(), 0
			}
		case "meshlens.route":
			if routeRank > 1 && v.AsString() != "" {
				route, routeRank = v.AsString(), 1
			}
		case "http.request.method":
			if methodRank > 0 && v.AsString() != "" {
				method, methodRank = v.AsString(), 0
			}
		case "http.method":
			if methodRank > 1 && v.AsString() != "" {
				method, methodRank = v.AsString(), 1
			}
		case "rpc.grpc.status_code":
			if !haveGRPCCode {
				grpcCode, haveGRPCCode = v, true
			}
		case "http.response.status_code":
			if !haveHTTPCode {
				httpCode, haveHTTPCode = v, true
			}
		default:
			if r := spans.PeerRank(key); r >= 0 && r < peerRank && v.AsString() != "" {
				peer, peerRank = v.AsString(), r
			}
		}
	}
	if peer != "" {
		k.Peer = peer
	}
	k.Route, k.Method = route, method
	switch {
	case haveGRPCCode:
		k.StatusClass = model.GRPCStatusClass(int(grpcCode.Int()))
	case haveHTTPCode:
		code := httpCode.Int()
		if httpCode.Type() == pcommon.ValueTypeStr {
			n, err := strconv.Atoi(httpCode.Str())
			if err != nil {
				return k, false
			}
			code = int64(n)
		}
		k.StatusClass = model.StatusClass(int(code))
	default:
		return k, false
	}
	return k, k.Validate() == nil
}
