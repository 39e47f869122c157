// Package health holds the collector's own health metrics, shared by every
// meshlens component of one collector: what was received, rejected and
// dropped, how much waits in the store queue, and how long store writes take.
// The names are the contract in docs/metrics.md.
package health

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Signals counted by the health metrics.
const (
	SignalSpans      = "spans"
	SignalHistograms = "histograms" // one per hop histogram set (total, upstream, overhead)
)

// Metrics is the collector's health. The zero value is not usable: use New.
type Metrics struct {
	Received         *prometheus.CounterVec   // {signal}
	Rejected         *prometheus.CounterVec   // {signal,reason}
	Dropped          *prometheus.CounterVec   // {signal,reason}
	QueueLength      *prometheus.GaugeVec     // {signal}
	StoreWriteSecond *prometheus.HistogramVec // {kind}
}

// New creates the health metrics and registers them on reg.
func New(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshlens_collector_received_total",
			Help: "Items taken by the collector's receivers (spans; hop histogram sets).",
		}, []string{"signal"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshlens_collector_rejected_total",
			Help: "Items refused at ingest, by reason (bad payload, unauthorized, overloaded).",
		}, []string{"signal", "reason"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshlens_collector_dropped_total",
			Help: "Items accepted but not stored or not counted, by reason (duplicate, permanent store error).",
		}, []string{"signal", "reason"}),
		QueueLength: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meshlens_collector_queue_length",
			Help: "Items the store exporter has taken and not yet written: in a write-through group or in its sending queue (the last run's backlog included).",
		}, []string{"signal"}),
		StoreWriteSecond: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "meshlens_collector_store_write_duration_seconds",
			Help:                            "Duration of one store write, by kind (spans, rollups, services, edges).",
			Buckets:                         []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.Received, m.Rejected, m.Dropped, m.QueueLength, m.StoreWriteSecond} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveWrite records the duration of one store write of kind since start.
func (m *Metrics) ObserveWrite(kind string, start time.Time) {
	m.StoreWriteSecond.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}
