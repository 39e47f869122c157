// Package queryapi serves meshlens' own JSON query API (docs/query-api.md)
// over a store: discovered services and edges, latency percentiles merged
// exactly from stored per-minute HDR rollups over any window, and traces by
// trace ID or request ID.
package queryapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/meshlens/meshlens/hdr"
	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/rollup"
)

// MaxWindow bounds the window of one latency query.
const MaxWindow = 31 * 24 * time.Hour

// Quantiles are the percentiles every latency answer carries.
var Quantiles = []float64{50, 90, 99, 99.9, 100}

type handler struct {
	st     store.Store
	logger *slog.Logger
	now    func() time.Time
}

// NewHandler returns the query API. Its routes start with /api/v1/.
func NewHandler(st store.Store, logger *slog.Logger) http.Handler {
	return newHandler(st, logger, time.Now)
}

func newHandler(st store.Store, logger *slog.Logger, now func() time.Time) http.Handler {
	h := &handler{st: st, logger: logger, now: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/services", h.services)
	mux.HandleFunc("GET /api/v1/edges", h.edges)
	mux.HandleFunc("GET /api/v1/latency", h.latency)
	mux.HandleFunc("GET /api/v1/rollups", h.rollups)
	mux.HandleFunc("GET /api/v1/traces/{trace_id}", h.trace)
	mux.HandleFunc("GET /api/v1/requests/{request_id}", h.request)
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "path", fmt.Sprintf("no such endpoint %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
	// Field names the parameter at fault, when there is one.
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, Error{Error: msg, Field: field})
}

func (h *handler) storeError(w http.ResponseWriter, what string, err error) {
	h.logger.Error("query api: store read failed", "what", what, "err", err)
	writeError(w, http.StatusInternalServerError, "", what+": store read failed")
}

// Service is one entry of /api/v1/services.
type Service struct {
	Name      string    `json:"name"`
	HasProxy  bool      `json:"has_proxy"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

func (h *handler) services(w http.ResponseWriter, r *http.Request) {
	ss, err := h.st.Services(r.Context())
	if err != nil {
		h.storeError(w, "services", err)
		return
	}
	out := make([]Service, 0, len(ss))
	for _, s := range ss {
		out = append(out, Service{Name: s.Name, HasProxy: s.HasProxy, FirstSeen: s.FirstSeen.UTC(), LastSeen: s.LastSeen.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

// Edge is one entry of /api/v1/edges.
type Edge struct {
	Caller    string    `json:"caller"`
	Callee    string    `json:"callee"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

func (h *handler) edges(w http.ResponseWriter, r *http.Request) {
	es, err := h.st.Edges(r.Context())
	if err != nil {
		h.storeError(w, "edges", err)
		return
	}
	out := make([]Edge, 0, len(es))
	for _, e := range es {
		out = append(out, Edge{Caller: e.Caller, Callee: e.Callee, FirstSeen: e.FirstSeen.UTC(), LastSeen: e.LastSeen.UTC()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"edges": out})
}

var (
	traceIDPattern   = regexp.MustCompile(`^[0-9a-f]{32}$`)
	requestIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
)

// Trace is the answer of /api/v1/traces/{id} and /api/v1/requests/{id}.
type Trace struct {
	TraceID   string `json:"trace_id"`
	RequestID string `json:"request_id,omitempty"`
	Spans     []Span `json:"spans"`
}

// Span is one span of a Trace.
type Span struct {
	TraceID       string            `json:"trace_id"`
	SpanID        string            `json:"span_id"`
	ParentSpanID  string            `json:"parent_span_id,omitempty"`
	Service       string            `json:"service"`
	Name          string            `json:"name"`
	Kind          string            `json:"kind"`
	Start         time.Time         `json:"start"`
	DurationMicro int64             `json:"duration_us"`
	StatusCode    string            `json:"status_code"`
	StatusMessage string            `json:"status_message,omitempty"`
	RequestID     string            `json:"request_id,omitempty"`
	Attributes    map[string]string `json:"attributes,omitempty"`
}

func (h *handler) writeTrace(w http.ResponseWriter, r *http.Request, traceID, requestID string) {
	spans, err := h.st.Trace(r.Context(), traceID)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "trace_id", fmt.Sprintf("trace %s not found", traceID))
		return
	}
	if err != nil {
		h.storeError(w, "trace", err)
		return
	}
	out := Trace{TraceID: traceID, RequestID: requestID, Spans: make([]Span, 0, len(spans))}
	for _, s := range spans {
		out.Spans = append(out.Spans, Span{
			TraceID: s.TraceID, SpanID: s.SpanID, ParentSpanID: s.ParentSpanID,
			Service: s.Service, Name: s.Name, Kind: s.Kind, Start: s.Start.UTC(),
			DurationMicro: s.Duration.Microseconds(), StatusCode: s.StatusCode, StatusMessage: s.StatusMsg,
			RequestID: s.RequestID, Attributes: s.Attributes,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("trace_id"))
	if !traceIDPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, "trace_id", "must be 32 hexadecimal characters")
		return
	}
	h.writeTrace(w, r, id, "")
}

func (h *handler) request(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("request_id")
	if !requestIDPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, "request_id", "must be 1 to 256 printable ASCII characters")
		return
	}
	traceID, err := h.st.TraceIDByRequestID(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "request_id", fmt.Sprintf("request %s not found", id))
		return
	}
	if err != nil {
		h.storeError(w, "request", err)
		return
	}
	h.writeTrace(w, r, traceID, id)
}

// parseTime reads a query time: RFC 3339, Unix seconds, or a duration before
// now ("1h" meaning one hour ago).
func parseTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339, Unix seconds, nor a duration ago like 15m", v)
}

// parseEdge reads "caller->callee" (also "caller>callee").
func parseEdge(v string) (caller, callee string, ok bool) {
	for _, sep := range []string{"->", ">"} {
		if a, b, found := strings.Cut(v, sep); found && a != "" && b != "" {
			return a, b, true
		}
	}
	return "", "", false
}

// Latency is the answer of /api/v1/latency.
type Latency struct {
	Service   string    `json:"service"`
	Direction string    `json:"direction"`
	Peer      string    `json:"peer,omitempty"`
	Route     string    `json:"route,omitempty"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Requests  int64     `json:"requests"`
	Errors    int64     `json:"errors"` // 5xx
	// RequestRate is requests per second over the window.
	RequestRate float64 `json:"request_rate"`
	// ErrorRate is the share of requests that were 5xx (0 with no request).
	ErrorRate float64 `json:"error_rate"`
	// Percentiles of the total hop latency, in milliseconds, 3 significant
	// digits; keys "p50", "p90", "p99", "p99.9", "max".
	LatencyMs  map[string]float64 `json:"latency_ms"`
	Upstream   map[string]float64 `json:"upstream_ms"`
	Overhead   map[string]float64 `json:"overhead_ms"`
	StatusCode map[string]int64   `json:"requests_by_status_class"`
	Rollups    int                `json:"rollups"`
}

func quantileName(q float64) string {
	if q == 100 {
		return "max"
	}
	return "p" + strconv.FormatFloat(q, 'f', -1, 64)
}

func (h *handler) latency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := h.now()
	service := q.Get("service")
	if service == "" {
		writeError(w, http.StatusBadRequest, "service", "required")
		return
	}
	f := store.RollupFilter{Service: service, Route: q.Get("route")}
	dir := model.Direction(q.Get("direction"))
	if dir == "" {
		dir = model.Inbound
	}
	if e := q.Get("edge"); e != "" {
		caller, callee, ok := parseEdge(e)
		if !ok {
			writeError(w, http.StatusBadRequest, "edge", `must be "caller->callee"`)
			return
		}
		// The edge's hop as the service measured it: its callers inbound,
		// its callees outbound.
		switch service {
		case callee:
			dir, f.Peer = model.Inbound, caller
		case caller:
			dir, f.Peer = model.Outbound, callee
		default:
			writeError(w, http.StatusBadRequest, "edge", fmt.Sprintf("service %q is neither the caller nor the callee of %q", service, e))
			return
		}
	} else if p := q.Get("peer"); p != "" {
		f.Peer = p
	}
	if !dir.Valid() {
		writeError(w, http.StatusBadRequest, "direction", `must be "inbound" or "outbound"`)
		return
	}
	f.Direction = dir
	var err error
	f.To = now.Truncate(time.Minute).Add(time.Minute)
	if v := q.Get("to"); v != "" {
		if f.To, err = parseTime(v, now); err != nil {
			writeError(w, http.StatusBadRequest, "to", err.Error())
			return
		}
	}
	f.From = f.To.Add(-time.Hour)
	if v := q.Get("from"); v != "" {
		if f.From, err = parseTime(v, now); err != nil {
			writeError(w, http.StatusBadRequest, "from", err.Error())
			return
		}
	}
	if !f.To.After(f.From) {
		writeError(w, http.StatusBadRequest, "to", "must be after from")
		return
	}
	if f.To.Sub(f.From) > MaxWindow {
		writeError(w, http.StatusBadRequest, "from", fmt.Sprintf("window longer than %v", MaxWindow))
		return
	}
	m, err := h.merge(r.Context(), f)
	if err != nil {
		h.storeError(w, "latency", err)
		return
	}
	writeJSON(w, http.StatusOK, latencyOf(f, m))
}

// merge merges the rollups f selects. A whole service (and direction) is
// read through the store's compactions (store/rollup.Querier): the closed
// hours and minutes of the window pre-merged, with their request counts
// per status class and rollup counts, and only the open minutes as rows. A
// peer or route is narrow enough to merge its rows.
func (h *handler) merge(ctx context.Context, f store.RollupFilter) (*Merged, error) {
	if f.Peer == "" && f.Route == "" {
		acc, err := rollup.Querier{Store: h.st, Now: h.now}.Query(ctx, f)
		if err != nil {
			return nil, err
		}
		return mergedOf(acc), nil
	}
	rs, err := h.st.Rollups(ctx, f)
	if err != nil {
		return nil, err
	}
	return MergeRollups(rs)
}

// latencyOf is the answer for f from its merge.
func latencyOf(f store.RollupFilter, m *Merged) Latency {
	out := Latency{
		Service: f.Service, Direction: string(f.Direction), Peer: f.Peer, Route: f.Route,
		From: f.From, To: f.To, Requests: m.Total.TotalCount(), Errors: m.ByClass["5xx"],
		StatusCode: m.ByClass, Rollups: m.Rollups,
		LatencyMs: percentilesMs(m.Total), Upstream: percentilesMs(m.Upstream), Overhead: percentilesMs(m.Overhead),
	}
	out.RequestRate = float64(out.Requests) / f.To.Sub(f.From).Seconds()
	if out.Requests > 0 {
		out.ErrorRate = float64(out.Errors) / float64(out.Requests)
	}
	return out
}

func percentilesMs(h *hdr.Histogram) map[string]float64 {
	out := make(map[string]float64, len(Quantiles))
	if h.TotalCount() == 0 {
		return out
	}
	vals := h.ValueAtPercentilesSlice(Quantiles)
	for i, q := range Quantiles {
		v := vals[i]
		if q == 100 {
			v = h.Max()
		}
		out[quantileName(q)] = float64(v) / 1000
	}
	return out
}

// Merged is rollups merged into one histogram each for total, upstream and
// overhead latency, plus request counts by status class and the number of
// rollups merged.
type Merged struct {
	Total, Upstream, Overhead *hdr.Histogram
	ByClass                   map[string]int64
	Rollups                   int
}

func mergedOf(acc *rollup.Merged) *Merged {
	byClass := acc.ByClass
	if byClass == nil {
		byClass = map[string]int64{}
	}
	return &Merged{Total: acc.Total, Upstream: acc.Upstream, Overhead: acc.Overhead, ByClass: byClass, Rollups: int(acc.Rollups)}
}

// MergeRollups merges stored rollups exactly: the result has the same counts
// as one histogram that saw every value. It merges through store/rollup
// (sparse decode, no dense histogram per rollup); the requests per status
// class come from each rollup's count.
func MergeRollups(rs []store.Rollup) (*Merged, error) {
	acc, err := rollup.Merge(rs)
	if err != nil {
		return nil, err
	}
	return mergedOf(acc), nil
}
