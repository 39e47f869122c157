package jaeger

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/meshlens/meshlens/store"
)

// Defaults and bounds of the query parameters, as Jaeger's query service has
// them where it has one.
const (
	// DefaultLimit is the number of traces a search returns without limit.
	DefaultLimit = 100
	// MaxLimit bounds limit; a larger value is lowered to it (Jaeger's UI
	// offers at most 1500).
	MaxLimit = 1500
	// DefaultTraceLookback is the search window without start or lookback.
	DefaultTraceLookback = 48 * time.Hour
	// DefaultDependencyLookback is the /api/dependencies window without
	// lookback.
	DefaultDependencyLookback = 24 * time.Hour
)

// paramError is a bad query parameter: the answer is 400 naming it.
type paramError struct {
	Param  string
	Reason string
}

func (e *paramError) Error() string {
	return fmt.Sprintf("parameter '%s': %s", e.Param, e.Reason)
}

// traceSearch is a parsed /api/traces request.
type traceSearch struct {
	// Query goes to the store. Its Tags hold the span attributes asked for.
	Query store.TraceQuery
	// Derived are tags a span gets from its kind and status (error,
	// span.kind, otel.status_code, otel.status_description); the store does
	// not keep them as attributes, so candidates are filtered after reading.
	Derived map[string]string
	// RequestID, when set, names the one trace to return (tag request_id).
	RequestID string
	// TraceIDs, when set, are fetched directly and every other parameter is
	// ignored (Jaeger's ?traceID=a&traceID=b, used to compare traces).
	TraceIDs []string
}

// derivedTagKeys are the search tags answered from span fields.
var derivedTagKeys = map[string]bool{
	tagError:      true,
	tagSpanKind:   true,
	tagStatusCode: true,
	tagStatusMsg:  true,
}

// parseTraceSearch reads the parameters of /api/traces: service (required
// unless traceID is given), operation, tags (a JSON object of strings, as
// Grafana sends it) and tag (key:value, repeatable, as Jaeger's UI may send
// it), minDuration and maxDuration (Go durations: 100ms, 1.5s), start and end
// (µs since the epoch), lookback (1h, 2d, or "custom"; used only without
// start), limit.
func parseTraceSearch(v url.Values, now time.Time) (traceSearch, error) {
	var ts traceSearch
	for _, raw := range v["traceID"] {
		id, ok := normalizeTraceIDParam(raw)
		if !ok {
			return ts, &paramError{"traceID", fmt.Sprintf("%q is not a trace ID (1 to 32 hex digits)", raw)}
		}
		ts.TraceIDs = append(ts.TraceIDs, id)
	}
	if len(ts.TraceIDs) > 0 {
		return ts, nil
	}

	q := &ts.Query
	q.Service = strings.TrimSpace(v.Get("service"))
	if q.Service == "" {
		return ts, &paramError{"service", "is required"}
	}
	q.Operation = v.Get("operation")

	tags, err := parseTags(v)
	if err != nil {
		return ts, err
	}
	for k, val := range tags {
		switch {
		case k == tagRequestID:
			ts.RequestID = val
		case derivedTagKeys[k]:
			if ts.Derived == nil {
				ts.Derived = map[string]string{}
			}
			ts.Derived[k] = val
		default:
			if q.Tags == nil {
				q.Tags = map[string]string{}
			}
			q.Tags[k] = val
		}
	}

	if q.MinDuration, err = parseDurationParam(v, "minDuration"); err != nil {
		return ts, err
	}
	if q.MaxDuration, err = parseDurationParam(v, "maxDuration"); err != nil {
		return ts, err
	}
	if q.MaxDuration > 0 && q.MaxDuration < q.MinDuration {
		return ts, &paramError{"maxDuration", "must not be less than minDuration"}
	}

	if q.Start, q.End, err = parseWindow(v, now); err != nil {
		return ts, err
	}

	q.Limit = DefaultLimit
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return ts, &paramError{"limit", fmt.Sprintf("%q is not a non-negative integer", s)}
		}
		if n > 0 {
			q.Limit = min(n, MaxLimit)
		}
	}
	return ts, nil
}

// parseTags merges the tags parameter (JSON) and the tag parameters
// (key:value).
func parseTags(v url.Values) (map[string]string, error) {
	tags := map[string]string{}
	if s := v.Get("tags"); s != "" {
		if err := json.Unmarshal([]byte(s), &tags); err != nil {
			return nil, &paramError{"tags", fmt.Sprintf("must be a JSON object of string values, like {\"http.route\":\"/pay\"}: %v", err)}
		}
	}
	for _, kv := range v["tag"] {
		k, val, ok := strings.Cut(kv, ":")
		if !ok || k == "" {
			return nil, &paramError{"tag", fmt.Sprintf("%q is not key:value", kv)}
		}
		tags[k] = val
	}
	for k := range tags {
		if k == "" {
			return nil, &paramError{"tags", "a tag key is empty"}
		}
	}
	return tags, nil
}

func parseDurationParam(v url.Values, name string) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, &paramError{name, fmt.Sprintf("%q is not a duration like 100ms or 1.5s", s)}
	}
	return d, nil
}

// parseWindow reads start and end (µs). Without end it is now; without start
// it is end minus lookback, or minus DefaultTraceLookback.
func parseWindow(v url.Values, now time.Time) (start, end time.Time, err error) {
	end = now
	if s := v.Get("end"); s != "" {
		if end, err = parseMicros("end", s); err != nil {
			return
		}
	}
	if s := v.Get("start"); s != "" {
		if start, err = parseMicros("start", s); err != nil {
			return
		}
	} else {
		lookback := DefaultTraceLookback
		if s := v.Get("lookback"); s != "" && s != "custom" {
			if lookback, err = parseLookback(s); err != nil {
				return
			}
		}
		start = end.Add(-lookback)
	}
	if end.Before(start) {
		err = &paramError{"end", "must not be before start"}
	}
	return
}

func parseMicros(name, s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, &paramError{name, fmt.Sprintf("%q is not a time in microseconds since the Unix epoch", s)}
	}
	return time.UnixMicro(n), nil
}

// parseLookback reads a lookback as Jaeger's UI writes it: a Go duration, or
// a whole number of days ("2d").
func parseLookback(s string) (time.Duration, error) {
	bad := &paramError{"lookback", fmt.Sprintf("%q is not a duration like 1h or 2d", s)}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return 0, bad
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// parseDependencyWindow reads /api/dependencies' endTs and lookback, both
// milliseconds.
func parseDependencyWindow(v url.Values, now time.Time) (start, end time.Time, err error) {
	end = now
	if s := v.Get("endTs"); s != "" {
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n < 0 {
			return start, end, &paramError{"endTs", fmt.Sprintf("%q is not a time in milliseconds since the Unix epoch", s)}
		}
		end = time.UnixMilli(n)
	}
	lookback := DefaultDependencyLookback
	if s := v.Get("lookback"); s != "" {
		n, perr := strconv.ParseInt(s, 10, 64)
		if perr != nil || n <= 0 {
			return start, end, &paramError{"lookback", fmt.Sprintf("%q is not a positive number of milliseconds", s)}
		}
		lookback = time.Duration(n) * time.Millisecond
	}
	return end.Add(-lookback), end, nil
}

// normalizeTraceIDParam accepts a trace ID of 1 to 32 hex digits (Jaeger
// drops leading zeros) and returns it as the store keeps it: 32 lowercase hex
// digits.
func normalizeTraceIDParam(s string) (string, bool) {
	if len(s) == 0 || len(s) > 32 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "", false
		}
	}
	return normalizeTraceID(s), true
}

// normalizeTraceID lowercases a hex trace ID and pads it to 32 digits.
func normalizeTraceID(s string) string {
	s = strings.ToLower(s)
	if len(s) < 32 {
		s = strings.Repeat("0", 32-len(s)) + s
	}
	return s
}
