package jaeger

import (
	"sort"
	"strconv"

	"github.com/meshlens/meshlens/store"
)

// Tags meshlens adds to every span from the span's own fields, the way
// Jaeger's OTLP translator does, so that searches and the trace view speak
// the names Jaeger users know.
const (
	tagSpanKind   = "span.kind"
	tagStatusCode = "otel.status_code"
	tagStatusMsg  = "otel.status_description"
	tagError      = "error"
	tagRequestID  = "request_id"
)

// intAttributes are the OpenTelemetry semantic-convention attributes whose
// values are integers; the store keeps every attribute as a string, and the
// trace view shows these typed.
var intAttributes = map[string]bool{
	"http.response.status_code":  true,
	"http.status_code":           true,
	"http.request.body.size":     true,
	"http.response.body.size":    true,
	"http.request.resend_count":  true,
	"server.port":                true,
	"client.port":                true,
	"network.peer.port":          true,
	"network.local.port":         true,
	"rpc.grpc.status_code":       true,
	"http.request.header.length": true,
}

// toTrace turns the stored spans of one trace into Jaeger's trace model:
// spans ordered by start time, parents as CHILD_OF references, one process
// per service (p1, p2, … in order of first appearance), tags typed and
// sorted by key. spans must not be empty.
func toTrace(spans []store.Span) Trace {
	sorted := make([]store.Span, len(spans))
	copy(sorted, spans)
	sort.SliceStable(sorted, func(i, j int) bool {
		if !sorted[i].Start.Equal(sorted[j].Start) {
			return sorted[i].Start.Before(sorted[j].Start)
		}
		return sorted[i].SpanID < sorted[j].SpanID
	})

	traceID := normalizeTraceID(sorted[0].TraceID)
	t := Trace{
		TraceID:   traceID,
		Spans:     make([]Span, 0, len(sorted)),
		Processes: map[string]Process{},
	}
	processOf := map[string]string{}
	for _, s := range sorted {
		pid, ok := processOf[s.Service]
		if !ok {
			pid = "p" + strconv.Itoa(len(processOf)+1)
			processOf[s.Service] = pid
			t.Processes[pid] = Process{ServiceName: s.Service, Tags: []KeyValue{}}
		}
		t.Spans = append(t.Spans, toSpan(traceID, s, pid))
	}
	return t
}

func toSpan(traceID string, s store.Span, processID string) Span {
	refs := []Reference{}
	if s.ParentSpanID != "" {
		refs = append(refs, Reference{RefType: RefChildOf, TraceID: traceID, SpanID: s.ParentSpanID})
	}
	return Span{
		TraceID:       traceID,
		SpanID:        s.SpanID,
		Flags:         1, // sampled: only sampled spans reach the store
		OperationName: s.Name,
		References:    refs,
		StartTime:     s.Start.UnixMicro(),
		Duration:      s.Duration.Microseconds(),
		Tags:          spanTags(s),
		Logs:          []Log{},
		ProcessID:     processID,
	}
}

// spanTags returns the span's attributes as typed tags plus the tags derived
// from its kind, status and request ID, sorted by key.
func spanTags(s store.Span) []KeyValue {
	tags := make([]KeyValue, 0, len(s.Attributes)+5)
	for k, v := range s.Attributes {
		tags = append(tags, typedTag(k, v))
	}
	has := func(key string) bool { _, ok := s.Attributes[key]; return ok }
	for key, value := range derivedTags(s) {
		if has(key) {
			continue // the span's own attribute wins
		}
		if key == tagError {
			tags = append(tags, KeyValue{Key: key, Type: ValueBool, Value: true})
			continue
		}
		tags = append(tags, KeyValue{Key: key, Type: ValueString, Value: value})
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i].Key < tags[j].Key })
	return tags
}

// derivedTags are the tags a span gets from its fields rather than its
// attributes. An error span has "error" (a bool tag, value "true" here).
func derivedTags(s store.Span) map[string]string {
	d := map[string]string{}
	if s.Kind != "" && s.Kind != "internal" {
		d[tagSpanKind] = s.Kind
	}
	switch s.StatusCode {
	case "ok":
		d[tagStatusCode] = "OK"
	case "error":
		d[tagStatusCode] = "ERROR"
		d[tagError] = "true"
	}
	if s.StatusMsg != "" {
		d[tagStatusMsg] = s.StatusMsg
	}
	if s.RequestID != "" {
		d[tagRequestID] = s.RequestID
	}
	return d
}

// typedTag types a stored (string) attribute: integer semantic-convention
// attributes become int64 when they parse, everything else stays a string.
func typedTag(key, value string) KeyValue {
	if intAttributes[key] {
		if n, err := strconv.ParseInt(value, 10, 64); err == nil {
			return KeyValue{Key: key, Type: ValueInt64, Value: n}
		}
	}
	return KeyValue{Key: key, Type: ValueString, Value: value}
}

// spanMatches reports whether a stored span carries every tag in want, its
// attributes and derived tags alike. It is how searches on derived tags
// (error, span.kind, otel.status_code) are answered.
func spanMatches(s store.Span, want map[string]string) bool {
	if len(want) == 0 {
		return true
	}
	derived := derivedTags(s)
	for k, v := range want {
		if got, ok := s.Attributes[k]; ok {
			if got != v {
				return false
			}
			continue
		}
		if got, ok := derived[k]; !ok || got != v {
			return false
		}
	}
	return true
}
