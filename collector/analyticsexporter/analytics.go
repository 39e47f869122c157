package analyticsexporter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/meshlens/meshlens/collector/internal/hdrlog"
	"github.com/meshlens/meshlens/collector/internal/health"
	"github.com/meshlens/meshlens/collector/meshlensextension"
	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
)

// minutesKept is how many minutes of merged histograms stay in memory for
// the exact percentile gauges.
const minutesKept = 10

// hopSeries is the cumulative state of one hop key.
type hopSeries struct {
	labels                    []string // service, direction, peer, route, method, status_class
	requests                  uint64
	total, upstream, overhead *promHistogram
}

// fasterKey is a hop key without its status class.
type fasterKey struct {
	service, direction, peer, route, method string
}

// gaugeKey is the key of the exact percentile gauges.
type gaugeKey struct {
	service, direction, peer string
}

type analytics struct {
	cfg     *Config
	set     exporter.Settings
	release func()
	now     func() time.Time

	boundsSeconds    []float64
	boundsMicros     []float64
	buckets          *bucketIndex
	thresholdsMicros []float64
	thresholdLabels  []string

	disc *discovery

	mu     sync.Mutex
	starts int
	health *health.Metrics
	series map[model.HopKey]*hopSeries
	// waiting holds the latest exemplar of hop keys that have spans but
	// no series yet (a proxy sends spans at once and histograms every
	// interval), so the series starts with it.
	waiting       map[model.HopKey]exemplar
	waitingPruned time.Time
	faster        map[fasterKey][]uint64
	minutes       map[time.Time]map[gaugeKey]*hdr.Packed
	dedupe        *dedupe
	unreg         func()
}

func newAnalytics(set exporter.Settings, cfg *Config, hooks []ServiceHook, release func()) *analytics {
	a := &analytics{
		cfg: cfg, set: set, release: release, now: time.Now,
		series:  map[model.HopKey]*hopSeries{},
		waiting: map[model.HopKey]exemplar{},
		faster:  map[fasterKey][]uint64{},
		minutes: map[time.Time]map[gaugeKey]*hdr.Packed{},
		disc:    newDiscovery(set.Logger, hooks),
	}
	a.dedupe = newDedupe(cfg.DedupeWindow, a.now())
	a.boundsSeconds = cfg.classicBounds()
	for _, b := range a.boundsSeconds {
		a.boundsMicros = append(a.boundsMicros, b*1e6)
	}
	a.buckets = newBucketIndex(cfg.NativeSchema, a.boundsMicros)
	for _, t := range cfg.SLOThresholds {
		a.thresholdsMicros = append(a.thresholdsMicros, t*1e6)
		a.thresholdLabels = append(a.thresholdLabels, strconv.FormatFloat(t, 'g', -1, 64))
	}
	return a
}

// start runs once per pipeline the exporter is in; the first one registers
// the metrics and seeds discovery from the store.
func (a *analytics) start(ctx context.Context, host component.Host) error {
	a.mu.Lock()
	a.starts++
	first := a.starts == 1
	a.mu.Unlock()
	if !first {
		return nil
	}
	ext, err := meshlensextension.Get(host, a.cfg.Extension)
	if err != nil {
		return fmt.Errorf("meshlens_analytics exporter: %w", err)
	}
	c := &collector{a: a}
	if err := ext.Registerer().Register(c); err != nil {
		return fmt.Errorf("meshlens_analytics exporter: register metrics: %w", err)
	}
	a.mu.Lock()
	a.health = ext.Health()
	a.unreg = func() { ext.Registerer().Unregister(c) }
	a.mu.Unlock()
	if st := ext.Store(); st != nil {
		ss, err1 := st.Services(ctx)
		es, err2 := st.Edges(ctx)
		if err1 != nil || err2 != nil {
			a.set.Logger.Warn("meshlens_analytics exporter: could not read known services; hooks may repeat", zap.Errors("errors", []error{err1, err2}))
		}
		a.disc.seed(ss, es)
	}
	a.disc.start()
	return nil
}

func (a *analytics) shutdown(context.Context) error {
	a.mu.Lock()
	if a.starts > 1 {
		a.starts--
		a.mu.Unlock()
		return nil
	}
	a.starts = 0
	unreg := a.unreg
	a.unreg = nil
	a.mu.Unlock()
	if unreg != nil {
		unreg()
	}
	a.disc.shutdown()
	a.release()
	return nil
}

// decodedHop is one hop record with its histograms decoded.
type decodedHop struct {
	hdrlog.Hop
	total, upstream, overhead *hdr.Packed
	dedupeKey                 string
}

// decodeHop gets a hop record's histograms: those the receiver decoded
// when they came along (hdrlog.Decoded), else decoded here. They are
// shared, so they are only read.
func decodeHop(dec *hdrlog.Decoded, h hdrlog.Hop) (decodedHop, error) {
	d := decodedHop{Hop: h}
	var err error
	if d.total, err = dec.Packed(h.Total); err != nil {
		return d, fmt.Errorf("total: %w", err)
	}
	if d.upstream, err = dec.Packed(h.Upstream); err != nil {
		return d, fmt.Errorf("upstream: %w", err)
	}
	if d.overhead, err = dec.Packed(h.Overhead); err != nil {
		return d, fmt.Errorf("overhead: %w", err)
	}
	d.total, d.upstream, d.overhead = asMeshlensGeometry(d.total), asMeshlensGeometry(d.upstream), asMeshlensGeometry(d.overhead)
	return d, nil
}

func dedupeKey(h hdrlog.Hop) string {
	k := h.Key
	return h.Instance + "\x00" + strconv.FormatUint(h.Seq, 10) + "\x00" + string(k.Direction) + "\x00" + k.Service + "\x00" + k.Peer + "\x00" + k.Route + "\x00" + k.Method + "\x00" + k.StatusClass
}

func (a *analytics) consumeLogs(ctx context.Context, ld plog.Logs) error {
	var hops []decodedHop
	var bad int
	dec := hdrlog.DecodedFrom(ctx)
	err := hdrlog.Each(ld, func(h hdrlog.Hop) error {
		d, err := decodeHop(dec, h)
		if err != nil {
			bad++
			return nil
		}
		d.dedupeKey = dedupeKey(h)
		hops = append(hops, d)
		return nil
	})
	if err != nil {
		bad = ld.LogRecordCount()
		hops = nil
	}
	a.Add(hops)
	if bad > 0 && a.health != nil {
		a.health.Dropped.WithLabelValues(health.SignalHistograms, "malformed_record").Add(float64(bad))
	}
	return nil
}

// Add merges decoded hops into the metrics and the per-minute histograms.
// A hop already seen (same instance, seq and key) is skipped.
func (a *analytics) Add(hops []decodedHop) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	var dups, over int
	for i := range hops {
		h := &hops[i]
		if a.dedupe.seen(h.dedupeKey, now) {
			dups++
			continue
		}
		s, ok := a.series[h.Key]
		if !ok {
			if len(a.series) >= a.cfg.MaxSeries {
				over++
				a.dedupe.forget(h.dedupeKey)
				continue
			}
			s = &hopSeries{
				labels:   []string{h.Key.Service, string(h.Key.Direction), h.Key.Peer, h.Key.Route, h.Key.Method, h.Key.StatusClass},
				total:    newPromHistogram(a.cfg.NativeSchema, len(a.boundsMicros), now),
				upstream: newPromHistogram(a.cfg.NativeSchema, len(a.boundsMicros), now),
				overhead: newPromHistogram(a.cfg.NativeSchema, len(a.boundsMicros), now),
			}
			a.series[h.Key] = s
			if e, ok := a.waiting[h.Key]; ok {
				s.total.exemplar = e
				delete(a.waiting, h.Key)
			}
		}
		s.requests += uint64(h.total.TotalCount())
		s.total.add(h.total, a.buckets, a.cfg.NativeMaxBuckets)
		s.upstream.add(h.upstream, a.buckets, a.cfg.NativeMaxBuckets)
		s.overhead.add(h.overhead, a.buckets, a.cfg.NativeMaxBuckets)
		a.countFaster(h)
		a.mergeMinute(h)
		a.disc.see(h.Service, true, h.End)
		a.disc.see(h.Key.Service, true, h.End)
		caller, callee := h.Key.Edge()
		a.disc.seeEdge(caller, callee, h.End)
		if h.Key.Direction == model.Outbound {
			a.disc.see(h.Key.Peer, false, h.End)
		}
	}
	a.pruneMinutes(now)
	if a.health != nil {
		if dups > 0 {
			a.health.Dropped.WithLabelValues(health.SignalHistograms, "duplicate").Add(float64(dups))
		}
		if over > 0 {
			a.health.Dropped.WithLabelValues(health.SignalHistograms, "max_series").Add(float64(over))
		}
	}
}

// countFaster adds to the exact threshold counters. HdrHistogram holds
// values at 3 significant digits: the values of one bucket are equivalent,
// and a bucket counts as faster than T when its lowest value is <= T (the
// rule of HdrHistogram's count-between-values), so a request of exactly T
// counts.
func (a *analytics) countFaster(h *decodedHop) {
	if len(a.thresholdsMicros) == 0 {
		return
	}
	k := fasterKey{h.Key.Service, string(h.Key.Direction), h.Key.Peer, h.Key.Route, h.Key.Method}
	c, ok := a.faster[k]
	if !ok {
		c = make([]uint64, len(a.thresholdsMicros))
		a.faster[k] = c
	}
	h.total.ForEachBucket(func(lo, n int64) bool {
		for i, t := range a.thresholdsMicros {
			if float64(lo) <= t {
				c[i] += uint64(n)
			}
		}
		return true
	})
}

func (a *analytics) mergeMinute(h *decodedHop) {
	m := h.Start.UTC().Truncate(time.Minute) // map key: UTC, no monotonic reading
	keys, ok := a.minutes[m]
	if !ok {
		keys = map[gaugeKey]*hdr.Packed{}
		a.minutes[m] = keys
	}
	gk := gaugeKey{h.Key.Service, string(h.Key.Direction), h.Key.Peer}
	p, ok := keys[gk]
	if !ok {
		p = hdr.NewPacked()
		keys[gk] = p
	}
	p.Merge(h.total)
}

func (a *analytics) pruneMinutes(now time.Time) {
	oldest := now.Truncate(time.Minute).Add(-minutesKept * time.Minute)
	for m := range a.minutes {
		if m.Before(oldest) {
			delete(a.minutes, m)
		}
	}
}

// lastCompleteMinute is the latest minute whose histograms are taken as
// complete.
func (a *analytics) lastCompleteMinute(now time.Time) time.Time {
	// UTC like the keys of a.minutes: time.Time map keys compare the
	// location too.
	return now.UTC().Add(-a.cfg.CompleteAfter).Truncate(time.Minute).Add(-time.Minute)
}

// exactMinute returns the minute the exact percentile gauges describe, and
// its histograms (nil: none to describe). That is the last complete minute;
// while it has no histograms yet (its intervals arrive after complete_after:
// a proxy's clock behind the collector's, a backlog being resent, or no
// traffic at all), the complete minute before it keeps being served, so the
// gauges do not vanish from a scrape at the rollover.
func (a *analytics) exactMinute(now time.Time) (time.Time, map[gaugeKey]*hdr.Packed) {
	m := a.lastCompleteMinute(now)
	for range 2 {
		if keys := a.minutes[m]; len(keys) > 0 {
			return m, keys
		}
		m = m.Add(-time.Minute)
	}
	return time.Time{}, nil
}

func (a *analytics) consumeTraces(_ context.Context, td ptrace.Traces) error {
	// A request's spans are gathered first, outside the lock: each service
	// and edge once with the span times it covers, and each hop key once
	// with its latest exemplar (a series keeps only its latest).
	var (
		hops    map[model.HopKey]*hopSpans
		lastKey model.HopKey
		last    *hopSpans
	)
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		service := ""
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			service = v.Str()
		}
		var seen timeSpan
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				at := sp.StartTimestamp().AsTime()
				seen.add(at)
				key, ok := hopKeyOf(service, sp)
				if !ok {
					continue
				}
				if last == nil || key != lastKey {
					if hops == nil {
						hops = map[model.HopKey]*hopSpans{}
					}
					last = hops[key]
					if last == nil {
						last = &hopSpans{}
						hops[key] = last
					}
					lastKey = key
				}
				last.seen.add(at)
				if sp.TraceID().IsEmpty() || sp.EndTimestamp() <= sp.StartTimestamp() {
					continue
				}
				end := sp.EndTimestamp().AsTime()
				last.exemplar = exemplar{traceID: sp.TraceID(), seconds: end.Sub(at).Seconds(), at: end}
			}
		}
		if !seen.first.IsZero() {
			a.disc.see(service, false, seen.first)
			a.disc.see(service, false, seen.last)
		}
	}
	for key, h := range hops {
		caller, callee := key.Edge()
		a.disc.seeEdge(caller, callee, h.seen.first)
		a.disc.seeEdge(caller, callee, h.seen.last)
	}
	if len(hops) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, h := range hops {
		if !h.exemplar.valid() {
			continue
		}
		if s, ok := a.series[key]; ok {
			s.total.exemplar = h.exemplar
		} else {
			a.wait(key, h.exemplar)
		}
	}
	return nil
}

// hopSpans is what one request's spans of a hop key tell.
type hopSpans struct {
	seen     timeSpan
	exemplar exemplar // the latest span's; none when no span had a trace
}

// timeSpan is the earliest and latest of the times added to it.
type timeSpan struct{ first, last time.Time }

func (t *timeSpan) add(at time.Time) {
	if t.first.IsZero() || at.Before(t.first) {
		t.first = at
	}
	if at.After(t.last) {
		t.last = at
	}
}

// maxWaiting bounds the exemplars kept for hop keys without a series; a key
// whose histograms never come (spans of a service without a proxy) is let go
// after waitingFor.
const (
	maxWaiting = 10000
	waitingFor = 5 * time.Minute
)

// wait keeps e as the latest exemplar of key until its series starts.
// Called with a.mu held.
func (a *analytics) wait(key model.HopKey, e exemplar) {
	if _, ok := a.waiting[key]; !ok && len(a.waiting) >= maxWaiting {
		// Full: let go of stale keys, at most once a minute, so a flood of
		// new keys costs no scan per span.
		now := a.now()
		if now.Sub(a.waitingPruned) < time.Minute {
			return
		}
		a.waitingPruned = now
		cutoff := now.Add(-waitingFor)
		for k, old := range a.waiting {
			if old.at.Before(cutoff) {
				delete(a.waiting, k)
			}
		}
		if len(a.waiting) >= maxWaiting {
			return
		}
	}
	a.waiting[key] = e
}
