package storeexporter_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/collector/storeexporter"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func TestConfigFromYAML(t *testing.T) {
	cm, err := confmaptest.LoadConf("testdata/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := storeexporter.NewFactory()
	sub, _ := cm.Sub("meshlens_store")
	cfg := f.CreateDefaultConfig().(*storeexporter.Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	q := cfg.QueueConfig.Get()
	if q == nil || q.QueueSize != 5000 || q.NumConsumers != 2 || q.StorageID == nil || q.StorageID.String() != "file_storage/queue" {
		t.Errorf("sending_queue %+v", q)
	}
	if cfg.TimeoutConfig.Timeout != 10*time.Second || cfg.RetryConfig.MaxElapsedTime != 0 || len(cfg.RedactAttributes) != 3 {
		t.Errorf("config %+v", cfg)
	}
	sub, _ = cm.Sub("meshlens_store/bad")
	bad := f.CreateDefaultConfig().(*storeexporter.Config)
	if err := sub.Unmarshal(bad); err != nil {
		t.Fatal(err)
	}
	w := cfg.WriteThrough
	if !w.Enabled || w.Linger != 20*time.Millisecond || w.MaxSpans != 500 || w.Timeout != 2*time.Second {
		t.Errorf("write_through %+v", w)
	}
	err = bad.Validate()
	for _, field := range []string{"redact_attributes[0]", "write_through::max_spans", "write_through::timeout"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate: %v, want one naming %s", err, field)
		}
	}
}

// exporters starts a traces and a logs meshlens_store exporter (in-memory
// queue) on a real meshlens extension with its SQLite store. stop drains the
// queues and stops the exporters; the store stays readable until the test
// ends.
func exporters(t *testing.T) (exporter.Traces, exporter.Logs, *meshlensextension.Extension, func()) {
	return exportersWith(t, func(*storeexporter.Config) {}, zap.NewNop())
}

// exportersWith is exporters on the default config changed by edit,
// logging to logger.
func exportersWith(t *testing.T, edit func(*storeexporter.Config), logger *zap.Logger) (exporter.Traces, exporter.Logs, *meshlensextension.Extension, func()) {
	t.Helper()
	host, ext := testhost.Start(t, testhost.Options{})
	f := storeexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*storeexporter.Config)
	edit(cfg)
	set := exporter.Settings{ID: component.NewID(storeexporter.Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	set.Logger = logger
	ctx := context.Background()
	te, err := f.CreateTraces(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	le, err := f.CreateLogs(ctx, set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []component.Component{te, le} {
		if err := c.Start(ctx, host); err != nil {
			t.Fatal(err)
		}
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		for _, c := range []component.Component{te, le} {
			if err := c.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(stop)
	return te, le, ext, stop
}

func TestStartWithoutExtension(t *testing.T) {
	f := storeexporter.NewFactory()
	set := exporter.Settings{ID: component.NewID(storeexporter.Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	te, err := f.CreateTraces(context.Background(), set, f.CreateDefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	err = te.Start(context.Background(), componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Start without the meshlens extension: %v", err)
	}
	_ = te.Shutdown(context.Background())
}

func testTraces(secret string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i := 0; i < 3; i++ {
		sp := ss.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xab, 1})
		sp.SetSpanID(pcommon.SpanID{0xcd, byte(i + 1)})
		if i > 0 {
			sp.SetParentSpanID(pcommon.SpanID{0xcd, 1})
		}
		sp.SetName("op")
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(5 * time.Millisecond)))
		a := sp.Attributes()
		a.PutStr("meshlens.peer.service", "ledger") // a peer that runs no proxy
		a.PutStr("meshlens.request_id", "req-42")
		a.PutStr("http.request.header.authorization", "Bearer "+secret)
		a.PutStr("Authorization", secret)
		a.PutStr("http.request.header.cookie", "session="+secret)
		a.PutStr("http.response.header.set-cookie", "session="+secret)
		a.PutStr("x-api-key", secret)
		a.PutStr("http.route", "/pay")
	}
	// A span without IDs is dropped and counted, not stored.
	ss.AppendEmpty().SetName("no ids")
	return td
}

// TestSpansStoredOnceAndRedacted: the same spans sent twice are stored once;
// credentials never reach the store; the peer without a proxy is discovered.
func TestSpansStoredOnceAndRedacted(t *testing.T) {
	const secret = "s3cr3t-value"
	te, _, ext, stop := exporters(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := te.ConsumeTraces(ctx, testTraces(secret)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	st := ext.Store()
	spans, err := st.Trace(ctx, pcommon.TraceID{0xab, 1}.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 3 {
		t.Fatalf("%d spans stored, want 3 (sent twice, stored once)", len(spans))
	}
	for _, s := range spans {
		for k, v := range s.Attributes {
			if strings.Contains(v, secret) {
				t.Errorf("span %s: attribute %q=%q holds the secret", s.SpanID, k, v)
			}
		}
		if s.RequestID != "req-42" || s.Attributes["http.route"] != "/pay" {
			t.Errorf("span %+v lost its request ID or route", s)
		}
	}
	if id, err := st.TraceIDByRequestID(ctx, "req-42"); err != nil || id != spans[0].TraceID {
		t.Errorf("request req-42 -> %q, %v", id, err)
	}
	if got := testutil.ToFloat64(ext.Health().Dropped.WithLabelValues("spans", "invalid_id")); got != 2 {
		t.Errorf("dropped{invalid_id} = %v, want 2", got)
	}
	services, _ := st.Services(ctx)
	edges, _ := st.Edges(ctx)
	if !hasService(services, "checkout") || !hasService(services, "ledger") {
		t.Errorf("services %+v, want checkout and ledger", services)
	}
	if len(edges) != 1 || edges[0].Caller != "checkout" || edges[0].Callee != "ledger" {
		t.Errorf("edges %+v, want checkout -> ledger", edges)
	}
}

// TestWriteThrough: with the store healthy, spans are in the store when
// ConsumeTraces returns; nothing waits in the queue.
func TestWriteThrough(t *testing.T) {
	te, _, ext, _ := exporters(t)
	ctx := context.Background()
	// One request after the other: the second is converted into the
	// buffer the first was written from.
	for i := byte(1); i <= 2; i++ {
		td := testTraces("x")
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for j := 0; j < 3; j++ {
			spans.At(j).SetTraceID(pcommon.TraceID{0xab, i})
			spans.At(j).SetName(fmt.Sprintf("op-%d", i))
		}
		if err := te.ConsumeTraces(ctx, td); err != nil {
			t.Fatal(err)
		}
		stored, err := ext.Store().Trace(ctx, pcommon.TraceID{0xab, i}.String())
		if err != nil || len(stored) != 3 {
			t.Fatalf("request %d: %d spans stored when acknowledged (%v), want 3", i, len(stored), err)
		}
		for _, s := range stored {
			if s.Name != fmt.Sprintf("op-%d", i) {
				t.Errorf("request %d: span %s named %q", i, s.SpanID, s.Name)
			}
		}
	}
	first, err := ext.Store().Trace(ctx, pcommon.TraceID{0xab, 1}.String())
	if err != nil || len(first) != 3 || first[0].Name != "op-1" {
		t.Errorf("the first request's spans after the second: %+v, %v", first, err)
	}
	if got := testutil.ToFloat64(ext.Health().QueueLength.WithLabelValues("spans")); got != 0 {
		t.Errorf("queue length %v after the write-through, want 0", got)
	}
	if got := testutil.ToFloat64(ext.Health().Dropped.WithLabelValues("spans", "invalid_id")); got != 2 {
		t.Errorf("dropped{invalid_id} = %v, want 2", got)
	}
}

// TestWriteThroughFailsToQueue: a group whose write fails (here: past its
// timeout) is acknowledged from the sending queue instead, and written
// from there once; spans left out are counted once.
func TestWriteThroughFailsToQueue(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	te, _, ext, stop := exportersWith(t, func(c *storeexporter.Config) { c.WriteThrough.Timeout = time.Nanosecond }, zap.New(core))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := te.ConsumeTraces(ctx, testTraces("x")); err != nil {
			t.Fatal(err)
		}
	}
	stop() // drains the queue
	if logs.FilterMessageSnippet("a write-through to the store failed").Len() == 0 {
		t.Error("no write-through failed: the test did not reach the sending queue")
	}
	if logs.FilterMessageSnippet("spans are written through again").Len() == 0 {
		t.Error("the queue's writes did not turn the write-through back on")
	}
	spans, err := ext.Store().Trace(ctx, pcommon.TraceID{0xab, 1}.String())
	if err != nil || len(spans) != 3 {
		t.Fatalf("%d spans stored (%v), want 3", len(spans), err)
	}
	if got := testutil.ToFloat64(ext.Health().Dropped.WithLabelValues("spans", "invalid_id")); got != 3 {
		t.Errorf("dropped{invalid_id} = %v, want 3 (one per request)", got)
	}
	if got := testutil.ToFloat64(ext.Health().QueueLength.WithLabelValues("spans")); got != 0 {
		t.Errorf("queue length %v once written, want 0", got)
	}
}

func hasService(ss []store.Service, name string) bool {
	for _, s := range ss {
		if s.Name == name {
			return true
		}
	}
	return false
}

// TestRollupsStoredOnce: the same histogram batch twice (a proxy retry, a
// queue replay) stores one rollup per interval and hop; the services and
// edges it reveals are stored, a peer without a proxy with has_proxy false.
func TestRollupsStoredOnce(t *testing.T) {
	_, le, ext, stop := exporters(t)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	out := model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "ledger", Route: "/pay", Method: "POST", StatusClass: "2xx"}
	in := model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "web", Route: "/buy", Method: "POST", StatusClass: "5xx"}
	b1 := testhost.Batch("proxy-1", "checkout", 1, start, testhost.Hop(t, out, 1000, 2000), testhost.Hop(t, in, 5000))
	b2 := testhost.Batch("proxy-1", "checkout", 2, start.Add(10*time.Second), testhost.Hop(t, out, 3000))
	for _, b := range []model.HistogramBatch{b1, b1, b2, b1} {
		if err := le.ConsumeLogs(ctx, testhost.Logs(t, b)); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	st := ext.Store()
	rs, err := st.Rollups(ctx, store.RollupFilter{From: start, To: start.Add(time.Minute), Service: "checkout"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var requests int64
	for _, r := range rs {
		got = append(got, string(r.Key.Direction)+" "+r.Source)
		requests += r.Count
	}
	sort.Strings(got)
	want := []string{"inbound proxy-1/1", "outbound proxy-1/1", "outbound proxy-1/2"}
	if strings.Join(got, ",") != strings.Join(want, ",") || requests != 4 {
		t.Errorf("rollups %v with %d requests, want %v with 4", got, requests, want)
	}
	services, _ := st.Services(ctx)
	byName := map[string]store.Service{}
	for _, s := range services {
		byName[s.Name] = s
	}
	if !byName["checkout"].HasProxy || byName["ledger"].Name == "" || byName["ledger"].HasProxy || byName["web"].Name == "" {
		t.Errorf("services %+v: want checkout with a proxy, ledger and web without", services)
	}
	edges, _ := st.Edges(ctx)
	var es []string
	for _, e := range edges {
		es = append(es, e.Caller+"->"+e.Callee)
	}
	sort.Strings(es)
	if strings.Join(es, ",") != "checkout->ledger,web->checkout" {
		t.Errorf("edges %v", es)
	}
}

// TestMalformedRecordIsPermanent: a histogram record that lost its fields is
// dropped as a permanent error (retrying would not fix it) and counted.
func TestMalformedRecordIsPermanent(t *testing.T) {
	f := storeexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*storeexporter.Config)
	host, ext := testhost.Start(t, testhost.Options{})
	noQueue := *cfg // without a queue the error reaches the caller
	noQueue.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	set := exporter.Settings{ID: component.NewID(storeexporter.Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	le, err := f.CreateLogs(context.Background(), set, &noQueue)
	if err != nil {
		t.Fatal(err)
	}
	if err := le.Start(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	defer le.Shutdown(context.Background())
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(hdrlog.AttrService, "checkout")
	rl.Resource().Attributes().PutStr(hdrlog.AttrInstance, "i")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(hdrlog.ScopeName)
	sl.LogRecords().AppendEmpty().Body().SetStr("not a histogram")
	err = le.ConsumeLogs(context.Background(), ld)
	if err == nil || !consumererror.IsPermanent(err) || !errors.Is(err, hdrlog.ErrNotHistogram) {
		t.Fatalf("malformed record: %v, want a permanent ErrNotHistogram", err)
	}
	if got := testutil.ToFloat64(ext.Health().Dropped.WithLabelValues("histograms", "malformed_record")); got != 1 {
		t.Errorf("dropped{malformed_record} = %v, want 1", got)
	}
}
