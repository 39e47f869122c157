package analyticsexporter

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/meshlens/meshlens/collector/internal/testhost"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/hdr"
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
	sub, _ := cm.Sub("meshlens_analytics")
	cfg := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.classicBounds(); len(got) != 5 || got[1] != 0.05 || got[3] != 0.3 {
		t.Errorf("classic bounds with thresholds %v", got)
	}
	if cfg.NativeSchema != 5 || cfg.NativeMaxBuckets != 200 || cfg.CompleteAfter != 30*time.Second || cfg.DedupeWindow != 5*time.Minute || cfg.MaxSeries != 1000 {
		t.Errorf("config %+v", cfg)
	}
	sub, _ = cm.Sub("meshlens_analytics/bad")
	bad := createDefaultConfig().(*Config)
	if err := sub.Unmarshal(bad); err != nil {
		t.Fatal(err)
	}
	err = bad.Validate()
	for _, field := range []string{"slo_thresholds[0]", "classic_buckets[1]", "native_schema"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate: %v, want one naming %s", err, field)
		}
	}
}

// fixture is a started analytics exporter (traces and logs, one shared
// state) on a real meshlens extension, with a settable clock.
type fixture struct {
	t     *testing.T
	a     *analytics
	ext   *meshlensextension.Extension
	logs  exporter.Logs
	trace exporter.Traces

	mu  sync.Mutex
	now time.Time

	hookMu sync.Mutex
	hooked []string
}

func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	fx := &fixture{t: t, now: time.Now()}
	host, ext := testhost.Start(t, testhost.Options{})
	fx.ext = ext
	f := &factory{instances: map[*Config]*analytics{}}
	WithOnNewService(func(_ context.Context, s store.Service) {
		fx.hookMu.Lock()
		fx.hooked = append(fx.hooked, s.Name)
		fx.hookMu.Unlock()
	})(f)
	cfg := createDefaultConfig().(*Config)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	set := exporter.Settings{ID: component.NewID(Type), TelemetrySettings: componenttest.NewNopTelemetrySettings()}
	ctx := context.Background()
	var err error
	if fx.logs, err = f.createLogs(ctx, set, cfg); err != nil {
		t.Fatal(err)
	}
	if fx.trace, err = f.createTraces(ctx, set, cfg); err != nil {
		t.Fatal(err)
	}
	fx.a = f.instances[cfg]
	fx.a.now = func() time.Time { fx.mu.Lock(); defer fx.mu.Unlock(); return fx.now }
	for _, c := range []component.Component{fx.logs, fx.trace} {
		if err := c.Start(ctx, host); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, c := range []component.Component{fx.logs, fx.trace} {
			if err := c.Shutdown(ctx); err != nil {
				t.Error(err)
			}
		}
		if len(f.instances) != 0 {
			t.Error("the shared state outlived both exporters")
		}
	})
	return fx
}

func (fx *fixture) setNow(t time.Time) { fx.mu.Lock(); fx.now = t; fx.mu.Unlock() }

func (fx *fixture) send(b model.HistogramBatch) {
	fx.t.Helper()
	if err := fx.logs.ConsumeLogs(context.Background(), testhost.Logs(fx.t, b)); err != nil {
		fx.t.Fatal(err)
	}
}

// scrape reads /metrics in the protobuf format (native histograms and
// exemplars included) and returns the families by name.
func (fx *fixture) scrape() map[string]*dto.MetricFamily {
	fx.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+fx.ext.MetricsAddr()+"/metrics", nil)
	req.Header.Set("Accept", `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited`)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		fx.t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	out := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			break
		}
		out[mf.GetName()] = mf
	}
	if len(out) == 0 {
		fx.t.Fatal("/metrics: no metric families")
	}
	return out
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// find returns the metric of family name whose labels include want.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range fams[name].GetMetric() {
		ls := labels(m)
		ok := true
		for k, v := range want {
			if ls[k] != v {
				ok = false
			}
		}
		if ok {
			return m
		}
	}
	return nil
}

var (
	checkoutOut = model.HopKey{Service: "checkout", Direction: model.Outbound, Peer: "ledger", Route: "/pay", Method: "POST", StatusClass: "2xx"}
	checkoutIn  = model.HopKey{Service: "checkout", Direction: model.Inbound, Peer: "web", Route: "/buy", Method: "POST", StatusClass: "2xx"}
)

// logNormal draws n latencies (µs) with a long tail.
func logNormal(r *rand.Rand, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		v := int64(2000 * (1 + r.ExpFloat64()*r.ExpFloat64()*3))
		out[i] = max(v, 1)
	}
	return out
}

// TestExactMerge: histograms from many proxies merged per minute have the
// counts of one histogram that saw every value, so the exact percentile
// gauges equal that histogram's percentiles.
func TestExactMerge(t *testing.T) {
	fx := newFixture(t, nil)
	// Local time on purpose: the exporter must not depend on the clock's
	// location.
	minute := time.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	fx.setNow(minute.Add(2 * time.Minute))
	r := rand.New(rand.NewPCG(1, 2))
	ref := hdr.New()
	for p := 0; p < 8; p++ {
		for iv := 0; iv < 6; iv++ {
			vals := logNormal(r, 50+r.IntN(200))
			for _, v := range vals {
				hdr.Record(ref, v)
			}
			fx.send(testhost.Batch("proxy-"+string(rune('a'+p)), "checkout", uint64(iv+1), minute.Add(time.Duration(iv)*10*time.Second), testhost.Hop(t, checkoutOut, vals...)))
		}
	}
	fx.setNow(minute.Add(time.Minute + 25*time.Second))
	merged := fx.a.minutes[minute.UTC()][gaugeKey{"checkout", "outbound", "ledger"}]
	if merged == nil || merged.TotalCount() != ref.TotalCount() {
		t.Fatalf("merged count %v, want %d", merged, ref.TotalCount())
	}
	for _, q := range []float64{1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100} {
		if got, want := merged.ValueAtPercentile(q), ref.ValueAtPercentile(q); got != want {
			t.Errorf("p%v: merged %d µs, one histogram %d µs", q, got, want)
		}
	}
	fams := fx.scrape()
	for _, q := range exactQuantiles {
		m := find(fams, "meshlens_request_duration_exact_seconds", map[string]string{"service": "checkout", "peer": "ledger", "quantile": q.label})
		if m == nil {
			t.Fatalf("no exact gauge for quantile %s", q.label)
		}
		want := float64(ref.ValueAtPercentile(q.percentile)) / 1e6
		if q.percentile == 100 {
			want = float64(ref.Max()) / 1e6
		}
		if got := m.GetGauge().GetValue(); got != want {
			t.Errorf("exact gauge q=%s: %v, want %v", q.label, got, want)
		}
	}
	if m := fams["meshlens_request_duration_exact_minute_timestamp_seconds"]; m == nil || m.GetMetric()[0].GetGauge().GetValue() != float64(minute.Unix()) {
		t.Errorf("exact minute timestamp %v, want %d", m, minute.Unix())
	}
	req := find(fams, "meshlens_requests_total", map[string]string{"service": "checkout", "peer": "ledger"})
	if req.GetCounter().GetValue() != float64(ref.TotalCount()) {
		t.Errorf("requests_total %v, want %d", req.GetCounter().GetValue(), ref.TotalCount())
	}
}

// TestExactAcrossRollover scrapes every second of the simulated clock across
// minute rollovers: the exact gauges never vanish while there is a minute to
// describe. Minute 0 arrives on time; minute 1 arrives 30 s after it ends,
// past complete_after (a proxy whose clock is behind, a backlog resent), so
// minute 0 stays served until it does; minute 2 arrives on time and
// replaces minute 1 exactly when it is complete; with nothing sent after
// it, minute 2 is served for one more minute, then nothing.
func TestExactAcrossRollover(t *testing.T) {
	fx := newFixture(t, nil) // complete_after 20s
	m0 := time.Now().Add(-30 * time.Minute).Truncate(time.Minute)
	minute := func(i int) time.Time { return m0.Add(time.Duration(i) * time.Minute) }
	// Each minute's latencies differ, so the gauges tell which one they show.
	latency := []int64{1_000, 2_000, 3_000}
	type delivery struct {
		at   time.Time // when the interval reaches the collector
		b    model.HistogramBatch
		sent bool
	}
	var plan []*delivery
	for m := range 3 {
		for iv := range 6 {
			from := minute(m).Add(time.Duration(iv) * 10 * time.Second)
			at := from.Add(10 * time.Second) // sent when the interval ends
			if m == 1 {
				at = minute(2).Add(30 * time.Second)
			}
			b := testhost.Batch("proxy-a", "checkout", uint64(6*m+iv+1), from, testhost.Hop(t, checkoutOut, latency[m], latency[m]))
			plan = append(plan, &delivery{at: at, b: b})
		}
	}
	want := func(now time.Time) int {
		switch {
		case now.Before(minute(2).Add(30 * time.Second)): // minute 1 not yet here
			return 0
		case now.Before(minute(3).Add(20 * time.Second)): // minute 2 not yet complete
			return 1
		case now.Before(minute(5).Add(20 * time.Second)): // minute 3 and 4 are empty
			return 2
		}
		return -1 // nothing sent for two complete minutes: nothing to describe
	}
	for now := minute(1).Add(20 * time.Second); !now.After(minute(5).Add(30 * time.Second)); now = now.Add(time.Second) {
		fx.setNow(now)
		for _, d := range plan {
			if !d.sent && !d.at.After(now) {
				fx.send(d.b)
				d.sent = true
			}
		}
		fams := fx.scrape()
		m := want(now)
		ts := fams["meshlens_request_duration_exact_minute_timestamp_seconds"]
		if m < 0 {
			if ts != nil || fams["meshlens_request_duration_exact_seconds"] != nil {
				t.Fatalf("at %s: exact gauges %v, want none", now.Format("15:04:05"), ts.GetMetric())
			}
			continue
		}
		if ts == nil || ts.GetMetric()[0].GetGauge().GetValue() != float64(minute(m).Unix()) {
			t.Fatalf("at %s: exact minute %v, want minute %d (%d)", now.Format("15:04:05"), ts.GetMetric(), m, minute(m).Unix())
		}
		p100 := find(fams, "meshlens_request_duration_exact_seconds", map[string]string{"peer": "ledger", "quantile": "1"})
		ref := hdr.New()
		hdr.Record(ref, latency[m])
		if p100 == nil || p100.GetGauge().GetValue() != float64(ref.Max())/1e6 {
			t.Fatalf("at %s: exact p100 %v, want minute %d's %v s", now.Format("15:04:05"), p100, m, float64(ref.Max())/1e6)
		}
	}
}

// TestSameBatchTwice: a batch delivered twice is counted once.
func TestSameBatchTwice(t *testing.T) {
	fx := newFixture(t, nil)
	start := time.Now().Add(-time.Minute)
	b := testhost.Batch("proxy-a", "checkout", 1, start, testhost.Hop(t, checkoutOut, 1000, 2000, 3000), testhost.Hop(t, checkoutIn, 4000))
	fx.send(b)
	fx.send(b)
	fx.send(testhost.Batch("proxy-a", "checkout", 2, start.Add(10*time.Second), testhost.Hop(t, checkoutOut, 1000)))
	fams := fx.scrape()
	if got := find(fams, "meshlens_requests_total", map[string]string{"peer": "ledger"}).GetCounter().GetValue(); got != 4 {
		t.Errorf("outbound requests %v, want 4", got)
	}
	if got := find(fams, "meshlens_request_duration_seconds", map[string]string{"peer": "ledger"}).GetHistogram().GetSampleCount(); got != 4 {
		t.Errorf("outbound histogram count %v, want 4", got)
	}
	if got := testutil.ToFloat64(fx.ext.Health().Dropped.WithLabelValues("histograms", "duplicate")); got != 2 {
		t.Errorf("dropped{duplicate} = %v, want 2", got)
	}
}

// TestFasterThanExact: meshlens_requests_faster_than_total equals a plain
// count of the values <= each threshold (values inside the HDR bucket that
// holds a threshold are equivalent to it at 3 significant digits and are
// left out of the comparison).
func TestFasterThanExact(t *testing.T) {
	thresholds := []float64{0.1, 0.25, 0.5, 1}
	fx := newFixture(t, func(c *Config) { c.SLOThresholds = thresholds })
	r := rand.New(rand.NewPCG(3, 4))
	var vals []int64
	// Exactly at, just below and just past each threshold's bucket.
	for _, th := range thresholds {
		tm := int64(th * 1e6)
		w := bucketWidthMicros(tm)
		lo := tm &^ (w - 1)
		vals = append(vals, tm, tm-1, lo-1, lo+w, lo+w+1)
	}
	for len(vals) < 5000 {
		v := int64(r.Float64() * 1.5e6)
		inThresholdBucket := false
		for _, th := range thresholds {
			tm := int64(th * 1e6)
			w := bucketWidthMicros(tm)
			if v > tm && v < (tm&^(w-1))+w {
				inThresholdBucket = true
			}
		}
		if v > 0 && !inThresholdBucket {
			vals = append(vals, v)
		}
	}
	start := time.Now().Add(-time.Minute)
	key := checkoutIn
	for i := 0; i < len(vals); i += 1000 {
		key.StatusClass = []string{"2xx", "5xx"}[i/1000%2] // one counter across status classes
		fx.send(testhost.Batch("proxy-a", "checkout", uint64(i+1), start, testhost.Hop(t, key, vals[i:min(i+1000, len(vals))]...)))
	}
	fams := fx.scrape()
	for _, th := range thresholds {
		want := 0
		for _, v := range vals {
			if float64(v) <= th*1e6 {
				want++
			}
		}
		label := []string{"0.1", "0.25", "0.5", "1"}[sort.SearchFloat64s(thresholds, th)]
		m := find(fams, "meshlens_requests_faster_than_total", map[string]string{"service": "checkout", "direction": "inbound", "threshold": label})
		if m == nil {
			t.Fatalf("no faster_than series for threshold %s", label)
		}
		if got := m.GetCounter().GetValue(); got != float64(want) {
			t.Errorf("faster than %s: %v, want %d", label, got, want)
		}
	}
}

// TestHistogramsAndExemplars: each hop histogram carries classic buckets
// (SLO thresholds among the bounds) and native buckets with the same count,
// and a span of the hop puts its trace ID in an exemplar, whether the span
// comes after the hop's first histograms or before them (a proxy sends
// spans at once and histograms every interval).
func TestHistogramsAndExemplars(t *testing.T) {
	for _, order := range []string{"histograms first", "span first"} {
		t.Run(order, func(t *testing.T) { testHistogramsAndExemplars(t, order == "span first") })
	}
}

func testHistogramsAndExemplars(t *testing.T, spanFirst bool) {
	fx := newFixture(t, nil)
	start := time.Now().Add(-time.Minute)
	vals := []int64{900, 1500, 40_000, 99_000, 120_000, 2_000_000}
	sendHistograms := func() {
		fx.send(testhost.Batch("proxy-a", "checkout", 1, start, testhost.Hop(t, checkoutIn, vals...)))
	}
	if !spanFirst {
		sendHistograms()
	}

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	traceID := pcommon.TraceID{0xfe, 0xed, 1}
	sp.SetTraceID(traceID)
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(40 * time.Millisecond)))
	a := sp.Attributes()
	a.PutStr("meshlens.peer.service", "web")
	a.PutStr("http.route", "/buy")
	a.PutStr("http.request.method", "POST")
	a.PutInt("http.response.status_code", 201)
	if err := fx.trace.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	if spanFirst {
		sendHistograms()
	}

	fams := fx.scrape()
	for _, name := range []string{"meshlens_request_duration_seconds", "meshlens_upstream_duration_seconds", "meshlens_proxy_overhead_seconds"} {
		m := find(fams, name, map[string]string{"service": "checkout", "direction": "inbound", "peer": "web"})
		if m == nil {
			t.Fatalf("%s: no series", name)
		}
		h := m.GetHistogram()
		if h.GetSampleCount() != uint64(len(vals)) {
			t.Errorf("%s: count %d, want %d", name, h.GetSampleCount(), len(vals))
		}
		var native int64
		var cur int64
		for _, d := range h.GetPositiveDelta() {
			cur += d
			native += cur
		}
		if len(h.GetPositiveSpan()) == 0 || native != int64(len(vals)) || h.GetSchema() != 8 {
			t.Errorf("%s: native buckets hold %d at schema %d, want %d at 8", name, native, h.GetSchema(), len(vals))
		}
		bounds := map[float64]uint64{}
		for _, b := range h.GetBucket() {
			bounds[b.GetUpperBound()] = b.GetCumulativeCount()
		}
		for _, th := range DefaultSLOThresholds {
			if _, ok := bounds[th]; !ok {
				t.Errorf("%s: no classic bucket at the SLO threshold %v", name, th)
			}
		}
		if name == "meshlens_request_duration_seconds" {
			for le, want := range map[float64]uint64{0.001: 1, 0.0025: 2, 0.05: 3, 0.1: 4, 0.25: 5, 1: 5, 10: 6} {
				if bounds[le] != want {
					t.Errorf("%s: bucket le=%v holds %d, want %d", name, le, bounds[le], want)
				}
			}
			var found bool
			for _, b := range h.GetBucket() {
				if e := b.GetExemplar(); e != nil {
					found = true
					if e.GetLabel()[0].GetName() != "trace_id" || e.GetLabel()[0].GetValue() != traceID.String() || b.GetUpperBound() != 0.05 {
						t.Errorf("exemplar %v in bucket le=%v, want trace_id %s in le=0.05", e, b.GetUpperBound(), traceID)
					}
				}
			}
			if !found {
				t.Error("no exemplar on the classic buckets")
			}
			if len(h.GetExemplars()) != 1 {
				t.Error("no exemplar for the native histogram")
			}
		}
	}
}

// TestDiscovery: services and edges come from histograms and spans, peers
// that run no proxy included; the hook hears of each new service once.
func TestDiscovery(t *testing.T) {
	fx := newFixture(t, nil)
	start := time.Now().Add(-time.Minute)
	fx.send(testhost.Batch("proxy-a", "checkout", 1, start, testhost.Hop(t, checkoutOut, 1000), testhost.Hop(t, checkoutIn, 1000)))
	fx.send(testhost.Batch("proxy-a", "checkout", 2, start, testhost.Hop(t, checkoutOut, 1000)))
	// A span from a service with no proxy, calling one that is not seen
	// elsewhere.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "batch-job")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{1})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
	sp.Attributes().PutStr("peer.service", "warehouse")
	sp.Attributes().PutInt("http.response.status_code", 200)
	if err := fx.trace.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	fams := fx.scrape()
	var services, edges []string
	for _, m := range fams["meshlens_service_info"].GetMetric() {
		ls := labels(m)
		services = append(services, ls["service"]+":"+ls["has_proxy"])
	}
	for _, m := range fams["meshlens_edge_info"].GetMetric() {
		ls := labels(m)
		edges = append(edges, ls["caller"]+"->"+ls["callee"])
	}
	sort.Strings(services)
	sort.Strings(edges)
	if got, want := strings.Join(services, ","), "batch-job:false,checkout:true,ledger:false,warehouse:false,web:false"; got != want {
		t.Errorf("services %s, want %s", got, want)
	}
	if got, want := strings.Join(edges, ","), "batch-job->warehouse,checkout->ledger,web->checkout"; got != want {
		t.Errorf("edges %s, want %s", got, want)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fx.hookMu.Lock()
		n := len(fx.hooked)
		hooked := append([]string(nil), fx.hooked...)
		fx.hookMu.Unlock()
		if n >= 5 || time.Now().After(deadline) {
			sort.Strings(hooked)
			if strings.Join(hooked, ",") != "batch-job,checkout,ledger,warehouse,web" {
				t.Errorf("hooks heard of %v, want each of the 5 services once", hooked)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}
