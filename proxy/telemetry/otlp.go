package telemetry

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/meshlens/meshlens/model"
)

// The OTLP protobuf encoding of spans, written field by field into reused
// buffers (opentelemetry-proto, trace/v1 and collector/trace/v1). Building
// the generated message structs, or going through the OpenTelemetry SDK,
// costs several allocations per span; this costs none once the buffers have
// grown. The tests decode its output with the generated types.

// Field numbers of the OTLP messages written here.
const (
	fReqResourceSpans = 1 // ExportTraceServiceRequest.resource_spans

	fRSResource   = 1 // ResourceSpans.resource
	fRSScopeSpans = 2 // ResourceSpans.scope_spans

	fResAttributes = 1 // Resource.attributes

	fSSScope = 1 // ScopeSpans.scope
	fSSSpans = 2 // ScopeSpans.spans

	fScopeName    = 1 // InstrumentationScope.name
	fScopeVersion = 2 // InstrumentationScope.version

	fSpanTraceID      = 1
	fSpanSpanID       = 2
	fSpanTraceState   = 3
	fSpanParentSpanID = 4
	fSpanName         = 5
	fSpanKind         = 6
	fSpanStart        = 7
	fSpanEnd          = 8
	fSpanAttributes   = 9
	fSpanStatus       = 15
	fSpanFlags        = 16

	fStatusMessage = 2
	fStatusCode    = 3

	fKVKey   = 1
	fKVValue = 2

	fAnyString = 1
	fAnyInt    = 3
	fAnyArray  = 5

	fArrayValues = 1
)

// Enum values.
const (
	spanKindServer = 2
	spanKindClient = 3

	statusCodeError = 2

	// W3C sampled flag, plus "is remote" known and set: the parent of every
	// hop's span is in another process (the caller, or the local app).
	flagSampled         = 0x01
	flagHasIsRemote     = 0x100
	flagIsRemote        = 0x200
	scopeName           = "github.com/meshlens/meshlens/proxy/telemetry"
	scopeVersion        = "0.1.0"
	attrRequestID       = "meshlens.request_id"
	attrRequestIDHeader = "http.request.header.x-request-id"
)

// spanEncoder accumulates spans of one resource and scope and writes the
// ExportTraceServiceRequest around them.
type spanEncoder struct {
	resource []byte // encoded Resource
	scope    []byte // encoded InstrumentationScope
	spans    []byte // encoded ScopeSpans.spans fields
	span     []byte // one span, before its length is known
	status   []byte
	num      []byte
	out      []byte
	n        int
}

func newSpanEncoder(service, instance string) *spanEncoder {
	e := &spanEncoder{}
	e.resource = appendStringAttr(e.resource, fResAttributes, "service.name", service)
	e.resource = appendStringAttr(e.resource, fResAttributes, "service.instance.id", instance)
	e.resource = appendStringAttr(e.resource, fResAttributes, "telemetry.sdk.name", "meshproxy")
	e.scope = protowire.AppendTag(e.scope, fScopeName, protowire.BytesType)
	e.scope = protowire.AppendString(e.scope, scopeName)
	e.scope = protowire.AppendTag(e.scope, fScopeVersion, protowire.BytesType)
	e.scope = protowire.AppendString(e.scope, scopeVersion)
	return e
}

func (e *spanEncoder) reset() {
	e.spans = e.spans[:0]
	e.n = 0
}

// request returns the ExportTraceServiceRequest of the spans added since
// the last reset. The slice is reused by the next call.
func (e *spanEncoder) request() []byte {
	scopeSpans := sizeBytes(fSSScope, len(e.scope)) + len(e.spans)
	resourceSpans := sizeBytes(fRSResource, len(e.resource)) + sizeBytes(fRSScopeSpans, scopeSpans)
	b := e.out[:0]
	b = protowire.AppendTag(b, fReqResourceSpans, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(resourceSpans))
	b = protowire.AppendTag(b, fRSResource, protowire.BytesType)
	b = protowire.AppendBytes(b, e.resource)
	b = protowire.AppendTag(b, fRSScopeSpans, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(scopeSpans))
	b = protowire.AppendTag(b, fSSScope, protowire.BytesType)
	b = protowire.AppendBytes(b, e.scope)
	b = append(b, e.spans...)
	e.out = b
	return b
}

// add encodes h as one span.
func (e *spanEncoder) add(h *Hop) {
	b := e.span[:0]
	b = protowire.AppendTag(b, fSpanTraceID, protowire.BytesType)
	b = protowire.AppendBytes(b, h.TraceID[:])
	b = protowire.AppendTag(b, fSpanSpanID, protowire.BytesType)
	b = protowire.AppendBytes(b, h.SpanID[:])
	if h.TraceState != "" {
		b = protowire.AppendTag(b, fSpanTraceState, protowire.BytesType)
		b = protowire.AppendString(b, validUTF8(h.TraceState))
	}
	flags := uint32(flagSampled)
	if h.ParentSpanID != ([8]byte{}) {
		b = protowire.AppendTag(b, fSpanParentSpanID, protowire.BytesType)
		b = protowire.AppendBytes(b, h.ParentSpanID[:])
		flags |= flagHasIsRemote | flagIsRemote
	}
	// Span name per the HTTP conventions: "{method} {route}".
	b = protowire.AppendTag(b, fSpanName, protowire.BytesType)
	method, route := validUTF8(h.Key.Method), validUTF8(h.Key.Route)
	if route != "" {
		b = protowire.AppendVarint(b, uint64(len(method)+1+len(route)))
		b = append(b, method...)
		b = append(b, ' ')
		b = append(b, route...)
	} else {
		b = protowire.AppendString(b, method)
	}
	kind := uint64(spanKindServer)
	if h.Key.Direction == model.Outbound {
		kind = spanKindClient
	}
	b = protowire.AppendTag(b, fSpanKind, protowire.VarintType)
	b = protowire.AppendVarint(b, kind)
	start := h.Start.UnixNano()
	b = protowire.AppendTag(b, fSpanStart, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(start))
	b = protowire.AppendTag(b, fSpanEnd, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, uint64(start+int64(h.Total)))

	b = appendStringAttr(b, fSpanAttributes, "http.request.method", h.Method)
	if h.Status > 0 {
		b = appendIntAttr(b, fSpanAttributes, "http.response.status_code", int64(h.Status))
	}
	b = appendStringAttr(b, fSpanAttributes, "url.path", h.Path)
	b = appendStringAttr(b, fSpanAttributes, "http.route", h.Key.Route)
	b = appendStringAttr(b, fSpanAttributes, "server.address", h.ServerAddress)
	b = appendStringAttr(b, fSpanAttributes, "network.peer.address", h.PeerAddress)
	b = appendStringAttr(b, fSpanAttributes, "user_agent.original", h.UserAgent)
	b = appendStringAttr(b, fSpanAttributes, "network.protocol.version", h.Protocol)
	b = appendStringAttr(b, fSpanAttributes, attrRequestID, h.RequestID)
	b = appendStringArrayAttr(b, fSpanAttributes, attrRequestIDHeader, h.RequestID)
	b = appendStringAttr(b, fSpanAttributes, "meshlens.upstream.endpoint", h.UpstreamEndpoint)
	if h.GRPCStatus >= 0 {
		b = appendIntAttr(b, fSpanAttributes, "rpc.grpc.status_code", int64(h.GRPCStatus))
	}
	b = appendStringAttr(b, fSpanAttributes, "meshlens.hop.direction", string(h.Key.Direction))
	b = appendStringAttr(b, fSpanAttributes, "meshlens.peer.service", h.Key.Peer)
	b = appendStringAttr(b, fSpanAttributes, "error.type", h.Err)

	if msg, isErr := e.spanError(h); isErr {
		st := e.status[:0]
		if len(msg) > 0 {
			st = protowire.AppendTag(st, fStatusMessage, protowire.BytesType)
			st = protowire.AppendBytes(st, msg)
		}
		st = protowire.AppendTag(st, fStatusCode, protowire.VarintType)
		st = protowire.AppendVarint(st, statusCodeError)
		e.status = st
		b = protowire.AppendTag(b, fSpanStatus, protowire.BytesType)
		b = protowire.AppendBytes(b, st)
	}
	b = protowire.AppendTag(b, fSpanFlags, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, flags)
	e.span = b

	e.spans = protowire.AppendTag(e.spans, fSSSpans, protowire.BytesType)
	e.spans = protowire.AppendBytes(e.spans, b)
	e.n++
}

// spanError says whether h's span has status Error, and its message: the
// proxy's own error, a 5xx, or a gRPC error — any non-OK code on a CLIENT
// span, a server-class code (model.GRPCStatusClass "5xx") on a SERVER span,
// as the gRPC semantic conventions say.
func (e *spanEncoder) spanError(h *Hop) ([]byte, bool) {
	m := e.num[:0]
	defer func() { e.num = m[:0] }()
	switch {
	case h.Err != "":
		m = append(m, validUTF8(h.Err)...)
		return m, true
	case h.GRPCStatus > 0 && (h.Key.Direction == model.Outbound || model.GRPCStatusClass(h.GRPCStatus) == "5xx"):
		m = append(m, "grpc-status "...)
		m = strconv.AppendInt(m, int64(h.GRPCStatus), 10)
		return m, true
	case h.Status >= 500:
		m = append(m, "HTTP "...)
		m = strconv.AppendInt(m, int64(h.Status), 10)
		return m, true
	}
	return nil, false
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD: protobuf
// strings must be UTF-8, and a receiver rejects the whole request over one
// bad byte (header values such as User-Agent may carry any octet). It
// allocates only for an invalid s.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func sizeBytes(field protowire.Number, n int) int {
	return protowire.SizeTag(field) + protowire.SizeBytes(n)
}

// appendStringAttr appends a KeyValue with a string AnyValue as field
// number field; an empty value is left out.
func appendStringAttr(b []byte, field protowire.Number, key, val string) []byte {
	if val == "" {
		return b
	}
	val = validUTF8(val)
	anyLen := sizeBytes(fAnyString, len(val))
	kvLen := sizeBytes(fKVKey, len(key)) + sizeBytes(fKVValue, anyLen)
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, fKVKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
	return protowire.AppendString(b, val)
}

// appendIntAttr appends a KeyValue with an int AnyValue.
func appendIntAttr(b []byte, field protowire.Number, key string, val int64) []byte {
	anyLen := protowire.SizeTag(fAnyInt) + protowire.SizeVarint(uint64(val))
	kvLen := sizeBytes(fKVKey, len(key)) + sizeBytes(fKVValue, anyLen)
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, fKVKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, fAnyInt, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(val))
}

// appendStringArrayAttr appends a KeyValue whose value is an array of one
// string, the type the HTTP conventions give header attributes.
func appendStringArrayAttr(b []byte, field protowire.Number, key, val string) []byte {
	if val == "" {
		return b
	}
	val = validUTF8(val)
	inner := sizeBytes(fAnyString, len(val))
	arr := sizeBytes(fArrayValues, inner)
	anyLen := sizeBytes(fAnyArray, arr)
	kvLen := sizeBytes(fKVKey, len(key)) + sizeBytes(fKVValue, anyLen)
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvLen))
	b = protowire.AppendTag(b, fKVKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fKVValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, fAnyArray, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(arr))
	b = protowire.AppendTag(b, fArrayValues, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
	return protowire.AppendString(b, val)
}
