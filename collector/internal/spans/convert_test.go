package spans

import (
	"encoding/hex"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
)

// Convert is the tests' reference conversion: OTLP spans to store.Span one
// field at a time, the plain way. ConvertRows, the collector's conversion,
// must give the same spans (TestConvertRowsMatchesConvert).

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
	n := td.SpanCount()
	res.Spans = make([]store.Span, 0, n)
	// The IDs' hex and the attribute values rendered from numbers go into
	// one buffer for the whole payload instead of a string each.
	a := arena{buf: make([]byte, 0, n*(32+16+16+8))}
	var d discoveries
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := serviceName(rs)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j).Spans()
			for k := 0; k < ss.Len(); k++ {
				sp := ss.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					res.Invalid++
					continue
				}
				s := convertSpan(sp, service, red, &a)
				res.Spans = append(res.Spans, s)
				d.span(sp.Kind(), service, firstStr(sp.Attributes(), PeerKeys), s.Start)
			}
		}
	}
	res.Services, res.Edges = d.result()
	return res
}

func convertSpan(sp ptrace.Span, service string, red *Redactor, a *arena) store.Span {
	start := sp.StartTimestamp().AsTime().UTC()
	var dur time.Duration
	if end := sp.EndTimestamp(); end > sp.StartTimestamp() {
		dur = end.AsTime().Sub(start)
	}
	tid, sid := sp.TraceID(), sp.SpanID()
	s := store.Span{
		TraceID:    a.hex(tid[:]),
		SpanID:     a.hex(sid[:]),
		Service:    service,
		Name:       sp.Name(),
		Kind:       kind(sp.Kind()),
		Start:      start,
		Duration:   dur,
		StatusCode: status(sp.Status().Code()),
		StatusMsg:  sp.Status().Message(),
	}
	if p := sp.ParentSpanID(); !p.IsEmpty() {
		s.ParentSpanID = a.hex(p[:])
	}
	attrs := sp.Attributes()
	s.Attributes = make(map[string]string, attrs.Len())
	for k, v := range attrs.All() {
		if red.Redacted(k) {
			continue
		}
		s.Attributes[k] = a.str(v)
	}
	s.RequestID = firstStr(attrs, RequestIDKeys)
	return s
}

// arena holds the strings Convert renders for one payload in one buffer.
// Each string is a view of bytes written once and never again (append only
// writes past them; a grown buffer leaves the old one to the strings that
// point into it).
type arena struct{ buf []byte }

func (a *arena) view(from int) string { return unsafeString(a.buf[from:]) }

func (a *arena) hex(b []byte) string {
	from := len(a.buf)
	a.buf = hex.AppendEncode(a.buf, b)
	return a.view(from)
}

// str is v.AsString(), with integers rendered into the arena.
func (a *arena) str(v pcommon.Value) string {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str()
	case pcommon.ValueTypeInt:
		from := len(a.buf)
		a.buf = strconv.AppendInt(a.buf, v.Int(), 10)
		return a.view(from)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			return "true"
		}
		return "false"
	default:
		return v.AsString()
	}
}

// firstStr returns the first non-empty value among keys (see
// firstString).
func firstStr(m pcommon.Map, keys []string) string {
	for _, k := range keys {
		if v, ok := m.Get(k); ok {
			if s := firstString(v); s != "" {
				return s
			}
		}
	}
	return ""
}
