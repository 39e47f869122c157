package jaeger

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// The answers are decoded into these types, written from Jaeger's documented
// JSON model (the one Grafana's Jaeger data source decodes, see its
// pkg/tsdb/jaeger types), strictly: a field outside the model fails.
type (
	jEnvelope[T any] struct {
		Data   T        `json:"data"`
		Total  int      `json:"total"`
		Limit  int      `json:"limit"`
		Offset int      `json:"offset"`
		Errors []jError `json:"errors"`
	}
	jError struct {
		Code    int    `json:"code"`
		Msg     string `json:"msg"`
		TraceID string `json:"traceID"`
	}
	jTrace struct {
		TraceID   string              `json:"traceID"`
		Spans     []jSpan             `json:"spans"`
		Processes map[string]jProcess `json:"processes"`
		Warnings  []string            `json:"warnings"`
	}
	jSpan struct {
		TraceID       string       `json:"traceID"`
		SpanID        string       `json:"spanID"`
		Flags         int          `json:"flags"`
		OperationName string       `json:"operationName"`
		References    []jReference `json:"references"`
		StartTime     int64        `json:"startTime"`
		Duration      int64        `json:"duration"`
		Tags          []jKeyValue  `json:"tags"`
		Logs          []jLog       `json:"logs"`
		ProcessID     string       `json:"processID"`
		Warnings      []string     `json:"warnings"`
	}
	jReference struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	}
	jProcess struct {
		ServiceName string      `json:"serviceName"`
		Tags        []jKeyValue `json:"tags"`
	}
	jLog struct {
		Timestamp int64       `json:"timestamp"`
		Fields    []jKeyValue `json:"fields"`
	}
	jKeyValue struct {
		Key   string `json:"key"`
		Type  string `json:"type"`
		Value any    `json:"value"`
	}
	jDependency struct {
		Parent    string `json:"parent"`
		Child     string `json:"child"`
		CallCount int    `json:"callCount"`
	}
	jOperation struct {
		Name     string `json:"name"`
		SpanKind string `json:"spanKind"`
	}
)

const (
	traceA = "4bf92f3577b34da6a3ce929d0e0e4736" // frontend → checkout → payments, payments fails
	traceB = "00000000000000000000000000c0ffee" // frontend → checkout, fast
)

// t0 is the start of the fixture's minute; the handler's clock stands a
// little after it.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fixture fills a real SQLite store with two traces, the services, edges and
// a minute of rollups.
func fixture(t *testing.T) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ms := time.Millisecond
	span := func(trace, id, parent, svc, name, kind string, start, dur time.Duration, status, reqID string, attrs map[string]string) store.Span {
		return store.Span{TraceID: trace, SpanID: id, ParentSpanID: parent, Service: svc, Name: name, Kind: kind,
			Start: t0.Add(start), Duration: dur, StatusCode: status, RequestID: reqID, Attributes: attrs}
	}
	spans := []store.Span{
		span(traceA, "a000000000000001", "", "frontend", "GET /checkout", "server", 0, 120*ms, "unset", "req-a",
			map[string]string{"http.route": "/checkout", "http.response.status_code": "502"}),
		span(traceA, "a000000000000002", "a000000000000001", "frontend", "POST /pay", "client", 2*ms, 110*ms, "error", "req-a",
			map[string]string{"server.address": "checkout", "http.response.status_code": "502"}),
		span(traceA, "a000000000000003", "a000000000000002", "checkout", "POST /pay", "server", 3*ms, 105*ms, "error", "req-a",
			map[string]string{"http.route": "/pay", "http.response.status_code": "502"}),
		span(traceA, "a000000000000004", "a000000000000003", "payments", "POST /charge", "server", 5*ms, 100*ms, "error", "req-a",
			map[string]string{"http.route": "/charge", "http.response.status_code": "503"}),
		span(traceB, "b000000000000001", "", "frontend", "GET /cart", "server", 10*ms, 4*ms, "unset", "req-b",
			map[string]string{"http.route": "/cart", "http.response.status_code": "200"}),
		span(traceB, "b000000000000002", "b000000000000001", "checkout", "GET /cart", "server", 11*ms, 2*ms, "ok", "req-b",
			map[string]string{"http.route": "/cart", "http.response.status_code": "200"}),
	}
	if err := st.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveServices(ctx, []store.Service{
		{Name: "frontend", FirstSeen: t0, LastSeen: t0, HasProxy: true},
		{Name: "checkout", FirstSeen: t0, LastSeen: t0, HasProxy: true},
		{Name: "payments", FirstSeen: t0, LastSeen: t0, HasProxy: true},
		{Name: "ledger", FirstSeen: t0, LastSeen: t0},
	}); err != nil {
		t.Fatal(err)
	}
	if err := st.ObserveEdges(ctx, []store.Edge{
		{Caller: "frontend", Callee: "checkout", FirstSeen: t0, LastSeen: t0},
		{Caller: "checkout", Callee: "payments", FirstSeen: t0, LastSeen: t0},
		{Caller: "payments", Callee: "ledger", FirstSeen: t0, LastSeen: t0},
		{Caller: "old", Callee: "gone", FirstSeen: t0.Add(-72 * time.Hour), LastSeen: t0.Add(-71 * time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	h := hdr.New()
	hdr.Record(h, 1500)
	enc, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	rollup := func(svc string, dir model.Direction, peer, status string, count int64) store.Rollup {
		return store.Rollup{Minute: t0, Source: "test", Count: count, Total: enc, Upstream: enc, Overhead: enc,
			Key: model.HopKey{Service: svc, Direction: dir, Peer: peer, Route: "/x", Method: "GET", StatusClass: status}}
	}
	if err := st.WriteRollups(ctx, []store.Rollup{
		// frontend → checkout measured on both sides: counted once, from the caller.
		rollup("frontend", model.Outbound, "checkout", "2xx", 90),
		rollup("frontend", model.Outbound, "checkout", "5xx", 10),
		rollup("checkout", model.Inbound, "frontend", "2xx", 95),
		// checkout → payments seen only at the callee.
		rollup("payments", model.Inbound, "checkout", "2xx", 40),
	}); err != nil {
		t.Fatal(err)
	}
	return st
}

func newTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newHandler(fixture(t), nil, func() time.Time { return t0.Add(5 * time.Minute) }))
	t.Cleanup(srv.Close)
	return srv
}

// get fetches path and decodes the envelope strictly into T.
func get[T any](t *testing.T, srv *httptest.Server, path string, wantStatus int) jEnvelope[T] {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("GET %s: HTTP %d, want %d: %s", path, resp.StatusCode, wantStatus, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	var env jEnvelope[T]
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		t.Fatalf("GET %s: answer does not decode into Jaeger's model: %v\n%s", path, err, body)
	}
	return env
}

func us(tm time.Time) string { return fmt.Sprint(tm.UnixMicro()) }
func ms(tm time.Time) string { return fmt.Sprint(tm.UnixMilli()) }

func TestServicesAndOperations(t *testing.T) {
	srv := newTestServer(t)
	svcs := get[[]string](t, srv, "/api/services", 200)
	if want := []string{"checkout", "frontend", "ledger", "payments"}; !reflect.DeepEqual(svcs.Data, want) || svcs.Total != 4 || svcs.Errors != nil {
		t.Fatalf("services = %+v, want %v", svcs, want)
	}
	ops := get[[]string](t, srv, "/api/services/checkout/operations", 200)
	if want := []string{"GET /cart", "POST /pay"}; !reflect.DeepEqual(ops.Data, want) {
		t.Fatalf("operations = %v, want %v", ops.Data, want)
	}
	kinds := get[[]jOperation](t, srv, "/api/operations?service=frontend", 200)
	want := []jOperation{{"GET /cart", "server"}, {"GET /checkout", "server"}, {"POST /pay", "client"}}
	if !reflect.DeepEqual(kinds.Data, want) {
		t.Fatalf("/api/operations = %v, want %v", kinds.Data, want)
	}
	clients := get[[]jOperation](t, srv, "/api/operations?service=frontend&spanKind=client", 200)
	if !reflect.DeepEqual(clients.Data, []jOperation{{"POST /pay", "client"}}) {
		t.Fatalf("client operations = %v", clients.Data)
	}
	none := get[[]string](t, srv, "/api/services/nobody/operations", 200)
	if len(none.Data) != 0 || none.Data == nil {
		t.Fatalf("operations of an unknown service = %#v, want []", none.Data)
	}
}

// TestSearchAsGrafana sends the searches Grafana's Jaeger data source sends:
// the frontend form (Grafana 10: tags as JSON, start and end in µs,
// lookback=custom) and the backend client (Grafana 11: no lookback).
func TestSearchAsGrafana(t *testing.T) {
	srv := newTestServer(t)
	start, end := us(t0.Add(-time.Hour)), us(t0.Add(time.Hour))
	f := func(name string, q url.Values, want ...string) {
		t.Helper()
		env := get[[]jTrace](t, srv, "/api/traces?"+q.Encode(), 200)
		var got []string
		for _, tr := range env.Data {
			got = append(got, tr.TraceID)
		}
		if !reflect.DeepEqual(got, want) || env.Total != len(want) {
			t.Fatalf("%s: traces %v (total %d), want %v", name, got, env.Total, want)
		}
	}
	f("grafana 10 frontend", url.Values{"service": {"checkout"}, "operation": {"POST /pay"}, "tags": {`{"http.route":"/pay"}`},
		"minDuration": {"100ms"}, "limit": {"20"}, "start": {start}, "end": {end}, "lookback": {"custom"}}, traceA)
	f("grafana backend, newest first", url.Values{"service": {"checkout"}, "limit": {"20"}, "start": {start}, "end": {end}}, traceB, traceA)
	f("limit", url.Values{"service": {"checkout"}, "limit": {"1"}, "start": {start}, "end": {end}}, traceB)
	f("maxDuration", url.Values{"service": {"checkout"}, "maxDuration": {"50ms"}, "start": {start}, "end": {end}}, traceB)
	f("error tag (derived from the span status)", url.Values{"service": {"payments"}, "tags": {`{"error":"true"}`}, "start": {start}, "end": {end}}, traceA)
	f("error tag on a healthy service", url.Values{"service": {"frontend"}, "tags": {`{"error":"true","span.kind":"server"}`}, "start": {start}, "end": {end}})
	f("span.kind client", url.Values{"service": {"frontend"}, "tags": {`{"span.kind":"client"}`}, "start": {start}, "end": {end}}, traceA)
	f("request_id tag", url.Values{"service": {"checkout"}, "tags": {`{"request_id":"req-b"}`}, "start": {start}, "end": {end}}, traceB)
	f("request_id of another service's trace", url.Values{"service": {"ledger"}, "tags": {`{"request_id":"req-b"}`}, "start": {start}, "end": {end}})
	f("jaeger ui tag param", url.Values{"service": {"payments"}, "tag": {"http.route:/charge"}, "lookback": {"1h"}}, traceA)
	f("window before the traces", url.Values{"service": {"checkout"}, "start": {us(t0.Add(-2 * time.Hour))}, "end": {us(t0.Add(-time.Hour))}})
	f("default window (now - 48h)", url.Values{"service": {"checkout"}}, traceB, traceA)
	f("traceID list", url.Values{"traceID": {"c0ffee", traceA}}, traceB, traceA)
}

func TestTraceByID(t *testing.T) {
	srv := newTestServer(t)
	// Grafana with traceIdTimeParams on adds start and end (ms).
	env := get[[]jTrace](t, srv, "/api/traces/"+traceA+"?start="+ms(t0)+"&end="+ms(t0.Add(time.Hour)), 200)
	if len(env.Data) != 1 {
		t.Fatalf("got %d traces", len(env.Data))
	}
	tr := env.Data[0]
	if tr.TraceID != traceA || len(tr.Spans) != 4 || len(tr.Processes) != 3 {
		t.Fatalf("trace %s: %d spans, %d processes", tr.TraceID, len(tr.Spans), len(tr.Processes))
	}
	// Every parent is a CHILD_OF reference to a span of the trace; every
	// process ID resolves; times are µs.
	ids := map[string]bool{}
	for _, s := range tr.Spans {
		ids[s.SpanID] = true
	}
	for _, s := range tr.Spans {
		for _, r := range s.References {
			if r.RefType != "CHILD_OF" || r.TraceID != traceA || !ids[r.SpanID] {
				t.Fatalf("span %s: bad reference %+v", s.SpanID, r)
			}
		}
		if _, ok := tr.Processes[s.ProcessID]; !ok {
			t.Fatalf("span %s: process %q not in processes", s.SpanID, s.ProcessID)
		}
	}
	root := tr.Spans[0]
	if root.SpanID != "a000000000000001" || len(root.References) != 0 || root.StartTime != t0.UnixMicro() || root.Duration != 120000 {
		t.Fatalf("root span = %+v", root)
	}
	payments := tr.Spans[3]
	if tr.Processes[payments.ProcessID].ServiceName != "payments" {
		t.Fatalf("last span's process is %+v", tr.Processes[payments.ProcessID])
	}
	tags := map[string]jKeyValue{}
	for _, kv := range payments.Tags {
		tags[kv.Key] = kv
	}
	if kv := tags["http.response.status_code"]; kv.Type != "int64" || kv.Value != float64(503) {
		t.Fatalf("status code tag = %+v, want int64 503", kv)
	}
	if kv := tags["error"]; kv.Type != "bool" || kv.Value != true {
		t.Fatalf("error tag = %+v, want bool true", kv)
	}

	// The same trace by request ID, and a short (Jaeger-style) trace ID.
	byReq := get[[]jTrace](t, srv, "/api/traces/req-a", 200)
	if byReq.Data[0].TraceID != traceA {
		t.Fatalf("by request ID: %s", byReq.Data[0].TraceID)
	}
	short := get[[]jTrace](t, srv, "/api/traces/C0FFEE", 200)
	if short.Data[0].TraceID != traceB {
		t.Fatalf("short ID: %s", short.Data[0].TraceID)
	}

	// The answer's bytes are the golden file's.
	resp, err := http.Get(srv.URL + "/api/traces/" + traceA)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	golden := filepath.Join("testdata", "trace.json")
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	if *update {
		_ = os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(golden); err != nil || !bytes.Equal(pretty.Bytes(), want) {
		t.Fatalf("trace answer differs from %s (%v); run go test ./jaeger -update and review", golden, err)
	}
}

func TestDependencies(t *testing.T) {
	srv := newTestServer(t)
	end := t0.Add(time.Hour)
	// As Grafana sends it: endTs and lookback in ms.
	env := get[[]jDependency](t, srv, "/api/dependencies?endTs="+ms(end)+"&lookback="+fmt.Sprint((2*time.Hour).Milliseconds()), 200)
	want := []jDependency{
		{"checkout", "payments", 40},  // only the callee measured it
		{"frontend", "checkout", 100}, // both sides: the caller's count
		{"payments", "ledger", 0},     // discovered, no rollups
	}
	if !reflect.DeepEqual(env.Data, want) {
		t.Fatalf("dependencies = %+v, want %+v", env.Data, want)
	}
	old := get[[]jDependency](t, srv, "/api/dependencies?endTs="+ms(t0.Add(-70*time.Hour))+"&lookback=7200000", 200)
	if !reflect.DeepEqual(old.Data, []jDependency{{"old", "gone", 0}}) {
		t.Fatalf("old window = %+v", old.Data)
	}
}

func TestBadRequests(t *testing.T) {
	srv := newTestServer(t)
	f := func(path string, status int, msgPart string) {
		t.Helper()
		env := get[any](t, srv, path, status)
		if len(env.Errors) != 1 || env.Errors[0].Code != status || !strings.Contains(env.Errors[0].Msg, msgPart) || env.Data != nil {
			t.Fatalf("GET %s: %+v, want one error %d containing %q", path, env, status, msgPart)
		}
	}
	f("/api/traces", 400, "'service'")
	f("/api/traces?service=a&minDuration=soon", 400, "'minDuration'")
	f("/api/traces?service=a&start=now", 400, "'start'")
	f("/api/traces?service=a&limit=-3", 400, "'limit'")
	f("/api/traces?service=a&tags=%7Bnope", 400, "'tags'")
	f("/api/operations", 400, "'service'")
	f("/api/dependencies?endTs=yesterday", 400, "'endTs'")
	f("/api/dependencies?lookback=-1", 400, "'lookback'")
	f("/api/traces/"+traceA+"?start=x", 400, "'start'")
	f("/api/traces/ffffffffffffffffffffffffffffffff", 404, "trace not found")
	f("/api/traces/no-such-request", 404, "trace not found")
	f("/api/nothing", 404, "no such endpoint")

	// Trace IDs that are all missing: 404, each named in errors.
	env := get[[]jTrace](t, srv, "/api/traces?traceID=abc&traceID=def", 404)
	if len(env.Data) != 0 || len(env.Errors) != 2 || env.Errors[1].TraceID != "00000000000000000000000000000def" {
		t.Fatalf("missing trace IDs: %+v", env)
	}
}

// TestSearchPagesThroughCandidates: a search on a derived tag finds an error
// trace older than more healthy traces than one page of candidates holds.
func TestSearchPagesThroughCandidates(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var spans []store.Span
	const healthy = 2*pageSize + 50
	for i := 0; i <= healthy; i++ {
		status := "ok"
		if i == 0 {
			status = "error" // the oldest trace
		}
		spans = append(spans, store.Span{TraceID: fmt.Sprintf("%032x", i+1), SpanID: fmt.Sprintf("%016x", i+1),
			Service: "bulk", Name: "GET /", Kind: "server", Start: t0.Add(time.Duration(i) * time.Millisecond),
			Duration: time.Millisecond, StatusCode: status})
	}
	if err := st.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(newHandler(st, nil, func() time.Time { return t0.Add(time.Minute) }))
	defer srv.Close()
	env := get[[]jTrace](t, srv, "/api/traces?service=bulk&limit=20&tags="+url.QueryEscape(`{"error":"true"}`), 200)
	if len(env.Data) != 1 || env.Data[0].TraceID != fmt.Sprintf("%032x", 1) {
		t.Fatalf("error search found %d traces, want the oldest one", len(env.Data))
	}
	ok := get[[]jTrace](t, srv, "/api/traces?service=bulk&limit=5&tags="+url.QueryEscape(`{"otel.status_code":"OK"}`), 200)
	if len(ok.Data) != 5 || ok.Data[0].TraceID != fmt.Sprintf("%032x", healthy+1) {
		t.Fatalf("OK search = %d traces, first %v", len(ok.Data), ok.Data)
	}
}
