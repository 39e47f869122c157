// Package report builds tail-latency reports from stored per-minute HDR
// rollups: per service, edge and route, the requests, errors and latency
// percentiles of a window next to the window before it, worst tail first,
// plus the percentile distribution and the latency over time of every
// service. Percentiles come from histograms merged exactly from the rollups,
// so they carry HdrHistogram's 3 significant digits.
//
// A Report is rendered as an aligned text table (WriteText), JSON
// (WriteJSON), one self-contained HTML page (WriteHTML) or an HdrHistogram
// interval log (WriteHlog).
package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Source is where a report reads rollups: a store.Store, or a collector's
// query API (APISource).
type Source interface {
	Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error)
}

var _ Source = (store.Store)(nil)

// Options choose the window and the time resolution of a report.
type Options struct {
	// From and To bound the window, [From, To). The previous window is the
	// same length just before From. Rollups are per minute, so the window
	// covers the minutes that start in it.
	From, To time.Time
	// Step is the resolution of the latency-over-time series and of the
	// interval log; 0 picks one minute for windows up to two hours and about
	// 120 points for longer ones.
	Step time.Duration
	// At, when set, places a rollup in time for the series (the default is
	// the rollup's minute). The demo uses it to give the series the
	// resolution at which it watched intervals arrive.
	At func(store.Rollup) time.Time
}

// Validate checks the window.
func (o Options) Validate() error {
	switch {
	case o.From.IsZero():
		return errors.New("from: must be set")
	case o.To.IsZero():
		return errors.New("to: must be set")
	case !o.To.After(o.From):
		return fmt.Errorf("to: %s is not after from %s", o.To.Format(time.RFC3339), o.From.Format(time.RFC3339))
	case o.Step < 0:
		return fmt.Errorf("step: %v must not be negative", o.Step)
	}
	return nil
}

// Report is a tail-latency report.
type Report struct {
	From         time.Time `json:"from"`
	To           time.Time `json:"to"`
	PreviousFrom time.Time `json:"previous_from"`
	StepSeconds  float64   `json:"step_seconds"`
	// Services, Edges and Routes are sorted worst tail first (p99.9, then
	// p99, then name).
	Services []Row `json:"services"`
	Edges    []Row `json:"edges"`
	Routes   []Row `json:"routes"`
	// Distributions are the percentile distributions of every service over
	// the window, in the order of Services.
	Distributions []Distribution `json:"distributions"`
	// PreviousDistributions are the same for the previous window, for the
	// services that had traffic in it.
	PreviousDistributions []Distribution `json:"previous_distributions"`
	// Timeline is the latency over time of every service across both
	// windows, in the order of Services.
	Timeline []Series `json:"timeline"`
	// SkippedRollups counts stored rollups whose histogram did not decode;
	// SkipErrors names the first few. The rest of the report stands.
	SkippedRollups int      `json:"skipped_rollups"`
	SkipErrors     []string `json:"skip_errors,omitempty"`
	// Intervals are the per-step histograms of every service (WriteHlog).
	Intervals []Interval `json:"-"`
}

// Row is one service, edge or route.
type Row struct {
	// Kind is "service", "edge" or "route".
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Service string `json:"service,omitempty"`
	Caller  string `json:"caller,omitempty"`
	Callee  string `json:"callee,omitempty"`
	Method  string `json:"method,omitempty"`
	Route   string `json:"route,omitempty"`
	// MeasuredBy says whose sidecar measured the row: "callee" (inbound
	// hops) or "caller" (outbound hops).
	MeasuredBy string `json:"measured_by"`
	Current    Stats  `json:"current"`
	// Previous is the window before; nil when it saw no request.
	Previous *Stats `json:"previous"`
	// Change compares Current with Previous; nil without Previous.
	Change *Change `json:"change"`
}

// Stats are a row's figures over one window. Latencies are microseconds.
type Stats struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50       int64   `json:"p50_us"`
	P90       int64   `json:"p90_us"`
	P99       int64   `json:"p99_us"`
	P999      int64   `json:"p99_9_us"`
	P9999     int64   `json:"p99_99_us"`
	Max       int64   `json:"max_us"`
}

// Change is the current window against the previous one. Ratios are
// relative (0.25 means 25% more); ErrorRate is the difference of the two
// error rates.
type Change struct {
	Requests  float64 `json:"requests"`
	ErrorRate float64 `json:"error_rate"`
	P50       float64 `json:"p50"`
	P99       float64 `json:"p99"`
	P999      float64 `json:"p99_9"`
	Max       float64 `json:"max"`
}

// Distribution is a service's latency at percentiles spread evenly on a
// logarithmic "nines" axis: Nines is -log10(1 - percentile/100), so 1 is
// p90, 2 is p99, 3 is p99.9.
type Distribution struct {
	Service string    `json:"service"`
	Points  []DistPct `json:"points"`
}

// DistPct is one point of a Distribution.
type DistPct struct {
	Nines      float64 `json:"nines"`
	Percentile float64 `json:"percentile"`
	Micros     int64   `json:"us"`
}

// Series is a service's latency over time, one point per step with traffic.
type Series struct {
	Service string  `json:"service"`
	Points  []Point `json:"points"`
}

// Point is one step of a Series.
type Point struct {
	At       time.Time `json:"at"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
	P50      int64     `json:"p50_us"`
	P99      int64     `json:"p99_us"`
	P999     int64     `json:"p99_9_us"`
	Max      int64     `json:"max_us"`
}

// Interval is one service's histogram over one step.
type Interval struct {
	Tag        string
	Start, End time.Time
	Histogram  *hdr.Histogram
}

// maxSkipErrors bounds the skipped rollups a report names.
const maxSkipErrors = 5

// Percentiles reported for every row.
var rowPercentiles = []float64{50, 90, 99, 99.9, 99.99}

// Build reads the rollups of the window and the one before it and builds the
// report.
func Build(ctx context.Context, src Source, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	length := o.To.Sub(o.From)
	prevFrom := o.From.Add(-length)
	rs, err := src.Rollups(ctx, store.RollupFilter{From: prevFrom.Truncate(time.Minute), To: o.To})
	if err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	return FromRollups(rs, o)
}

// FromRollups builds the report from rollups already read; rollups outside
// the two windows are ignored.
func FromRollups(rs []store.Rollup, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	length := o.To.Sub(o.From)
	prevFrom := o.From.Add(-length)
	step := o.Step
	if step == 0 {
		step = defaultStep(length)
	}
	at := o.At
	if at == nil {
		at = func(r store.Rollup) time.Time { return r.Minute }
	}
	b := newBuilder()
	// Services that have a sidecar are reported from their inbound hops;
	// the others from their callers' outbound hops.
	inbound := map[string]bool{}
	for _, r := range rs {
		if r.Key.Direction == model.Inbound {
			inbound[r.Key.Service] = true
		}
	}
	// Without At, windows select whole minutes (the minutes that start in
	// them); with At, the instants At gives.
	inWindow := func(r store.Rollup, from, to time.Time) bool {
		t := r.Minute
		if o.At != nil {
			t = at(r)
		} else {
			from = from.Truncate(time.Minute)
			if !to.Equal(o.To) {
				to = to.Truncate(time.Minute)
			}
		}
		return !t.Before(from) && t.Before(to)
	}
	tl := newTimeline(prevFrom.Truncate(time.Minute), step)
	var skipped int
	var skipErrs []string
	for i, r := range rs {
		m := r.Minute
		cur := inWindow(r, o.From, o.To)
		if !cur && !inWindow(r, prevFrom, o.From) {
			continue
		}
		if r.Total == "" {
			continue
		}
		h, err := hdr.Decode(r.Total)
		if err != nil {
			// One bad row must not cost the report: skip it, count it,
			// and name the first ones.
			skipped++
			if len(skipErrs) < maxSkipErrors {
				skipErrs = append(skipErrs, fmt.Sprintf("rollup %d (%s, %s %s %s, source %s): total: %v", i, m.Format(time.RFC3339), r.Key.Service, r.Key.Direction, r.Key.Peer, r.Source, err))
			}
			continue
		}
		isErr := r.Key.StatusClass == "5xx"
		for _, k := range rowKeys(r.Key, inbound) {
			b.add(k, cur, h, isErr)
		}
		if svc, ok := serviceOf(r.Key, inbound); ok {
			tl.add(at(r), svc, h, isErr)
		}
	}
	rep := &Report{From: o.From.UTC(), To: o.To.UTC(), PreviousFrom: prevFrom.UTC(), StepSeconds: step.Seconds(),
		SkippedRollups: skipped, SkipErrors: skipErrs}
	rep.Services, rep.Edges, rep.Routes = b.rows()
	for _, row := range rep.Services {
		k := rowKey{kind: "service", service: row.Service, measuredBy: row.MeasuredBy}
		rep.Distributions = append(rep.Distributions, Distribution{Service: row.Service, Points: distribution(b.cur[k].h)})
		if p := b.prev[k]; p != nil {
			rep.PreviousDistributions = append(rep.PreviousDistributions, Distribution{Service: row.Service, Points: distribution(p.h)})
		}
		series, intervals := tl.series(row.Service)
		rep.Timeline = append(rep.Timeline, series)
		rep.Intervals = append(rep.Intervals, intervals...)
	}
	return rep, nil
}

func defaultStep(window time.Duration) time.Duration {
	if window <= 2*time.Hour {
		return time.Minute
	}
	return (window / 120).Truncate(time.Minute)
}

// rowKey identifies one row.
type rowKey struct {
	kind, service, caller, callee, method, route, measuredBy string
}

func serviceOf(k model.HopKey, inbound map[string]bool) (string, bool) {
	if k.Direction == model.Inbound {
		return k.Service, true
	}
	if !inbound[k.Peer] && k.Peer != "" {
		return k.Peer, true
	}
	return "", false
}

// rowKeys are the rows one hop counts towards. An edge is reported as its
// caller measured it (outbound) when the caller has a sidecar, otherwise as
// the callee measured it (inbound).
func rowKeys(k model.HopKey, inbound map[string]bool) []rowKey {
	var out []rowKey
	if svc, ok := serviceOf(k, inbound); ok {
		by := "callee"
		if k.Direction == model.Outbound {
			by = "caller"
		}
		out = append(out, rowKey{kind: "service", service: svc, measuredBy: by})
	}
	caller, callee := k.Edge()
	switch k.Direction {
	case model.Outbound:
		out = append(out, rowKey{kind: "edge", caller: caller, callee: callee, measuredBy: "caller"})
	case model.Inbound:
		if !callerHasSidecar(caller, inbound) {
			out = append(out, rowKey{kind: "edge", caller: caller, callee: callee, measuredBy: "callee"})
		}
		out = append(out, rowKey{kind: "route", service: k.Service, method: k.Method, route: k.Route, measuredBy: "callee"})
	}
	return out
}

// callerHasSidecar is true when the caller's own outbound hops will report
// the edge. A caller with inbound hops has a sidecar; "unknown" and
// external callers do not.
func callerHasSidecar(caller string, inbound map[string]bool) bool { return inbound[caller] }

type agg struct {
	h      *hdr.Histogram
	errors int64
}

type builder struct {
	cur, prev map[rowKey]*agg
}

func newBuilder() *builder {
	return &builder{cur: map[rowKey]*agg{}, prev: map[rowKey]*agg{}}
}

func (b *builder) add(k rowKey, cur bool, h *hdr.Histogram, isErr bool) {
	m := b.prev
	if cur {
		m = b.cur
	}
	a := m[k]
	if a == nil {
		a = &agg{h: hdr.New()}
		m[k] = a
	}
	a.h.Merge(h)
	if isErr {
		a.errors += h.TotalCount()
	}
}

func (b *builder) rows() (services, edges, routes []Row) {
	for k, a := range b.cur {
		row := Row{Kind: k.kind, Service: k.service, Caller: k.caller, Callee: k.callee, Method: k.method, Route: k.route, MeasuredBy: k.measuredBy}
		switch k.kind {
		case "service":
			row.Name = k.service
		case "edge":
			row.Name = k.caller + " -> " + k.callee
		case "route":
			row.Name = k.service + " " + k.method + " " + k.route
		}
		row.Current = statsOf(a)
		if p := b.prev[k]; p != nil && p.h.TotalCount() > 0 {
			ps := statsOf(p)
			row.Previous = &ps
			row.Change = change(row.Current, ps)
		}
		switch k.kind {
		case "service":
			services = append(services, row)
		case "edge":
			edges = append(edges, row)
		default:
			routes = append(routes, row)
		}
	}
	for _, rows := range [][]Row{services, edges, routes} {
		sortWorstFirst(rows)
	}
	return services, edges, routes
}

func sortWorstFirst(rows []Row) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i].Current, rows[j].Current
		if a.P999 != b.P999 {
			return a.P999 > b.P999
		}
		if a.P99 != b.P99 {
			return a.P99 > b.P99
		}
		return rows[i].Name < rows[j].Name
	})
}

func statsOf(a *agg) Stats {
	n := a.h.TotalCount()
	s := Stats{Requests: n, Errors: a.errors}
	if n == 0 {
		return s
	}
	s.ErrorRate = float64(a.errors) / float64(n)
	v := a.h.ValueAtPercentilesSlice(rowPercentiles)
	s.P50, s.P90, s.P99, s.P999, s.P9999 = v[0], v[1], v[2], v[3], v[4]
	s.Max = a.h.Max()
	return s
}

func ratio(cur, prev int64) float64 {
	if prev == 0 {
		return 0
	}
	return round4(float64(cur)/float64(prev) - 1)
}

func round4(f float64) float64 { return math.Round(f*1e4) / 1e4 }

func change(cur, prev Stats) *Change {
	return &Change{
		Requests:  ratio(cur.Requests, prev.Requests),
		ErrorRate: round4(cur.ErrorRate - prev.ErrorRate),
		P50:       ratio(cur.P50, prev.P50),
		P99:       ratio(cur.P99, prev.P99),
		P999:      ratio(cur.P999, prev.P999),
		Max:       ratio(cur.Max, prev.Max),
	}
}

// distribution samples h at percentiles evenly spaced on the nines axis,
// 20 per decade, up to the nines the count can resolve, then the maximum.
func distribution(h *hdr.Histogram) []DistPct {
	n := h.TotalCount()
	if n == 0 {
		return nil
	}
	maxNines := math.Log10(float64(n))
	const perDecade = 20
	var pcts []float64
	var nines []float64
	for i := 0; ; i++ {
		x := float64(i) / perDecade
		if x > maxNines {
			break
		}
		nines = append(nines, x)
		pcts = append(pcts, 100*(1-math.Pow(10, -x)))
	}
	vals := h.ValueAtPercentilesSlice(pcts)
	out := make([]DistPct, 0, len(pcts)+1)
	for i := range pcts {
		out = append(out, DistPct{Nines: round4(nines[i]), Percentile: roundPct(pcts[i]), Micros: vals[i]})
	}
	out = append(out, DistPct{Nines: round4(maxNines), Percentile: roundPct(100 * (1 - 1/float64(n))), Micros: h.Max()})
	return out
}

func roundPct(p float64) float64 { return math.Round(p*1e6) / 1e6 }

func modelDirection(s string) model.Direction { return model.Direction(s) }
