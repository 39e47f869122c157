// Package spans turns OTLP spans into stored spans: IDs as hex, attributes
// as strings with credentials removed (authorization headers and cookies
// never reach the store), the request ID lifted out, and the services and
// edges the spans reveal.
package spans

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
)

// DefaultRedact lists the attribute-key suffixes removed at ingest (matched
// case-insensitively against the whole key or its last dotted part).
var DefaultRedact = []string{
	"authorization", "proxy-authorization", "cookie", "set-cookie",
	"x-api-key", "api-key", "x-auth-token",
}

// RequestIDKeys are the span attributes that carry the x-request-id, first
// match wins.
var RequestIDKeys = []string{
	"http.request.header.x-request-id",
	"meshlens.request_id",
	"request_id",
	"x-request-id",
}

// PeerKeys name the other side of a hop on a span, first match wins:
// meshlens' own attributes (meshproxy sends meshlens.peer.service), then the
// conventional peer.service.
var PeerKeys = []string{"meshlens.peer.service", "meshlens.peer", "peer.service"}

// Redactor removes credentials from attributes.
type Redactor struct {
	suffixes []string
}

// NewRedactor returns a Redactor removing keys that end in one of suffixes.
func NewRedactor(suffixes []string) *Redactor {
	r := &Redactor{}
	for _, s := range suffixes {
		r.suffixes = append(r.suffixes, strings.ToLower(s))
	}
	return r
}

// Redacted reports whether an attribute key must not be stored.
func (r *Redactor) Redacted(key string) bool {
	k := strings.ToLower(key)
	for _, s := range r.suffixes {
		if k == s || strings.HasSuffix(k, "."+s) || strings.HasSuffix(k, "_"+s) {
			return true
		}
	}
	return false
}

// Result is what one OTLP payload yields.
type Result struct {
	Spans    []store.Span
	Services []store.Service
	Edges    []store.Edge
	// Invalid counts spans left out for an empty trace or span ID.
	Invalid int
}

// Convert turns td into stored spans and the discoveries they carry: each
// span's service, and for a client (outbound) span with a known peer the
// peer and the edge service → peer; for a server span with a known peer the
// edge peer → service. Peers seen only here have HasProxy false.
func Convert(td ptrace.Traces, red *Redactor) Result {
	var res Result
	res.Spans = make([]store.Span, 0, td.SpanCount())
	services := map[string]*store.Service{}
	edges := map[[2]string]*store.Edge{}
	see := func(name string, t time.Time) {
		if name == "" || name == "unknown" {
			return
		}
		s, ok := services[name]
		if !ok {
			services[name] = &store.Service{Name: name, FirstSeen: t, LastSeen: t}
			return
		}
		if t.Before(s.FirstSeen) {
			s.FirstSeen = t
		}
		if t.After(s.LastSeen) {
			s.LastSeen = t
		}
	}
	edge := func(caller, callee string, t time.Time) {
		if caller == "" || callee == "" || caller == "unknown" || callee == "unknown" || caller == callee {
			return
		}
		see(caller, t)
		see(callee, t)
		k := [2]string{caller, callee}
		e, ok := edges[k]
		if !ok {
			edges[k] = &store.Edge{Caller: caller, Callee: callee, FirstSeen: t, LastSeen: t}
			return
		}
		if t.Before(e.FirstSeen) {
			e.FirstSeen = t
		}
		if t.After(e.LastSeen) {
			e.LastSeen = t
		}
	}

	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := "unknown"
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.Str() != "" {
			service = v.Str()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				sp := ss.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					res.Invalid++
					continue
				}
				s := convertSpan(sp, service, red)
				res.Spans = append(res.Spans, s)
				see(service, s.Start)
				peer := firstStr(sp.Attributes(), PeerKeys)
				switch sp.Kind() {
				case ptrace.SpanKindClient, ptrace.SpanKindProducer:
					edge(service, peer, s.Start)
				case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
					edge(peer, service, s.Start)
				}
			}
		}
	}
	for _, s := range services {
		res.Services = append(res.Services, *s)
	}
	for _, e := range edges {
		res.Edges = append(res.Edges, *e)
	}
	return res
}

func convertSpan(sp ptrace.Span, service string, red *Redactor) store.Span {
	start := sp.StartTimestamp().AsTime().UTC()
	var dur time.Duration
	if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
		dur = end.AsTime().Sub(start)
	}
	s := store.Span{
		TraceID:    sp.TraceID().String(),
		SpanID:     sp.SpanID().String(),
		Service:    service,
		Name:       sp.Name(),
		Kind:       kind(sp.Kind()),
		Start:      start,
		Duration:   dur,
		StatusCode: status(sp.Status().Code()),
		StatusMsg:  sp.Status().Message(),
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		s.ParentSpanID = p.String()
	}
	attrs := sp.Attributes()
	s.Attributes = make(map[string]string, attrs.Len())
	attrs.Range(func(k string, v pcommon.Value) bool {
		if red.Redacted(k) {
			return true
		}
		s.Attributes[k] = v.AsString()
		return true
	})
	s.RequestID = firstStr(attrs, RequestIDKeys)
	return s
}

// firstStr returns the first non-empty value among keys; a slice value
// gives its first element (HTTP header attributes are string arrays).
func firstStr(m pcommon.Map, keys []string) string {
	for _, k := range keys {
		v, ok := m.Get(k)
		if !ok {
			continue
		}
		var s string
		switch v.Type() {
		case pcommon.ValueTypeSlice:
			if v.Slice().Len() > 0 {
				s = v.Slice().At(0).AsString()
			}
		default:
			s = v.AsString()
		}
		if s != "" {
			return s
		}
	}
	return ""
}

func kind(k ptrace.SpanKind) string {
	switch k {
	case ptrace.SpanKindServer:
		return "server"
	case ptrace.SpanKindClient:
		return "client"
	case ptrace.SpanKindProducer:
		return "producer"
	case ptrace.SpanKindConsumer:
		return "consumer"
	default:
		return "internal"
	}
}

func status(c ptrace.StatusCode) string {
	switch c {
	case ptrace.StatusCodeOk:
		return "ok"
	case ptrace.StatusCodeError:
		return "error"
	default:
		return "unset"
	}
}
