package telemetry

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"time"

	"github.com/meshlens/meshlens/model"
)

// Stats is the /stats document. Latencies are microseconds (fields end in
// _us).
type Stats struct {
	Service              string  `json:"service"`
	Instance             string  `json:"instance"`
	FlushIntervalSeconds float64 `json:"flush_interval_seconds"`
	// LastInterval is the last completed interval, which every hop's
	// last_interval figures cover; zero before the first flush.
	LastInterval StatsInterval `json:"last_interval"`
	Hops         []HopStats    `json:"hops"`
}

// StatsInterval names an interval.
type StatsInterval struct {
	Seq   uint64    `json:"seq"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// HopStats are one hop key's figures.
type HopStats struct {
	model.HopKey
	// Requests counts every request recorded under this key since start,
	// the interval in progress included.
	Requests     uint64      `json:"requests"`
	LastInterval WindowStats `json:"last_interval"`
	// SinceStart covers every completed interval; the one in progress is
	// left out (Requests counts it).
	SinceStart WindowStats `json:"since_start"`
}

// Stats returns the figures /stats serves, hops sorted by key.
func (t *Telemetry) Stats() Stats {
	st := Stats{
		Service:              t.service,
		Instance:             t.instance,
		FlushIntervalSeconds: t.cfg.FlushInterval.Seconds(),
		Hops:                 []HopStats{},
	}
	st.LastInterval.Seq, st.LastInterval.Start, st.LastInterval.End = t.hist.lastInterval()
	for _, e := range t.rec.snapshotEntries() {
		st.Hops = append(st.Hops, HopStats{
			HopKey:       e.key,
			Requests:     e.requestCount(),
			LastInterval: e.lastInterval(),
			SinceStart:   e.sinceStart(),
		})
	}
	slices.SortFunc(st.Hops, func(a, b HopStats) int { return compareKeys(a.HopKey, b.HopKey) })
	return st
}

func compareKeys(a, b model.HopKey) int {
	return cmp.Or(
		cmp.Compare(a.Service, b.Service),
		cmp.Compare(a.Direction, b.Direction),
		cmp.Compare(a.Peer, b.Peer),
		cmp.Compare(a.Route, b.Route),
		cmp.Compare(a.Method, b.Method),
		cmp.Compare(a.StatusClass, b.StatusClass),
	)
}

// StatsHandler serves Stats as JSON on GET and HEAD.
func (t *Telemetry) StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body, err := json.MarshalIndent(t.Stats(), "", "  ")
		if err != nil {
			http.Error(w, "encode stats: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(append(body, '\n'))
	})
}
