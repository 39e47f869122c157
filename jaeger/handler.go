// Package jaeger serves the HTTP query API of Jaeger — the calls Jaeger's UI
// and Grafana's Jaeger data source make — over meshlens' store, so trace
// search works from Grafana (and from a Jaeger UI) with no plugin. The
// collector mounts NewHandler on its query port (16686, Jaeger's).
//
// Endpoints (all GET, answers in Jaeger's JSON envelope):
//
//	/api/services                        service names
//	/api/services/{service}/operations   span names of a service
//	/api/operations?service=S[&spanKind=K]  span names with their kinds
//	/api/traces?service=…                trace search (see parseTraceSearch)
//	/api/traces/{id}                     one trace, by trace ID or request ID
//	/api/dependencies?endTs=…&lookback=… caller → callee call counts
//	/api/v3/services, /api/v3/operations, /api/v3/traces[/{id}]
//	                                     Jaeger's api_v3 (OTLP JSON), which
//	                                     newer Grafana backends search with
//
// A bad parameter gets 400 with the parameter named in errors[0].msg.
package jaeger

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/meshlens/meshlens/store"
)

// handler serves the API from a store.
type handler struct {
	store  store.Store
	logger *slog.Logger
	now    func() time.Time
}

// NewHandler returns the Jaeger-compatible query API reading st. Its routes
// start with /api/, so it can share a mux with other /api/v1 routes only if
// those are registered on the more specific patterns.
func NewHandler(st store.Store, logger *slog.Logger) http.Handler {
	return newHandler(st, logger, time.Now)
}

func newHandler(st store.Store, logger *slog.Logger, now func() time.Time) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{store: st, logger: logger, now: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/services", h.services)
	mux.HandleFunc("GET /api/services/{service}/operations", h.serviceOperations)
	mux.HandleFunc("GET /api/operations", h.operations)
	mux.HandleFunc("GET /api/traces", h.searchTraces)
	mux.HandleFunc("GET /api/traces/{id}", h.trace)
	mux.HandleFunc("GET /api/dependencies", h.dependencies)
	mux.HandleFunc("GET /api/v3/services", h.v3Services)
	mux.HandleFunc("GET /api/v3/operations", h.v3Operations)
	mux.HandleFunc("GET /api/v3/traces", h.v3SearchTraces)
	mux.HandleFunc("GET /api/v3/traces/{id}", h.v3Trace)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return mux
}

func (h *handler) services(w http.ResponseWriter, r *http.Request) {
	svcs, err := h.store.Services(r.Context())
	if err != nil {
		h.storeError(w, "list services", err)
		return
	}
	names := make([]string, 0, len(svcs))
	for _, s := range svcs {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	writeData(w, names, len(names))
}

func (h *handler) serviceOperations(w http.ResponseWriter, r *http.Request) {
	ops, err := h.store.Operations(r.Context(), r.PathValue("service"))
	if err != nil {
		h.storeError(w, "list operations", err)
		return
	}
	seen := map[string]bool{}
	names := []string{}
	for _, op := range ops {
		if !seen[op.Name] {
			seen[op.Name] = true
			names = append(names, op.Name)
		}
	}
	sort.Strings(names)
	writeData(w, names, len(names))
}

func (h *handler) operations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		writeError(w, http.StatusBadRequest, (&paramError{"service", "is required"}).Error())
		return
	}
	kind := q.Get("spanKind")
	ops, err := h.store.Operations(r.Context(), service)
	if err != nil {
		h.storeError(w, "list operations", err)
		return
	}
	out := []Operation{}
	seen := map[Operation]bool{}
	for _, op := range ops {
		o := Operation{Name: op.Name, SpanKind: op.Kind}
		if (kind == "" || kind == op.Kind) && !seen[o] {
			seen[o] = true
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].SpanKind < out[j].SpanKind
	})
	writeData(w, out, len(out))
}

func (h *handler) trace(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	// start and end (Grafana may send them) are checked but not needed: a
	// trace is found by its ID alone.
	for _, p := range []string{"start", "end"} {
		if s := r.URL.Query().Get(p); s != "" {
			if _, err := parseMicros(p, s); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		}
	}
	ctx := r.Context()
	id, ok := normalizeTraceIDParam(raw)
	if !ok {
		// Not a trace ID: take it as a request ID (x-request-id), so a
		// request ID pasted into the trace ID field opens its trace.
		if len(raw) > 256 {
			writeError(w, http.StatusBadRequest, (&paramError{"traceID", "is neither a trace ID nor a request ID"}).Error())
			return
		}
		found, err := h.store.TraceIDByRequestID(ctx, raw)
		if errors.Is(err, store.ErrNotFound) {
			writeError(w, http.StatusNotFound, "trace not found")
			return
		}
		if err != nil {
			h.storeError(w, "find trace by request ID", err)
			return
		}
		id = normalizeTraceID(found)
	}
	spans, err := h.store.Trace(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(spans) == 0 {
		writeError(w, http.StatusNotFound, "trace not found")
		return
	}
	if err != nil {
		h.storeError(w, "read trace", err)
		return
	}
	writeData(w, []Trace{toTrace(spans)}, 1)
}

func (h *handler) searchTraces(w http.ResponseWriter, r *http.Request) {
	ts, err := parseTraceSearch(r.URL.Query(), h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()

	if len(ts.TraceIDs) > 0 {
		traces := []Trace{}
		var missing []apiError
		for _, id := range ts.TraceIDs {
			spans, err := h.store.Trace(ctx, id)
			switch {
			case errors.Is(err, store.ErrNotFound) || err == nil && len(spans) == 0:
				missing = append(missing, apiError{Code: http.StatusNotFound, Msg: "trace not found", TraceID: id})
			case err != nil:
				h.storeError(w, "read trace", err)
				return
			default:
				traces = append(traces, toTrace(spans))
			}
		}
		status := http.StatusOK
		if len(traces) == 0 {
			status = http.StatusNotFound
		}
		writeJSON(w, status, response{Data: traces, Total: len(traces), Errors: missing})
		return
	}

	traces, err := findTraces(ctx, h.store, ts)
	if err != nil {
		h.storeError(w, "search traces", err)
		return
	}
	writeData(w, traces, len(traces))
}

func (h *handler) dependencies(w http.ResponseWriter, r *http.Request) {
	start, end, err := parseDependencyWindow(r.URL.Query(), h.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	links, err := dependencyLinks(r.Context(), h.store, start, end)
	if err != nil {
		h.storeError(w, "compute dependencies", err)
		return
	}
	writeData(w, links, len(links))
}

// storeError answers 500 for a failed store call. Only failures are
// logged, never requests.
func (h *handler) storeError(w http.ResponseWriter, what string, err error) {
	h.logger.Warn("jaeger api: store call failed", "call", what, "err", err)
	writeError(w, http.StatusInternalServerError, what+": "+err.Error())
}

func writeData(w http.ResponseWriter, data any, total int) {
	writeJSON(w, http.StatusOK, response{Data: data, Total: total})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, response{Errors: []apiError{{Code: status, Msg: msg}}})
}

func writeJSON(w http.ResponseWriter, status int, body response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(body) // the client may have gone; nothing to do then
}
