package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics exposes the telemetry's counters at scrape time. The hot path
// only bumps atomics and per-hop counts it already keeps; nothing here runs
// per request.
type metrics struct {
	t *Telemetry

	hopRequests, dropped, sent, flushErrors, backlog, spanQueue, folds, peerFolds, clamped *prometheus.Desc
}

var hopLabels = []string{"service", "direction", "peer", "route", "method", "status_class"}

func newMetrics(t *Telemetry) *metrics {
	return &metrics{
		t: t,
		hopRequests: prometheus.NewDesc("meshproxy_hop_requests_total",
			"Requests completed, by hop.", hopLabels, nil),
		dropped: prometheus.NewDesc("meshproxy_telemetry_dropped_total",
			"Telemetry dropped before the collector took it: histogram intervals or spans, by reason.", []string{"signal", "reason"}, nil),
		sent: prometheus.NewDesc("meshproxy_telemetry_sent_total",
			"Histogram intervals and spans the collector took.", []string{"signal"}, nil),
		flushErrors: prometheus.NewDesc("meshproxy_telemetry_flush_errors_total",
			"Failed sends to the collector, by signal and reason.", []string{"signal", "reason"}, nil),
		backlog: prometheus.NewDesc("meshproxy_telemetry_backlog_intervals",
			"Histogram intervals waiting to be sent.", nil, nil),
		spanQueue: prometheus.NewDesc("meshproxy_telemetry_span_queue_length",
			"Spans waiting to be exported.", nil, nil),
		folds: prometheus.NewDesc("meshproxy_telemetry_route_folds_total",
			`Requests recorded under route "other" because their service passed its route limit.`, []string{"service"}, nil),
		peerFolds: prometheus.NewDesc("meshproxy_telemetry_peer_folds_total",
			`Requests recorded under peer "unknown" because their service and direction passed the peer limit.`, []string{"service"}, nil),
		clamped: prometheus.NewDesc("meshproxy_telemetry_clamped_values_total",
			"Latencies above the histogram range, recorded as its highest value.", []string{"histogram"}, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.hopRequests, m.dropped, m.sent, m.flushErrors, m.backlog, m.spanQueue, m.folds, m.peerFolds, m.clamped} {
		ch <- d
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	t := m.t
	counter := func(d *prometheus.Desc, v *atomic.Uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	for _, e := range t.rec.snapshotEntries() {
		k := e.key
		ch <- prometheus.MustNewConstMetric(m.hopRequests, prometheus.CounterValue, float64(e.requestCount()),
			k.Service, string(k.Direction), k.Peer, k.Route, k.Method, k.StatusClass)
	}
	h := t.hist
	counter(m.dropped, &h.dropFull, "histograms", "backlog_full")
	counter(m.dropped, &h.dropReject, "histograms", "rejected")
	counter(m.dropped, &h.dropLarge, "histograms", "too_large")
	counter(m.dropped, &h.dropStop, "histograms", "shutdown")
	counter(m.sent, &h.sentIvs, "histograms")
	counter(m.flushErrors, &h.errNetwork, "histograms", "network")
	counter(m.flushErrors, &h.err4xx, "histograms", "status_4xx")
	counter(m.flushErrors, &h.err5xx, "histograms", "status_5xx")
	counter(m.flushErrors, &h.errEncode, "histograms", "encode")
	ch <- prometheus.MustNewConstMetric(m.backlog, prometheus.GaugeValue, float64(h.backlogLen()))
	queued := 0
	if s := t.spans; s != nil {
		counter(m.dropped, &s.dropFull, "spans", "queue_full")
		counter(m.dropped, &s.dropFailed, "spans", "export_failed")
		counter(m.dropped, &s.dropReject, "spans", "rejected")
		counter(m.dropped, &s.dropStop, "spans", "shutdown")
		counter(m.sent, &s.sent, "spans")
		counter(m.flushErrors, &s.errNetwork, "spans", "network")
		counter(m.flushErrors, &s.err4xx, "spans", "status_4xx")
		counter(m.flushErrors, &s.err5xx, "spans", "status_5xx")
		queued = s.queueLen()
	}
	ch <- prometheus.MustNewConstMetric(m.spanQueue, prometheus.GaugeValue, float64(queued))
	counter(m.folds, &t.rec.folds, t.service)
	counter(m.peerFolds, &t.rec.peerFolds, t.service)
	counter(m.clamped, &t.rec.clampTotal, "total")
	counter(m.clamped, &t.rec.clampUpstream, "upstream")
	counter(m.clamped, &t.rec.clampOverhead, "overhead")
}
