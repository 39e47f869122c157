package storeexporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper/xexporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	pdatareq "go.opentelemetry.io/collector/pdata/xpdata/request"
	"go.opentelemetry.io/collector/pipeline"
	"go.uber.org/zap"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/internal/spans"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

const (
	signalSpans      = health.SignalSpans
	signalHistograms = health.SignalHistograms
)

// storeExporter writes one signal to the store.
type storeExporter struct {
	cfg      *Config
	set      exporter.Settings
	signal   string
	redactor *spans.Redactor

	st     store.Store
	health *health.Metrics
	queued atomic.Int64 // items queued and not yet written, the last run's backlog included
	gauge  prometheus.Gauge

	observed observed // services and edges written

	// spill sends arriving spans to the sending queue instead of the
	// write-through: set when a write-through group fails, cleared when
	// the queue writes to the store again.
	spill atomic.Bool
}

func newStoreExporter(set exporter.Settings, cfg *Config, signal string) *storeExporter {
	return &storeExporter{cfg: cfg, set: set, signal: signal, redactor: spans.NewRedactor(cfg.RedactAttributes)}
}

func (e *storeExporter) start(_ context.Context, host component.Host) error {
	ext, err := meshlensextension.Get(host, e.cfg.Extension)
	if err != nil {
		return fmt.Errorf("meshlens_store exporter: %w", err)
	}
	e.st, e.health = ext.Store(), ext.Health()
	if e.st == nil {
		return errors.New("meshlens_store exporter: the meshlens extension has no open store")
	}
	e.gauge = e.health.QueueLength.WithLabelValues(e.signal)
	// Runs before exporterhelper opens the queue and its consumers take
	// anything from it, so each item is counted in once and out once.
	e.addQueued(e.backlog(host))
	return nil
}

// peeker is the meshlens_log_storage extension's look at a client's values
// before the client is opened (logstorage.Peek).
type peeker interface {
	Peek(kind component.Kind, id component.ID, name string, fn func(key string, value []byte) error) error
}

// backlog counts the spans or histogram hops the persistent sending queue
// holds from the collector's last run, for meshlens_collector_queue_length:
// they are written before anything that arrives now. It counts what a
// meshlens_log_storage queue holds; another storage extension's backlog is
// not counted (the gauge then starts at zero, as before).
func (e *storeExporter) backlog(host component.Host) int {
	if !e.cfg.QueueConfig.HasValue() || e.cfg.QueueConfig.Get().StorageID == nil {
		return 0
	}
	p, ok := host.GetExtensions()[*e.cfg.QueueConfig.Get().StorageID].(peeker)
	if !ok {
		return 0
	}
	signal := pipeline.SignalTraces
	if e.signal == signalHistograms {
		signal = pipeline.SignalLogs
	}
	n := 0
	err := p.Peek(component.KindExporter, e.set.ID, signal.String(), func(key string, value []byte) error {
		if _, err := strconv.ParseUint(key, 10, 64); err != nil {
			return nil // the queue's own metadata, not an item
		}
		n += e.queuedItems(value)
		return nil
	})
	if err != nil {
		e.set.Logger.Warn("meshlens_store exporter: cannot count the queue's backlog; meshlens_collector_queue_length leaves it out", zap.Error(err))
		return 0
	}
	if n > 0 {
		e.set.Logger.Info("meshlens_store exporter: the sending queue holds a backlog from the last run", zap.String("signal", e.signal), zap.Int("items", n))
	}
	return n
}

// queuedItems is how many spans or histogram hops one queued request
// counted in when it was queued; an item that does not decode counts none.
func (e *storeExporter) queuedItems(value []byte) int {
	if e.signal == signalSpans {
		_, req, err := spanEncoding{redactor: e.redactor}.Unmarshal(value)
		if err != nil {
			return 0
		}
		r := req.(*spanRequest)
		return r.n + r.invalid
	}
	_, ld, err := pdatareq.UnmarshalLogs(value)
	if errors.Is(err, pdatareq.ErrInvalidFormat) {
		ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(value)
	}
	if err != nil {
		return 0
	}
	return ld.LogRecordCount()
}

// enqueued and written keep meshlens_collector_queue_length; start counts
// in the backlog of the last run (backlog). The count never goes below
// zero: a backlog that could not be counted (a queue on another storage
// extension) is written all the same, and must not hide what comes next.
func (e *storeExporter) addQueued(n int) {
	for {
		old := e.queued.Load()
		v := max(old+int64(n), 0)
		if e.queued.CompareAndSwap(old, v) {
			if e.gauge != nil {
				e.gauge.Set(float64(v))
			}
			return
		}
	}
}

// storeErr classifies a store failure: every store failure is retryable
// (the database may come back), and ctx cancellation stays as it is.
func storeErr(what string, err error) error {
	return fmt.Errorf("write %s: %w", what, err)
}

func (e *storeExporter) timed(ctx context.Context, kind string, fn func(context.Context) error) error {
	start := time.Now()
	err := fn(ctx)
	if err == nil {
		e.health.ObserveWrite(kind, start)
	}
	return err
}

// convertedKey carries a request the write-through converted already to
// spanRequestFrom, when the write-through hands it to the sending queue.
type convertedKey struct{}

// spanRequestFrom converts arriving spans into a request (before the
// sending queue).
func (e *storeExporter) spanRequestFrom(ctx context.Context, td ptrace.Traces) (xexporterhelper.Request, error) {
	if r, ok := ctx.Value(convertedKey{}).(*spanRequest); ok {
		return r, nil
	}
	return newSpanRequest(td, e.redactor), nil
}

// pushSpans writes one request (or batch) from the sending queue.
func (e *storeExporter) pushSpans(ctx context.Context, req xexporterhelper.Request) error {
	r := req.(*spanRequest)
	if r.invalid > 0 {
		e.health.Dropped.WithLabelValues(signalSpans, "invalid_id").Add(float64(r.invalid))
		e.addQueued(-r.invalid)
		r.invalid = 0 // counted once, even if the write below is retried
	}
	if err := e.writeSpans(ctx, r); err != nil {
		return err
	}
	e.addQueued(-r.n)
	r.release() // written: the batch buffer serves the next batch
	if e.spill.CompareAndSwap(true, false) {
		e.set.Logger.Info("meshlens_store exporter: the store takes writes again; spans are written through again")
	}
	return nil
}

// writeGroup writes a write-through group as one batch. The requests are
// left as they are, for the sending queue if the write fails.
func (e *storeExporter) writeGroup(ctx context.Context, reqs []*spanRequest) error {
	batch := reqs[0]
	if len(reqs) > 1 {
		size := 0
		for _, r := range reqs {
			size += len(r.rows)
		}
		batch = &spanRequest{}
		batch.own(size)
		for _, r := range reqs {
			batch.add(r)
		}
		defer batch.release()
	}
	if err := e.writeSpans(ctx, batch); err != nil {
		return err
	}
	if batch.invalid > 0 {
		e.health.Dropped.WithLabelValues(signalSpans, "invalid_id").Add(float64(batch.invalid))
	}
	e.addQueued(-(batch.n + batch.invalid))
	for _, r := range reqs {
		r.recycle() // written: their senders are answered and let go of them
	}
	return nil
}

// writeSpans writes r's rows and the services and edges they reveal.
func (e *storeExporter) writeSpans(ctx context.Context, r *spanRequest) error {
	if r.n > 0 {
		// PostgreSQL COPYs the rows as they are; SQLite gets them decoded.
		write := func(ctx context.Context) error {
			return spanrows.Write(ctx, e.st, spanrows.Batch{Rows: r.rows, N: r.n, Summary: r.sum})
		}
		if err := e.timed(ctx, "spans", write); err != nil {
			return storeErr("spans", err)
		}
	}
	return e.observe(ctx, r.services, r.edges)
}

// observe writes the services and edges that change what this exporter
// has written (observed).
func (e *storeExporter) observe(ctx context.Context, services []store.Service, edges []store.Edge) error {
	if services = e.observed.newServices(services); len(services) > 0 {
		if err := e.timed(ctx, "services", func(ctx context.Context) error { return e.st.ObserveServices(ctx, services) }); err != nil {
			return storeErr("services", err)
		}
		e.observed.wroteServices(services)
	}
	if edges = e.observed.newEdges(edges); len(edges) > 0 {
		if err := e.timed(ctx, "edges", func(ctx context.Context) error { return e.st.ObserveEdges(ctx, edges) }); err != nil {
			return storeErr("edges", err)
		}
		e.observed.wroteEdges(edges)
	}
	return nil
}

// rollupKey identifies a rollup row: writing the same key again replaces it.
type rollupKey struct {
	minute time.Time
	hop    string
	source string
}

// Source names the writer of one interval's rollup: the proxy instance and
// the interval's sequence number. Each interval is its own partial rollup
// of its minute, so a batch delivered twice (a proxy retry, a queue replay
// after a crash) replaces rows instead of adding to them, and no state is
// kept in memory between writes.
func Source(instance string, seq uint64) string {
	return instance + "/" + strconv.FormatUint(seq, 10)
}

// Rollups turns histogram records into rollups (one per interval and hop)
// and the services and edges they reveal.
func Rollups(ld plog.Logs) ([]store.Rollup, []store.Service, []store.Edge, error) {
	var rollups []store.Rollup
	index := map[rollupKey]int{}
	services := map[string]*store.Service{}
	edges := map[[2]string]*store.Edge{}
	see := func(name string, hasProxy bool, first, last time.Time) {
		if name == "" || name == "unknown" {
			return
		}
		s, ok := services[name]
		if !ok {
			services[name] = &store.Service{Name: name, HasProxy: hasProxy, FirstSeen: first, LastSeen: last}
			return
		}
		s.HasProxy = s.HasProxy || hasProxy
		if first.Before(s.FirstSeen) {
			s.FirstSeen = first
		}
		if last.After(s.LastSeen) {
			s.LastSeen = last
		}
	}
	err := hdrlog.Each(ld, func(h hdrlog.Hop) error {
		r := store.Rollup{
			Minute: h.Start.Truncate(time.Minute), Key: h.Key, Source: Source(h.Instance, h.Seq),
			Count: h.Count, Total: h.Total, Upstream: h.Upstream, Overhead: h.Overhead,
		}
		k := rollupKey{minute: r.Minute, hop: fmt.Sprintf("%q", h.Key), source: r.Source}
		if i, dup := index[k]; dup {
			rollups[i] = r // the same interval twice: the same data
		} else {
			index[k] = len(rollups)
			rollups = append(rollups, r)
		}
		see(h.Service, true, h.Start, h.End)
		see(h.Key.Service, true, h.Start, h.End)
		see(h.Key.Peer, false, h.Start, h.End)
		caller, callee := h.Key.Edge()
		if caller == "" || callee == "" || caller == "unknown" || callee == "unknown" {
			return nil
		}
		ek := [2]string{caller, callee}
		if e, ok := edges[ek]; ok {
			if h.Start.Before(e.FirstSeen) {
				e.FirstSeen = h.Start
			}
			if h.End.After(e.LastSeen) {
				e.LastSeen = h.End
			}
		} else {
			edges[ek] = &store.Edge{Caller: caller, Callee: callee, FirstSeen: h.Start, LastSeen: h.End}
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	ss := make([]store.Service, 0, len(services))
	for _, s := range services {
		ss = append(ss, *s)
	}
	es := make([]store.Edge, 0, len(edges))
	for _, e := range edges {
		es = append(es, *e)
	}
	return rollups, ss, es, nil
}

func (e *storeExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	n := ld.LogRecordCount()
	rollups, services, edges, err := Rollups(ld)
	if err != nil {
		e.health.Dropped.WithLabelValues(signalHistograms, "malformed_record").Add(float64(n))
		e.addQueued(-n)
		e.set.Logger.Warn("meshlens_store exporter: dropping malformed histogram records", zap.Error(err))
		return consumererror.NewPermanent(err)
	}
	if len(rollups) > 0 {
		if err := e.timed(ctx, "rollups", func(ctx context.Context) error { return e.st.WriteRollups(ctx, rollups) }); err != nil {
			return storeErr("rollups", err)
		}
	}
	if err := e.observe(ctx, services, edges); err != nil {
		return err
	}
	e.addQueued(-n)
	return nil
}
