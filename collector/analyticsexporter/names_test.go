package analyticsexporter

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/collector/internal/testhost"
)

// documented is docs/metrics.md as a table: every meshlens metric the
// collector exposes, its type and its label names.
var documented = map[string]struct {
	typ    dto.MetricType
	labels string // sorted, comma-separated
}{
	"meshlens_requests_total":                                  {dto.MetricType_COUNTER, "direction,method,peer,route,service,status_class"},
	"meshlens_request_duration_seconds":                        {dto.MetricType_HISTOGRAM, "direction,method,peer,route,service,status_class"},
	"meshlens_upstream_duration_seconds":                       {dto.MetricType_HISTOGRAM, "direction,method,peer,route,service,status_class"},
	"meshlens_proxy_overhead_seconds":                          {dto.MetricType_HISTOGRAM, "direction,method,peer,route,service,status_class"},
	"meshlens_requests_faster_than_total":                      {dto.MetricType_COUNTER, "direction,method,peer,route,service,threshold"},
	"meshlens_request_duration_exact_seconds":                  {dto.MetricType_GAUGE, "direction,peer,quantile,service"},
	"meshlens_request_duration_exact_minute_timestamp_seconds": {dto.MetricType_GAUGE, ""},
	"meshlens_service_info":                                    {dto.MetricType_GAUGE, "has_proxy,service"},
	"meshlens_edge_info":                                       {dto.MetricType_GAUGE, "callee,caller"},
	"meshlens_collector_received_total":                        {dto.MetricType_COUNTER, "signal"},
	"meshlens_collector_rejected_total":                        {dto.MetricType_COUNTER, "reason,signal"},
	"meshlens_collector_dropped_total":                         {dto.MetricType_COUNTER, "reason,signal"},
	"meshlens_collector_queue_length":                          {dto.MetricType_GAUGE, "signal"},
	"meshlens_collector_store_write_duration_seconds":          {dto.MetricType_HISTOGRAM, "kind"},
}

// TestMetricNamesAsDocumented scrapes a collector that has seen every kind
// of input and checks that each meshlens_ family is in docs/metrics.md with
// the documented type and labels, and that every documented one is served.
func TestMetricNamesAsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name := range documented {
		if !strings.Contains(string(doc), "`"+name) {
			t.Errorf("%s is not in docs/metrics.md", name)
		}
	}

	fx := newFixture(t, nil)
	minute := time.Now().UTC().Add(-3 * time.Minute).Truncate(time.Minute)
	fx.setNow(minute.Add(90 * time.Second)) // minute is the last complete one
	fx.send(testhost.Batch("proxy-a", "checkout", 1, minute, testhost.Hop(t, checkoutOut, 1000, 2000), testhost.Hop(t, checkoutIn, 3000)))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{9})
	sp.SetSpanID(pcommon.SpanID{9})
	sp.SetKind(ptrace.SpanKindClient)
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(minute))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(minute.Add(time.Millisecond)))
	sp.Attributes().PutStr("meshlens.peer.service", "ledger")
	sp.Attributes().PutStr("http.route", "/pay")
	sp.Attributes().PutStr("http.request.method", "POST")
	sp.Attributes().PutInt("http.response.status_code", 200)
	if err := fx.trace.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	// The health metrics appear once they have a child; their values are
	// tested where they are counted.
	h := fx.ext.Health()
	h.Received.WithLabelValues("spans")
	h.Rejected.WithLabelValues("histograms", "bad_batch")
	h.Dropped.WithLabelValues("histograms", "duplicate")
	h.QueueLength.WithLabelValues("spans")
	h.StoreWriteSecond.WithLabelValues("spans")

	fams := fx.scrape()
	for name, want := range documented {
		mf, ok := fams[name]
		if !ok {
			t.Errorf("%s: documented, not served", name)
			continue
		}
		if mf.GetType() != want.typ {
			t.Errorf("%s: type %v, documented %v", name, mf.GetType(), want.typ)
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName())
			}
			sort.Strings(ls)
			if got := strings.Join(ls, ","); got != want.labels {
				t.Errorf("%s: labels %s, documented %s", name, got, want.labels)
			}
		}
	}
	for name := range fams {
		if _, ok := documented[name]; strings.HasPrefix(name, "meshlens_") && !ok {
			t.Errorf("%s is served but not documented in docs/metrics.md", name)
		}
	}
}
