package hdrreceiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/collector/receiver"
	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The SQLite driver and the OTel SDK keep process-wide goroutines.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func encoded(t testing.TB, values ...int64) string {
	t.Helper()
	h := hdr.New()
	for _, v := range values {
		hdr.Record(h, v)
	}
	s, err := hdr.Encode(h)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodHop(t testing.TB) model.HopHistograms {
	e := encoded(t, 1000, 2000, 3000)
	return model.HopHistograms{
		HopKey: model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "payments", Route: "/pay", Method: "POST", StatusClass: "2xx"},
		Total:  e, Upstream: e, Overhead: encoded(t, 10, 20, 30),
	}
}

func batch(t testing.TB, now time.Time, hops ...model.HopHistograms) model.HistogramBatch {
	return model.HistogramBatch{Instance: "i-1", Service: "checkout", Intervals: []model.Interval{{
		Seq: 7, StartUnixMs: now.Add(-10 * time.Second).UnixMilli(), EndUnixMs: now.UnixMilli(), Hops: hops,
	}}}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestReceiver starts a receiver on a loopback port with sinks for both
// signals.
func newTestReceiver(t testing.TB, token string) (*hdrReceiver, *consumertest.LogsSink, *consumertest.TracesSink, *meshlensextension.Extension) {
	t.Helper()
	host, ext := testhost.Start(t, testhost.Options{IngestToken: token})
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Endpoint = testhost.FreeAddr(t)
	set := receiver.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	logs, traces := new(consumertest.LogsSink), new(consumertest.TracesSink)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := f.CreateTraces(context.Background(), set, cfg, traces)
	if err != nil {
		t.Fatal(err)
	}
	if lr.(*hdrReceiver) != tr.(*hdrReceiver) {
		t.Fatal("the traces and logs receivers of one config must share one server")
	}
	for _, c := range []component.Component{lr, tr} {
		if err := c.Start(context.Background(), host); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range []component.Component{lr, tr} {
			if err := c.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		}
	})
	return lr.(*hdrReceiver), logs, traces, ext
}

func TestLifecycle(t *testing.T) {
	r, _, _, _ := newTestReceiver(t, "")
	resp, err := http.Get("http://" + r.cfg.Endpoint + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /nothing: %d, want 404", resp.StatusCode)
	}
}

func TestConfigValidate(t *testing.T) {
	f := func(mutate func(*Config), want string) {
		t.Helper()
		cfg := createDefaultConfig().(*Config)
		mutate(cfg)
		err := cfg.Validate()
		if want == "" {
			if err != nil {
				t.Errorf("unexpected error %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want one naming %q", err, want)
		}
	}
	f(func(*Config) {}, "")
	f(func(c *Config) { c.Endpoint = "nope" }, "endpoint")
	f(func(c *Config) { c.MaxHistogramBytes = 10 }, "max_histogram_bytes")
	f(func(c *Config) { c.MaxHistogramBytes = 1 << 20 }, "max_histogram_bytes")
	f(func(c *Config) { c.MaxTraceBytes = 0 }, "max_trace_bytes")
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	_, _ = z.Write(b)
	_ = z.Close()
	return buf.Bytes()
}

// outOfRange encodes a histogram with a wider geometry holding a value above
// the one-hour limit.
func outOfRange(t testing.TB) string {
	h := hdrhistogram.New(1, 86_400_000_000, 3)
	if err := h.RecordValue(7_200_000_000); err != nil {
		t.Fatal(err)
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHistogramsBadInput(t *testing.T) {
	const token = "s3cret-token-0123456789"
	r, sink, _, ext := newTestReceiver(t, token)
	url := "http://" + r.cfg.Endpoint + model.HistogramPath
	now := time.Now()
	good := goodHop(t)
	truncated := good
	truncated.Total = good.Total[:len(good.Total)/2]
	corrupt := good
	raw, _ := base64.StdEncoding.DecodeString(good.Total)
	raw[len(raw)-3] ^= 0xff
	corrupt.Total = base64.StdEncoding.EncodeToString(raw)
	notBase64 := good
	notBase64.Upstream = "HIST!!not base64"
	rangeHop := good
	rangeHop.Total = outOfRange(t)
	badDir := good
	badDir.Direction = "sideways"
	empty := good
	empty.Total = encoded(t)
	future := batch(t, now.Add(time.Hour), good)
	stale := batch(t, now.Add(-48*time.Hour), good)
	partial := batch(t, now, good, badDir)
	idle := batch(t, now)
	idle.Intervals[0].Hops = []model.HopHistograms{}
	mixed := batch(t, now, good)
	mixed.Intervals = append(mixed.Intervals, future.Intervals[0])

	type tc struct {
		name        string
		body        []byte
		contentType string
		encoding    string
		noToken     bool
		status      int
		want        string // in the answer body
		reason      string // counted in meshlens_collector_rejected_total
		taken       int    // hops that reached the pipeline
	}
	cases := []tc{
		{name: "good", body: mustJSON(t, batch(t, now, good)), status: 200, want: `"accepted_hops":1`, taken: 1},
		{name: "good gzip", body: gzipped(mustJSON(t, batch(t, now, good))), encoding: "gzip", status: 200, taken: 1},
		{name: "no token", body: mustJSON(t, batch(t, now, good)), noToken: true, status: 401, want: "bearer token", reason: reasonUnauthorized},
		{name: "wrong content type", body: mustJSON(t, batch(t, now, good)), contentType: "text/plain", status: 415, want: "Content-Type", reason: reasonBadEncoding},
		{name: "unknown encoding", body: []byte("x"), encoding: "br", status: 415, want: "Content-Encoding", reason: reasonBadEncoding},
		{name: "corrupt gzip", body: []byte("not gzip at all"), encoding: "gzip", status: 400, want: "gzip", reason: reasonBadEncoding},
		{name: "oversized", body: bytes.Repeat([]byte(" "), model.MaxHistogramBatchBytes+10), status: 413, want: "too large", reason: reasonTooLarge},
		{name: "oversized after gunzip", body: gzipped(bytes.Repeat([]byte(" "), model.MaxHistogramBatchBytes+10)), encoding: "gzip", status: 413, want: "too large", reason: reasonTooLarge},
		{name: "not json", body: []byte("{{{"), status: 400, want: "bad histogram batch", reason: reasonBadBatch},
		{name: "unknown field", body: []byte(`{"instance":"i","service":"s","intervals":[],"extra":1}`), status: 400, want: "extra", reason: reasonBadBatch},
		{name: "no instance", body: mustJSON(t, model.HistogramBatch{Service: "s", Intervals: batch(t, now, good).Intervals}), status: 400, want: "instance", reason: reasonBadBatch},
		{name: "truncated histogram", body: mustJSON(t, batch(t, now, truncated)), status: 400, want: "hops[0].total", reason: reasonBadHistogram},
		{name: "corrupt histogram", body: mustJSON(t, batch(t, now, corrupt)), status: 400, want: "hops[0].total", reason: reasonBadHistogram},
		{name: "not base64", body: mustJSON(t, batch(t, now, notBase64)), status: 400, want: "hops[0].upstream", reason: reasonBadHistogram},
		{name: "value out of range", body: mustJSON(t, batch(t, now, rangeHop)), status: 400, want: "out of range", reason: reasonBadHistogram},
		{name: "empty histogram", body: mustJSON(t, batch(t, now, empty)), status: 400, want: "empty histogram", reason: reasonBadHistogram},
		{name: "bad direction", body: mustJSON(t, batch(t, now, badDir)), status: 400, want: "hops[0].direction", reason: reasonBadHopKey},
		{name: "future timestamp", body: mustJSON(t, future), status: 400, want: "future", reason: reasonBadInterval},
		{name: "stale timestamp", body: mustJSON(t, stale), status: 400, want: "older than", reason: reasonBadInterval},
		{name: "partial batch", body: mustJSON(t, partial), status: 200, want: "hops[1].direction", reason: reasonBadHopKey, taken: 1},
		{name: "partial batch, future interval", body: mustJSON(t, mixed), status: 200, want: "intervals[1]", reason: reasonBadInterval, taken: 1},
		{name: "idle interval", body: mustJSON(t, idle), status: 200, want: `"accepted_hops":0`},
		{name: "no intervals", body: []byte(`{"instance":"i","service":"s","intervals":[]}`), status: 400, want: "intervals", reason: reasonBadBatch},
		{name: "trailing data", body: append(mustJSON(t, batch(t, now, good)), []byte("{}")...), status: 400, want: "after the JSON", reason: reasonBadBatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sink.Reset()
			var before float64
			if c.reason != "" {
				before = testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("histograms", c.reason))
			}
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(c.body))
			ct := c.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			if !c.noToken {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, c.status, body)
			}
			if c.want != "" && !strings.Contains(string(body), c.want) {
				t.Errorf("body %s does not name %q", body, c.want)
			}
			if c.reason != "" {
				if after := testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("histograms", c.reason)); after != before+1 {
					t.Errorf("rejected{reason=%q} went %v -> %v, want +1", c.reason, before, after)
				}
			}
			if got := sink.LogRecordCount(); got != c.taken {
				t.Errorf("%d hops reached the pipeline, want %d", got, c.taken)
			}
		})
	}
	// Every hop taken carries what the exporters need.
	sink.Reset()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(mustJSON(t, batch(t, now, good))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var hops []hdrlog.Hop
	for _, ld := range sink.AllLogs() {
		if err := hdrlog.Each(ld, func(h hdrlog.Hop) error { hops = append(hops, h); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if len(hops) != 1 || hops[0].Instance != "i-1" || hops[0].Seq != 7 || hops[0].Key != good.HopKey || hops[0].Count != 3 {
		t.Fatalf("hops %+v", hops)
	}
	got, err := hdr.Decode(hops[0].Total)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := hdr.Decode(good.Total)
	if !got.Equals(want) {
		t.Error("the histogram taken differs from the one sent")
	}
	// The decoded histograms ride along for the exporters.
	if ctxs := sink.Contexts(); len(ctxs) != 1 || hdrlog.DecodedFrom(ctxs[0]) == nil {
		t.Fatal("ConsumeLogs got no decoded histograms in its context")
	}
	p, err := hdrlog.DecodedFrom(sink.Contexts()[0]).Packed(hops[0].Total)
	if err != nil {
		t.Fatal(err)
	}
	if p.TotalCount() != want.TotalCount() || p.Max() != want.Max() {
		t.Errorf("carried total histogram: count %d max %d, want %d %d", p.TotalCount(), p.Max(), want.TotalCount(), want.Max())
	}
}

func TestOTLPTraces(t *testing.T) {
	r, _, sink, _ := newTestReceiver(t, "")
	url := "http://" + r.cfg.Endpoint + "/v1/traces"
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	for i := 0; i < 5; i++ {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(i)})
		sp.SetSpanID([8]byte{2, byte(i)})
		sp.SetName(fmt.Sprintf("op%d", i))
	}
	req := ptraceotlp.NewExportRequestFromTraces(td)
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	post := func(ct string, body []byte) (int, string) {
		resp, err := http.Post(url, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("application/x-protobuf", pb); code != 200 {
		t.Fatalf("protobuf: %d %s", code, body)
	}
	if code, body := post("application/json", js); code != 200 {
		t.Fatalf("json: %d %s", code, body)
	}
	if sink.SpanCount() != 10 {
		t.Fatalf("%d spans reached the pipeline, want 10", sink.SpanCount())
	}
	if code, _ := post("application/x-protobuf", []byte{0xff, 0xff, 0xff}); code != 400 {
		t.Errorf("garbage protobuf: %d, want 400", code)
	}
	if code, _ := post("text/plain", pb); code != 415 {
		t.Errorf("text/plain: %d, want 415", code)
	}
}

// TestOTLPToken: with an ingest token, OTLP/HTTP without it is a 401 in the
// request's encoding, counted, and nothing reaches the pipeline.
func TestOTLPToken(t *testing.T) {
	const token = "ingest-token-0123456789"
	r, _, sink, ext := newTestReceiver(t, token)
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	pb, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	post := func(auth string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r.cfg.Endpoint+"/v1/traces", bytes.NewReader(pb))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("spans", reasonUnauthorized))
	if code := post(""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code := post("Bearer wrong-token-0123456789"); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if got := testutil.ToFloat64(ext.Health().Rejected.WithLabelValues("spans", reasonUnauthorized)); got != before+2 {
		t.Errorf("rejected{spans,unauthorized} %v -> %v, want +2", before, got)
	}
	if sink.SpanCount() != 0 {
		t.Fatal("a span without the token reached the pipeline")
	}
	if code := post("Bearer " + token); code != 200 {
		t.Errorf("with the token: %d, want 200", code)
	}
	if sink.SpanCount() != 1 {
		t.Errorf("%d spans taken, want 1", sink.SpanCount())
	}
}

func TestRefusalIsRetryable(t *testing.T) {
	host, _ := testhost.Start(t, testhost.Options{})
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Endpoint = testhost.FreeAddr(t)
	set := receiver.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	lr, err := f.CreateLogs(context.Background(), set, cfg, consumertest.NewErr(fmt.Errorf("memory limit reached")))
	if err != nil {
		t.Fatal(err)
	}
	if err := lr.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	defer lr.Shutdown(context.Background())
	resp, err := http.Post("http://"+cfg.Endpoint+model.HistogramPath, "application/json", bytes.NewReader(mustJSON(t, batch(t, time.Now(), goodHop(t)))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("refused batch: %d Retry-After %q, want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// FuzzHistograms feeds arbitrary bodies to the histogram endpoint: it never
// panics and answers 200 or a 4xx.
func FuzzHistograms(f *testing.F) {
	now := time.Now()
	f.Add(mustJSON(f, batch(f, now, goodHop(f))))
	f.Add([]byte(`{"instance":"i","service":"s","intervals":[{"seq":1,"start_unix_ms":1,"end_unix_ms":2,"hops":[]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"instance":"i","service":"s","intervals":[{"seq":1}]`))
	host, ext := testhost.Start(f, testhost.Options{})
	_ = host
	r := newReceiver(receiver.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()},
		createDefaultConfig().(*Config), func() {})
	r.ext, r.health = ext, ext.Health()
	r.setLogs(consumertest.NewNop())
	r.now = func() time.Time { return now }
	h := r.handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, model.HistogramPath, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 && (w.Code < 400 || w.Code > 499) {
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}
