package telemetry

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatsHandler(t *testing.T) {
	tel, err := New(Config{FlushInterval: time.Second}, "checkout", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := hopKey("/pay", "POST", "2xx")
	// Interval 1: 1..1000 ms. Interval 2: ten requests of 5 s.
	for i := 1; i <= 1000; i++ {
		tel.Finish(&Hop{Key: k, Total: time.Duration(i) * time.Millisecond, Upstream: time.Duration(i)*time.Millisecond - 100*time.Microsecond})
	}
	t0 := time.Now()
	tel.hist.rotate(t0)
	for range 10 {
		tel.Finish(&Hop{Key: k, Total: 5 * time.Second})
	}
	tel.hist.rotate(t0.Add(time.Second))
	tel.Finish(&Hop{Key: k, Total: time.Millisecond}) // in progress: counted in requests only

	rec := httptest.NewRecorder()
	tel.StatsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var st Stats
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Service != "checkout" || st.LastInterval.Seq != 2 || len(st.Hops) != 1 {
		t.Fatalf("stats %+v", st)
	}
	h := st.Hops[0]
	if h.HopKey != k || h.Requests != 1011 {
		t.Errorf("hop %+v requests %d, want 1011", h.HopKey, h.Requests)
	}
	if l := h.LastInterval.Total; l.Count != 10 || !near(l.P50us, 5_000_000) || !near(l.MaxUs, 5_000_000) {
		t.Errorf("last interval %+v", l)
	}
	if h.LastInterval.Upstream.Count != 0 {
		t.Errorf("upstream counted without an upstream: %+v", h.LastInterval.Upstream)
	}
	s := h.SinceStart
	if s.Total.Count != 1010 || !near(s.Total.P50us, 505_000) || !near(s.Total.P90us, 909_000) ||
		!near(s.Total.P99us, 1_000_000) || !near(s.Total.P999us, 5_000_000) || !near(s.Total.MaxUs, 5_000_000) {
		t.Errorf("since start %+v", s.Total)
	}
	if s.Overhead.Count != 1000 || !near(s.Overhead.P99us, 100) {
		t.Errorf("overhead since start %+v", s.Overhead)
	}
	for _, field := range []string{`"p50_us"`, `"p99_9_us"`, `"max_us"`, `"since_start"`, `"last_interval"`, `"status_class"`} {
		if !strings.Contains(rec.Body.String(), field) {
			t.Errorf("no %s in %s", field, rec.Body.String())
		}
	}

	rec = httptest.NewRecorder()
	tel.StatsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/stats", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /stats: %d", rec.Code)
	}
}

// near reports whether got is v within HDR's 3 significant digits.
func near(got, v int64) bool {
	d := got - v
	if d < 0 {
		d = -d
	}
	return d <= v/500+1
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	tel, err := New(Config{Collector: "http://127.0.0.1:1", MaxRoutesPerService: 1}, "checkout", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	tel.Finish(&Hop{Key: hopKey("/a", "GET", "2xx"), Total: time.Millisecond})
	tel.Finish(&Hop{Key: hopKey("/a", "GET", "2xx"), Total: 2 * time.Hour})
	tel.Finish(&Hop{Key: hopKey("/b", "GET", "2xx"), Total: time.Millisecond, Sampled: true})
	want := `
# HELP meshproxy_hop_requests_total Requests completed, by hop.
# TYPE meshproxy_hop_requests_total counter
meshproxy_hop_requests_total{direction="outbound",method="GET",peer="payments",route="/a",service="checkout",status_class="2xx"} 2
meshproxy_hop_requests_total{direction="outbound",method="GET",peer="payments",route="other",service="checkout",status_class="2xx"} 1
# HELP meshproxy_telemetry_route_folds_total Requests recorded under route "other" because their service passed its route limit.
# TYPE meshproxy_telemetry_route_folds_total counter
meshproxy_telemetry_route_folds_total{service="checkout"} 1
# HELP meshproxy_telemetry_clamped_values_total Latencies above the histogram range, recorded as its highest value.
# TYPE meshproxy_telemetry_clamped_values_total counter
meshproxy_telemetry_clamped_values_total{histogram="overhead"} 0
meshproxy_telemetry_clamped_values_total{histogram="total"} 1
meshproxy_telemetry_clamped_values_total{histogram="upstream"} 0
# HELP meshproxy_telemetry_span_queue_length Spans waiting to be exported.
# TYPE meshproxy_telemetry_span_queue_length gauge
meshproxy_telemetry_span_queue_length 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"meshproxy_hop_requests_total", "meshproxy_telemetry_route_folds_total",
		"meshproxy_telemetry_clamped_values_total", "meshproxy_telemetry_span_queue_length"); err != nil {
		t.Error(err)
	}
	n, err := testutil.GatherAndCount(reg, "meshproxy_telemetry_dropped_total", "meshproxy_telemetry_sent_total",
		"meshproxy_telemetry_flush_errors_total", "meshproxy_telemetry_backlog_intervals")
	if err != nil {
		t.Fatal(err)
	}
	if n != 8+2+7+1 {
		t.Errorf("%d health series, want 18", n)
	}
	problems, err := testutil.CollectAndLint(newMetrics(tel))
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}
