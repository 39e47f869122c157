package proxy

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/model"
)

// Upstream error kinds (the kind label of meshproxy_upstream_errors_total).
const (
	errKindConnect    = "connect"     // dial failed: upstream down
	errKindTimeout    = "timeout"     // no response headers in time
	errKindReset      = "reset"       // the connection failed after it was made
	errKindBody       = "body"        // the response body broke off
	errKindNoUpstream = "no_upstream" // no upstream for the Host/:authority
)

// metrics are the data plane's own counters; per-hop latency lives in the
// telemetry package. Label values are resolved once so that the hot path
// only does atomic adds.
type metrics struct {
	requests      [2]prometheus.Counter // by direction
	inFlight      [2]prometheus.Gauge
	clientAborts  [2]prometheus.Counter
	upstreamErrs  *prometheus.CounterVec
	upstreamErr   map[[2]string]prometheus.Counter
	smuggling     *prometheus.CounterVec
	reloadsOK     prometheus.Counter
	reloadsFailed prometheus.Counter
	hijacked      prometheus.Gauge
}

func dirIndex(d model.Direction) int {
	if d == model.Outbound {
		return 1
	}
	return 0
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshproxy_requests_total",
		Help: "Requests the proxy handled, by direction.",
	}, []string{"direction"})
	inFlight := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "meshproxy_requests_in_flight",
		Help: "Requests being forwarded now, by direction.",
	}, []string{"direction"})
	aborts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshproxy_client_aborts_total",
		Help: "Requests whose caller went away before the response was complete.",
	}, []string{"direction"})
	upErrs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshproxy_upstream_errors_total",
		Help: "Requests that failed at the upstream, by direction and kind (connect, timeout, reset, body, no_upstream).",
	}, []string{"direction", "kind"})
	smuggling := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshproxy_smuggling_rejections_total",
		Help: "HTTP/1.1 requests refused for ambiguous framing, by reason.",
	}, []string{"reason"})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshproxy_config_reloads_total",
		Help: "Config reloads, by result (success, failure).",
	}, []string{"result"})
	hijacked := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshproxy_upgraded_connections",
		Help: "Upgraded (e.g. WebSocket) connections being relayed now.",
	})
	for _, c := range []prometheus.Collector{requests, inFlight, aborts, upErrs, smuggling, reloads, hijacked} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		upstreamErrs:  upErrs,
		upstreamErr:   make(map[[2]string]prometheus.Counter),
		smuggling:     smuggling,
		reloadsOK:     reloads.WithLabelValues("success"),
		reloadsFailed: reloads.WithLabelValues("failure"),
		hijacked:      hijacked,
	}
	for i, d := range []model.Direction{model.Inbound, model.Outbound} {
		m.requests[i] = requests.WithLabelValues(string(d))
		m.inFlight[i] = inFlight.WithLabelValues(string(d))
		m.clientAborts[i] = aborts.WithLabelValues(string(d))
		for _, k := range []string{errKindConnect, errKindTimeout, errKindReset, errKindBody, errKindNoUpstream} {
			m.upstreamErr[[2]string{string(d), k}] = upErrs.WithLabelValues(string(d), k)
		}
	}
	for _, r := range []string{rejectCLAndTE, rejectDuplicateCL, rejectMalformedCL, rejectObsFold, rejectTEUnsupported} {
		smuggling.WithLabelValues(r)
	}
	return m, nil
}

func (m *metrics) upstreamError(d model.Direction, kind string) {
	m.upstreamErr[[2]string{string(d), kind}].Inc()
}

func (m *metrics) smugglingRejected(reason string) {
	m.smuggling.WithLabelValues(reason).Inc()
}
