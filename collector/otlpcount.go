package collector

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/xreceiver"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/internal/spancheck"
	"github.com/meshlens/meshlens/collector/meshlensextension"
)

// countedOTLP is the stock otlp receiver factory with its traces counted in
// the collector's health metrics, as the meshlens_hdr receiver counts what it
// takes: meshlens_collector_received_total{signal="spans"} for spans the
// pipeline took, rejected_total{signal="spans",reason="overloaded"} (or
// "pipeline_refused" for a permanent error) for spans it refused. Without
// this, spans sent over OTLP gRPC (4317) were never counted. The receiver
// itself is the stock one, unchanged.
type countedOTLP struct {
	xreceiver.Factory
}

func newCountedOTLP(f receiver.Factory) receiver.Factory {
	xf, ok := f.(xreceiver.Factory)
	if !ok {
		return f
	}
	return countedOTLP{xf}
}

func (f countedOTLP) CreateTraces(ctx context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	c := &spanCounter{next: next}
	r, err := f.Factory.CreateTraces(ctx, set, cfg, c)
	if err != nil {
		return nil, err
	}
	return &countedTraces{Traces: r, counter: c}, nil
}

// countedTraces finds the meshlens extension's health metrics at Start.
type countedTraces struct {
	receiver.Traces
	counter *spanCounter
}

func (r *countedTraces) Start(ctx context.Context, host component.Host) error {
	if ext := findMeshlens(host); ext != nil {
		r.counter.health.Store(ext.Health())
	}
	return r.Traces.Start(ctx, host)
}

// findMeshlens returns the extension "meshlens", or the only meshlens
// extension of the config; nil when there is none (a config without one:
// nothing is counted).
func findMeshlens(host component.Host) *meshlensextension.Extension {
	if e, err := meshlensextension.Get(host, component.MustNewID("meshlens")); err == nil {
		return e
	}
	var found *meshlensextension.Extension
	for _, c := range host.GetExtensions() {
		if e, ok := c.(*meshlensextension.Extension); ok {
			if found != nil {
				return nil
			}
			found = e
		}
	}
	return found
}

// spanCounter counts what the pipeline behind the receiver takes or
// refuses.
type spanCounter struct {
	next   consumer.Traces
	health atomic.Pointer[health.Metrics]
}

var _ consumer.Traces = (*spanCounter)(nil)

// Capabilities: the counter takes out spans no store can keep
// (spancheck) before passing td on.
func (c *spanCounter) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

func (c *spanCounter) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	h := c.health.Load()
	if bad, why := spancheck.Filter(td, time.Now()); bad > 0 {
		if h != nil {
			h.Rejected.WithLabelValues(health.SignalSpans, spancheck.Reason).Add(float64(bad))
		}
		if td.SpanCount() == 0 {
			// A gRPC status, so that the otlp receiver answers
			// INVALID_ARGUMENT (not retried), not INTERNAL.
			return consumererror.NewPermanent(status.Errorf(codes.InvalidArgument, "nothing taken: %d spans left out: %s", bad, why))
		}
	}
	n := float64(td.SpanCount()) // before next: it may mutate td
	err := c.next.ConsumeTraces(ctx, td)
	if h == nil || n == 0 {
		return err
	}
	switch {
	case err == nil:
		h.Received.WithLabelValues(health.SignalSpans).Add(n)
	case consumererror.IsPermanent(err):
		h.Rejected.WithLabelValues(health.SignalSpans, "pipeline_refused").Add(n)
	default:
		h.Rejected.WithLabelValues(health.SignalSpans, "overloaded").Add(n)
	}
	return err
}
