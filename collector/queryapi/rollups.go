package queryapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// MaxRollups bounds the rows one /api/v1/rollups answer carries; a larger
// window must be asked for in parts.
const MaxRollups = 200_000

// Rollup is one stored per-minute rollup as /api/v1/rollups writes it: the
// hop key, the writer, the request count and the HdrHistogram V2 compressed
// encodings (base64, microseconds) of total, upstream and overhead latency.
type Rollup struct {
	Minute      time.Time `json:"minute"`
	Service     string    `json:"service"`
	Direction   string    `json:"direction"`
	Peer        string    `json:"peer"`
	Route       string    `json:"route"`
	Method      string    `json:"method"`
	StatusClass string    `json:"status_class"`
	Source      string    `json:"source"`
	Count       int64     `json:"count"`
	Total       string    `json:"total"`
	Upstream    string    `json:"upstream"`
	Overhead    string    `json:"overhead"`
}

// Rollups is the answer of /api/v1/rollups.
type Rollups struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Rollups []Rollup  `json:"rollups"`
}

// rollups serves the stored histograms themselves, for tools that merge them
// (meshlens report --api, HdrHistogram tools): GET
// /api/v1/rollups?from=&to=[&service=][&direction=][&peer=][&route=].
func (h *handler) rollups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := h.now()
	from, to := now.Add(-time.Hour), now
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			t, err := parseTime(v, now)
			if err != nil {
				writeError(w, http.StatusBadRequest, p.name, err.Error())
				return
			}
			*p.dst = t
		}
	}
	if !to.After(from) {
		writeError(w, http.StatusBadRequest, "to", "must be after from")
		return
	}
	if to.Sub(from) > MaxWindow {
		writeError(w, http.StatusBadRequest, "to", fmt.Sprintf("window longer than %v", MaxWindow))
		return
	}
	f := store.RollupFilter{From: from, To: to, Service: q.Get("service"), Peer: q.Get("peer"), Route: q.Get("route")}
	if d := q.Get("direction"); d != "" {
		f.Direction = model.Direction(d)
		if !f.Direction.Valid() {
			writeError(w, http.StatusBadRequest, "direction", fmt.Sprintf("%q is neither inbound nor outbound", d))
			return
		}
	}
	rs, err := h.st.Rollups(r.Context(), f)
	if err != nil {
		h.storeError(w, "rollups", err)
		return
	}
	if len(rs) > MaxRollups {
		writeError(w, http.StatusRequestEntityTooLarge, "to", fmt.Sprintf("%d rollups in the window, more than %d: ask for a shorter window", len(rs), MaxRollups))
		return
	}
	out := Rollups{From: from, To: to, Rollups: make([]Rollup, 0, len(rs))}
	for _, x := range rs {
		out.Rollups = append(out.Rollups, Rollup{
			Minute: x.Minute.UTC(), Service: x.Key.Service, Direction: string(x.Key.Direction), Peer: x.Key.Peer,
			Route: x.Key.Route, Method: x.Key.Method, StatusClass: x.Key.StatusClass, Source: x.Source,
			Count: x.Count, Total: x.Total, Upstream: x.Upstream, Overhead: x.Overhead,
		})
	}
	writeJSON(w, http.StatusOK, out)
}
