package jaeger

import (
	"reflect"
	"testing"
	"time"

	"github.com/meshlens/meshlens/store"
)

func TestToTrace(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const tid = "0af7651916cd43dd8448eb211c80319c"
	spans := []store.Span{ // out of order on purpose
		{TraceID: tid, SpanID: "b7ad6b7169203331", ParentSpanID: "00f067aa0ba902b7", Service: "checkout", Name: "GET /pay",
			Kind: "server", Start: t0.Add(2 * time.Millisecond), Duration: 3 * time.Millisecond, StatusCode: "error", StatusMsg: "upstream 503",
			Attributes: map[string]string{"http.response.status_code": "503", "http.route": "/pay"}},
		{TraceID: tid, SpanID: "00f067aa0ba902b7", Service: "frontend", Name: "GET /pay", Kind: "client",
			Start: t0, Duration: 5500 * time.Microsecond, StatusCode: "unset", RequestID: "req-1",
			Attributes: map[string]string{"server.port": "x80"}},
	}
	got := toTrace(spans)
	want := Trace{
		TraceID: tid,
		Spans: []Span{
			{TraceID: tid, SpanID: "00f067aa0ba902b7", Flags: 1, OperationName: "GET /pay", References: []Reference{},
				StartTime: t0.UnixMicro(), Duration: 5500, ProcessID: "p1", Logs: []Log{},
				Tags: []KeyValue{
					{Key: "request_id", Type: "string", Value: "req-1"},
					{Key: "server.port", Type: "string", Value: "x80"}, // not an integer: stays a string
					{Key: "span.kind", Type: "string", Value: "client"},
				}},
			{TraceID: tid, SpanID: "b7ad6b7169203331", Flags: 1, OperationName: "GET /pay",
				References: []Reference{{RefType: "CHILD_OF", TraceID: tid, SpanID: "00f067aa0ba902b7"}},
				StartTime:  t0.Add(2 * time.Millisecond).UnixMicro(), Duration: 3000, ProcessID: "p2", Logs: []Log{},
				Tags: []KeyValue{
					{Key: "error", Type: "bool", Value: true},
					{Key: "http.response.status_code", Type: "int64", Value: int64(503)},
					{Key: "http.route", Type: "string", Value: "/pay"},
					{Key: "otel.status_code", Type: "string", Value: "ERROR"},
					{Key: "otel.status_description", Type: "string", Value: "upstream 503"},
					{Key: "span.kind", Type: "string", Value: "server"},
				}},
		},
		Processes: map[string]Process{
			"p1": {ServiceName: "frontend", Tags: []KeyValue{}},
			"p2": {ServiceName: "checkout", Tags: []KeyValue{}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("toTrace\n got %+v\nwant %+v", got, want)
	}
}

func TestSpanMatches(t *testing.T) {
	s := store.Span{Kind: "server", StatusCode: "error", Attributes: map[string]string{"http.route": "/pay", "error": "custom"}}
	f := func(want map[string]string, ok bool) {
		t.Helper()
		if got := spanMatches(s, want); got != ok {
			t.Fatalf("spanMatches(%v) = %v, want %v", want, got, ok)
		}
	}
	f(nil, true)
	f(map[string]string{"http.route": "/pay"}, true)
	f(map[string]string{"http.route": "/other"}, false)
	f(map[string]string{"span.kind": "server", "otel.status_code": "ERROR"}, true)
	f(map[string]string{"span.kind": "client"}, false)
	f(map[string]string{"error": "true"}, false) // the span's own attribute wins
	f(map[string]string{"error": "custom"}, true)
	f(map[string]string{"missing": "x"}, false)
}
