package analyticsexporter

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

var hopLabels = []string{"service", "direction", "peer", "route", "method", "status_class"}

var (
	descRequests = prometheus.NewDesc("meshlens_requests_total",
		"Requests completed, per hop.", hopLabels, nil)
	descDuration = prometheus.NewDesc("meshlens_request_duration_seconds",
		"Total hop latency (native and classic buckets; exemplars carry trace_id).", hopLabels, nil)
	descUpstream = prometheus.NewDesc("meshlens_upstream_duration_seconds",
		"Upstream part of the hop latency.", hopLabels, nil)
	descOverhead = prometheus.NewDesc("meshlens_proxy_overhead_seconds",
		"The proxy's own cost per request.", hopLabels, nil)
	descFaster = prometheus.NewDesc("meshlens_requests_faster_than_total",
		"Requests whose total latency was <= threshold seconds, counted exactly from the HDR histograms.",
		[]string{"service", "direction", "peer", "route", "method", "threshold"}, nil)
	descExact = prometheus.NewDesc("meshlens_request_duration_exact_seconds",
		"Exact percentile (3 significant digits) of the total hop latency over the last complete minute, merged from HDR histograms.",
		[]string{"service", "direction", "peer", "quantile"}, nil)
	descExactMinute = prometheus.NewDesc("meshlens_request_duration_exact_minute_timestamp_seconds",
		"Start of the minute the exact percentile gauges describe (Unix seconds).", nil, nil)
	descServiceInfo = prometheus.NewDesc("meshlens_service_info",
		"A discovered service (1).", []string{"service", "has_proxy"}, nil)
	descEdgeInfo = prometheus.NewDesc("meshlens_edge_info",
		"A discovered caller -> callee edge (1).", []string{"caller", "callee"}, nil)
)

// exactQuantiles are the quantile label values and the HDR percentiles.
var exactQuantiles = []struct {
	label      string
	percentile float64
}{{"0.5", 50}, {"0.9", 90}, {"0.99", 99}, {"0.999", 99.9}, {"1", 100}}

// collector exposes the analytics state at scrape time.
type collector struct{ a *analytics }

var _ prometheus.Collector = (*collector)(nil)

// Describe sends nothing: the collector is unchecked, its series come and go
// with the mesh.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// histMetric is a histogram series with both native and classic buckets.
type histMetric struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	h      *dto.Histogram
}

func (m *histMetric) Desc() *prometheus.Desc { return m.desc }
func (m *histMetric) Write(out *dto.Metric) error {
	out.Label = m.labels
	out.Histogram = m.h
	return nil
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	now := a.now()
	a.mu.Lock()
	var out []prometheus.Metric
	for _, s := range a.series {
		out = append(out,
			prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(s.requests), s.labels...),
			&histMetric{descDuration, prometheus.MakeLabelPairs(descDuration, s.labels), s.total.write(a.boundsSeconds)},
			&histMetric{descUpstream, prometheus.MakeLabelPairs(descUpstream, s.labels), s.upstream.write(a.boundsSeconds)},
			&histMetric{descOverhead, prometheus.MakeLabelPairs(descOverhead, s.labels), s.overhead.write(a.boundsSeconds)},
		)
	}
	for k, counts := range a.faster {
		for i, n := range counts {
			out = append(out, prometheus.MustNewConstMetric(descFaster, prometheus.CounterValue, float64(n),
				k.service, k.direction, k.peer, k.route, k.method, a.thresholdLabels[i]))
		}
	}
	if minute, keys := a.exactMinute(now); keys != nil {
		out = append(out, prometheus.MustNewConstMetric(descExactMinute, prometheus.GaugeValue, float64(minute.Unix())))
		pcts := make([]float64, len(exactQuantiles))
		for i, q := range exactQuantiles {
			pcts[i] = q.percentile
		}
		for k, p := range keys {
			if p.TotalCount() == 0 {
				continue
			}
			vals := p.ValueAtPercentilesSlice(pcts)
			for i, q := range exactQuantiles {
				v := vals[i]
				if q.percentile == 100 {
					v = p.Max()
				}
				out = append(out, prometheus.MustNewConstMetric(descExact, prometheus.GaugeValue,
					float64(v)/1e6, k.service, k.direction, k.peer, q.label))
			}
		}
	}
	a.mu.Unlock()

	services, edges := a.disc.snapshot()
	for _, s := range services {
		out = append(out, prometheus.MustNewConstMetric(descServiceInfo, prometheus.GaugeValue, 1, s.Name, strconv.FormatBool(s.HasProxy)))
	}
	for _, e := range edges {
		out = append(out, prometheus.MustNewConstMetric(descEdgeInfo, prometheus.GaugeValue, 1, e.Caller, e.Callee))
	}
	for _, m := range out {
		ch <- m
	}
}
