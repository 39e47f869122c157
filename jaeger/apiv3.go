package jaeger

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/meshlens/meshlens/store"
)

// Jaeger's api_v3 over HTTP (the JSON gateway of its gRPC query service),
// which newer Grafana backends search with: traces as OTLP JSON wrapped in
// {"result": …}, errors as {"error": {"httpCode": …, "message": …}}.

func (h *handler) v3Services(w http.ResponseWriter, r *http.Request) {
	svcs, err := h.store.Services(r.Context())
	if err != nil {
		h.v3StoreError(w, "list services", err)
		return
	}
	names := make([]string, 0, len(svcs))
	for _, s := range svcs {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	writeV3(w, http.StatusOK, map[string]any{"services": names})
}

func (h *handler) v3Operations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service := q.Get("service")
	if service == "" {
		writeV3Error(w, http.StatusBadRequest, "parameter 'service': is required")
		return
	}
	ops, err := h.store.Operations(r.Context(), service)
	if err != nil {
		h.v3StoreError(w, "list operations", err)
		return
	}
	kind := q.Get("span_kind")
	out := []Operation{}
	for _, op := range ops {
		if kind == "" || kind == op.Kind {
			out = append(out, Operation{Name: op.Name, SpanKind: op.Kind})
		}
	}
	writeV3(w, http.StatusOK, map[string]any{"operations": out})
}

// v3ParamNames maps the api_v3 query parameters to the v1 ones the search
// is parsed with.
var v3ParamNames = map[string]string{
	"query.service_name":   "service",
	"query.operation_name": "operation",
	"query.duration_min":   "minDuration",
	"query.duration_max":   "maxDuration",
	"query.search_depth":   "limit",
	"query.start_time_min": "start",
	"query.start_time_max": "end",
	"query.attributes":     "tags",
}

func (h *handler) v3SearchTraces(w http.ResponseWriter, r *http.Request) {
	v1, err := v3ToV1(r.URL)
	if err != nil {
		writeV3Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ts, err := parseTraceSearch(v1, h.now())
	if err != nil {
		var pe *paramError
		if errors.As(err, &pe) {
			for v3, v1name := range v3ParamNames {
				if v1name == pe.Param {
					pe.Param = v3
				}
			}
		}
		writeV3Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	var spans []store.Span
	if len(ts.TraceIDs) == 0 {
		traces, err := findTraceSpans(ctx, h.store, ts)
		if err != nil {
			h.v3StoreError(w, "search traces", err)
			return
		}
		for _, t := range traces {
			spans = append(spans, t...)
		}
	}
	writeOTLP(w, spans)
}

func (h *handler) v3Trace(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("id")
	id, ok := normalizeTraceIDParam(raw)
	if !ok {
		writeV3Error(w, http.StatusBadRequest, fmt.Sprintf("parameter 'trace_id': %q is not a trace ID (1 to 32 hex digits)", raw))
		return
	}
	spans, err := readTrace(r.Context(), h.store, id)
	if err != nil {
		h.v3StoreError(w, "read trace", err)
		return
	}
	if spans == nil {
		writeV3Error(w, http.StatusNotFound, "trace not found")
		return
	}
	writeOTLP(w, spans)
}

// v3ToV1 rewrites api_v3 search parameters as v1 ones: times from RFC 3339
// to µs, attributes (a JSON object, as Grafana sends them, or
// query.attributes[key]=value) to tags.
func v3ToV1(u *url.URL) (url.Values, error) {
	in := u.Query()
	out := url.Values{}
	tags := map[string]string{}
	for key, vals := range in {
		if len(vals) == 0 {
			continue
		}
		val := vals[0]
		if k, ok := strings.CutPrefix(key, "query.attributes["); ok && strings.HasSuffix(k, "]") {
			tags[strings.TrimSuffix(k, "]")] = val
			continue
		}
		name, known := v3ParamNames[key]
		if !known {
			continue
		}
		switch key {
		case "query.start_time_min", "query.start_time_max":
			// Grafana sends the times unescaped: a "+" of an offset
			// arrives as a space.
			t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(val, " ", "+"))
			if err != nil {
				return nil, &paramError{key, fmt.Sprintf("%q is not an RFC 3339 time", val)}
			}
			val = strconv.FormatInt(t.UnixMicro(), 10)
		case "query.attributes":
			if err := json.Unmarshal([]byte(val), &tags); err != nil {
				return nil, &paramError{key, "must be a JSON object of string values"}
			}
			continue
		}
		out.Set(name, val)
	}
	if len(tags) > 0 {
		b, _ := json.Marshal(tags)
		out.Set("tags", string(b))
	}
	return out, nil
}

// spanKinds maps the stored span kinds to OTLP's.
var spanKinds = map[string]ptrace.SpanKind{
	"internal": ptrace.SpanKindInternal, "server": ptrace.SpanKindServer, "client": ptrace.SpanKindClient,
	"producer": ptrace.SpanKindProducer, "consumer": ptrace.SpanKindConsumer,
}

// toOTLP groups spans by service into OTLP resource spans.
func toOTLP(spans []store.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	byService := map[string]ptrace.SpanSlice{}
	var order []string
	for _, s := range spans {
		if _, ok := byService[s.Service]; !ok {
			order = append(order, s.Service)
			byService[s.Service] = ptrace.SpanSlice{}
		}
	}
	for _, svc := range order {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("meshlens")
		byService[svc] = ss.Spans()
	}
	for _, s := range spans {
		sp := byService[s.Service].AppendEmpty()
		sp.SetTraceID(pcommon.TraceID(hexID16(normalizeTraceID(s.TraceID))))
		sp.SetSpanID(pcommon.SpanID(hexID8(s.SpanID)))
		if s.ParentSpanID != "" {
			sp.SetParentSpanID(pcommon.SpanID(hexID8(s.ParentSpanID)))
		}
		sp.SetName(s.Name)
		sp.SetKind(spanKinds[s.Kind])
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(s.Start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(s.Start.Add(s.Duration)))
		switch s.StatusCode {
		case "ok":
			sp.Status().SetCode(ptrace.StatusCodeOk)
		case "error":
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		sp.Status().SetMessage(s.StatusMsg)
		attrs := sp.Attributes()
		keys := make([]string, 0, len(s.Attributes))
		for k := range s.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv := typedTag(k, s.Attributes[k])
			if n, ok := kv.Value.(int64); ok {
				attrs.PutInt(k, n)
			} else {
				attrs.PutStr(k, s.Attributes[k])
			}
		}
		if _, ok := s.Attributes[tagRequestID]; !ok && s.RequestID != "" {
			attrs.PutStr(tagRequestID, s.RequestID)
		}
	}
	return td
}

func hexID16(s string) (id [16]byte) {
	b, _ := hex.DecodeString(s)
	copy(id[16-min(len(b), 16):], b)
	return id
}

func hexID8(s string) (id [8]byte) {
	b, _ := hex.DecodeString(s)
	copy(id[8-min(len(b), 8):], b)
	return id
}

func writeOTLP(w http.ResponseWriter, spans []store.Span) {
	var m ptrace.JSONMarshaler
	b, err := m.MarshalTraces(toOTLP(spans))
	if err != nil {
		writeV3Error(w, http.StatusInternalServerError, "encode traces: "+err.Error())
		return
	}
	writeV3(w, http.StatusOK, map[string]json.RawMessage{"result": b})
}

func writeV3(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func writeV3Error(w http.ResponseWriter, status int, msg string) {
	writeV3(w, status, map[string]any{"error": map[string]any{
		"httpCode": status, "httpStatus": http.StatusText(status), "message": msg,
	}})
}

func (h *handler) v3StoreError(w http.ResponseWriter, what string, err error) {
	h.logger.Warn("jaeger api_v3: store call failed", "call", what, "err", err)
	writeV3Error(w, http.StatusInternalServerError, what+": "+err.Error())
}
