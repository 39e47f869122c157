package demo

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/report"
	"github.com/meshlens/meshlens/store"
)

// Watcher polls the store for the intervals the sidecars flushed since the
// last poll. It remembers when it first saw each one, which gives the
// demo's report a time resolution finer than the store's minute, and keeps
// the recent ones for the live table.
type Watcher struct {
	st     store.Store
	window time.Duration // the live table's span

	mu     sync.Mutex
	seen   map[string]time.Time
	recent []observed
	totals map[string]int64
	// corrupt counts rollups whose histogram did not decode.
	corrupt int
}

type observed struct {
	at      time.Time
	service string
	isErr   bool
	h       *hdr.Histogram
}

// NewWatcher watches st; the live table covers the last window.
func NewWatcher(st store.Store, window time.Duration) *Watcher {
	return &Watcher{st: st, window: window, seen: map[string]time.Time{}, totals: map[string]int64{}}
}

func rollupID(r store.Rollup) string {
	k := r.Key
	return strings.Join([]string{r.Minute.UTC().Format(time.RFC3339), r.Source, k.Service, string(k.Direction), k.Peer, k.Route, k.Method, k.StatusClass}, "|")
}

// Poll reads the rollups of the last two minutes and records the new ones
// as seen at now.
func (w *Watcher) Poll(ctx context.Context, now time.Time) error {
	rs, err := w.st.Rollups(ctx, store.RollupFilter{From: now.Add(-2 * time.Minute).Truncate(time.Minute), To: now.Add(time.Minute)})
	if err != nil {
		return fmt.Errorf("watch rollups: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range rs {
		id := rollupID(r)
		if _, ok := w.seen[id]; ok {
			continue
		}
		w.seen[id] = now
		if r.Key.Direction != model.Inbound || r.Total == "" {
			continue
		}
		h, err := hdr.Decode(r.Total)
		if err != nil {
			w.corrupt++ // the final report names it; the table goes on
			continue
		}
		w.totals[r.Key.Service] += h.TotalCount()
		w.recent = append(w.recent, observed{at: now, service: r.Key.Service, isErr: r.Key.StatusClass == "5xx", h: h})
	}
	cut := 0
	for cut < len(w.recent) && now.Sub(w.recent[cut].at) >= w.window {
		cut++
	}
	w.recent = w.recent[cut:]
	return nil
}

// SeenAt is when the watcher first saw a rollup (zero if never).
func (w *Watcher) SeenAt(r store.Rollup) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[rollupID(r)]
}

// LiveRow is one service in the live table.
type LiveRow struct {
	Service          string
	RPS, ErrorRate   float64
	P50, P99, P999   int64
	Requests, Errors int64
}

// Live is the table over the last window (or since start, if shorter).
func (w *Watcher) Live(services []string, span time.Duration) []LiveRow {
	w.mu.Lock()
	defer w.mu.Unlock()
	if span > w.window || span <= 0 {
		span = w.window
	}
	byService := map[string]*LiveRow{}
	hists := map[string]*hdr.Histogram{}
	for _, s := range services {
		byService[s] = &LiveRow{Service: s}
		hists[s] = hdr.New()
	}
	for _, o := range w.recent {
		row := byService[o.service]
		if row == nil {
			continue
		}
		n := o.h.TotalCount()
		row.Requests += n
		if o.isErr {
			row.Errors += n
		}
		hists[o.service].Merge(o.h)
	}
	out := make([]LiveRow, 0, len(services))
	for _, s := range services {
		row, h := byService[s], hists[s]
		row.RPS = float64(row.Requests) / span.Seconds()
		if row.Requests > 0 {
			row.ErrorRate = float64(row.Errors) / float64(row.Requests)
			v := h.ValueAtPercentilesSlice([]float64{50, 99, 99.9})
			row.P50, row.P99, row.P999 = v[0], v[1], v[2]
		}
		out = append(out, *row)
	}
	return out
}

// WriteLive writes the live table.
func WriteLive(out io.Writer, rows []LiveRow, header string) error {
	sorted := append([]LiveRow(nil), rows...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].P999 > sorted[j].P999 })
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header)
	fmt.Fprintf(tw, "%-10s\tRPS\tERR%%\tP50\tP99\tP99.9\t\n", "SERVICE")
	for _, r := range sorted {
		if r.Requests == 0 {
			fmt.Fprintf(tw, "%-10s\t-\t-\t-\t-\t-\t\n", r.Service)
			continue
		}
		fmt.Fprintf(tw, "%-10s\t%.1f\t%.2f\t%s\t%s\t%s\t\n", r.Service, r.RPS, 100*r.ErrorRate, report.Micros(r.P50), report.Micros(r.P99), report.Micros(r.P999))
	}
	return tw.Flush()
}

// Total is the number of inbound requests of a service the watcher has
// seen stored.
func (w *Watcher) Total(service string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.totals[service]
}
