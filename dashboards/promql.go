package dashboards

import (
	"fmt"
	"strconv"
	"strings"
)

// The metric names of the collector contract (docs/metrics.md).
const (
	metricRequests      = "meshlens_requests_total"
	metricDuration      = "meshlens_request_duration_seconds"
	metricOverhead      = "meshlens_proxy_overhead_seconds"
	metricFasterThan    = "meshlens_requests_faster_than_total"
	metricExactQuantile = "meshlens_request_duration_exact_seconds"
	metricServiceInfo   = "meshlens_service_info"
	metricEdgeInfo      = "meshlens_edge_info"
)

// sel is a label selector body, like `service="a",direction="inbound"`.
type sel string

// and joins selector bodies.
func (s sel) and(more ...string) sel {
	parts := []string{}
	if s != "" {
		parts = append(parts, string(s))
	}
	for _, m := range more {
		if m != "" {
			parts = append(parts, m)
		}
	}
	return sel(strings.Join(parts, ","))
}

func eq(label, value string) string    { return label + "=" + strconv.Quote(value) }
func match(label, value string) string { return label + "=~" + strconv.Quote(value) }

const (
	inbound  = `direction="inbound"`
	outbound = `direction="outbound"`
	is5xx    = `status_class="5xx"`
)

// rate is rate(metric{sel}[window]).
func rate(metric string, s sel, window string) string {
	return fmt.Sprintf("rate(%s{%s}[%s])", metric, s, window)
}

// sumBy is sum by (labels) (expr); no labels gives sum(expr).
func sumBy(labels []string, expr string) string {
	if len(labels) == 0 {
		return "sum(" + expr + ")"
	}
	return fmt.Sprintf("sum by (%s) (%s)", strings.Join(labels, ", "), expr)
}

// requestRate is requests per second over window, summed by labels.
func requestRate(s sel, by []string, window string) string {
	return sumBy(by, rate(metricRequests, s, window))
}

// errorRatio is the share of 5xx among requests over window, by labels. A
// group with traffic and no 5xx series gets 0 rather than no value, so a
// healthy service shows 0% instead of an empty cell.
func errorRatio(s sel, by []string, window string) string {
	total := requestRate(s, by, window)
	errs := requestRate(s.and(is5xx), by, window)
	return fmt.Sprintf("(%s or %s * 0) / %s", errs, total, total)
}

// quantile is a latency percentile over window from the native histogram of
// metric, falling back to its classic _bucket series where the Prometheus
// server keeps no native histogram (PromQL's `or` takes the right side only
// for the label sets the left side lacks).
func quantile(q float64, metric string, s sel, by []string, window string) string {
	qs := strconv.FormatFloat(q, 'f', -1, 64)
	native := fmt.Sprintf("histogram_quantile(%s, %s)", qs, sumBy(by, rate(metric, s, window)))
	classic := fmt.Sprintf("histogram_quantile(%s, %s)", qs, sumBy(append(append([]string{}, by...), "le"), rate(metric+"_bucket", s, window)))
	return native + " or " + classic
}

// bucketRate is the classic buckets' rate by le, the shape Grafana's heatmap
// reads without calculation.
func bucketRate(metric string, s sel, window string) string {
	return sumBy([]string{"le"}, rate(metric+"_bucket", s, window))
}

// nativeRate is the native histogram's rate, summed.
func nativeRate(metric string, s sel, window string) string {
	return sumBy(nil, rate(metric, s, window))
}

// exactQuantile reads the collector's exact HDR percentile gauge.
func exactQuantile(q string, s sel, by []string) string {
	return fmt.Sprintf("max by (%s) (%s{%s})", strings.Join(by, ", "), metricExactQuantile, s.and(eq("quantile", q)))
}

// relabel copies label from into label to (label_replace).
func relabel(expr, to, from string) string {
	return fmt.Sprintf(`label_replace(%s, %q, "$1", %q, "(.*)")`, expr, to, from)
}

// floatLiteral renders f for PromQL.
func floatLiteral(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
