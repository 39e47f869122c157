package jaeger

import (
	"context"
	"errors"
	"time"

	"github.com/meshlens/meshlens/store"
)

// A search whose conditions the store cannot check (the derived tags:
// error, span.kind, otel.status_code) reads candidate traces page by page,
// newest first, and keeps those that match, reading at most maxExamined.
const (
	pageSize    = 200
	maxExamined = 5000
)

// findTraces answers a trace search, newest first, at most ts.Query.Limit
// traces.
func findTraces(ctx context.Context, st store.Store, ts traceSearch) ([]Trace, error) {
	found, err := findTraceSpans(ctx, st, ts)
	if err != nil {
		return nil, err
	}
	traces := make([]Trace, 0, len(found))
	for _, spans := range found {
		traces = append(traces, toTrace(spans))
	}
	return traces, nil
}

// findTraceSpans answers a trace search with the stored spans of each trace.
func findTraceSpans(ctx context.Context, st store.Store, ts traceSearch) ([][]store.Span, error) {
	var traces [][]store.Span
	if ts.RequestID != "" {
		id, err := st.TraceIDByRequestID(ctx, ts.RequestID)
		if errors.Is(err, store.ErrNotFound) {
			return traces, nil
		}
		if err != nil {
			return nil, err
		}
		spans, err := readTrace(ctx, st, normalizeTraceID(id))
		if err != nil || spans == nil {
			return traces, err
		}
		if traceMatches(spans, ts) {
			traces = append(traces, spans)
		}
		return traces, nil
	}

	q := ts.Query
	filter := len(ts.Derived) > 0
	if filter {
		q.Limit = pageSize
	}
	seen := map[string]bool{}
	examined := 0
	for {
		ids, err := st.FindTraceIDs(ctx, q)
		if err != nil {
			return nil, err
		}
		fresh := 0
		var oldest time.Time // the oldest "newest matching span" of the page
		for _, id := range ids {
			if seen[id] {
				continue
			}
			seen[id] = true
			fresh++
			examined++
			spans, err := readTrace(ctx, st, id)
			if err != nil {
				return nil, err
			}
			if spans == nil {
				continue // removed by retention since the search
			}
			if n := newestCandidate(spans, ts.Query); !n.IsZero() && (oldest.IsZero() || n.Before(oldest)) {
				oldest = n
			}
			if !filter || traceMatches(spans, ts) {
				traces = append(traces, spans)
				if len(traces) >= ts.Query.Limit {
					return traces, nil
				}
			}
			if examined >= maxExamined {
				return traces, nil
			}
		}
		if !filter || len(ids) < q.Limit || fresh == 0 || oldest.IsZero() {
			return traces, nil
		}
		q.End = oldest // inclusive: traces already seen are skipped
	}
}

// readTrace reads a trace; nil spans and no error when it is gone.
func readTrace(ctx context.Context, st store.Store, id string) ([]store.Span, error) {
	spans, err := st.Trace(ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && len(spans) == 0 {
		return nil, nil
	}
	return spans, err
}

// newestCandidate is the start of the newest span of the trace that meets
// the store's side of the search (the store orders traces by it).
func newestCandidate(spans []store.Span, q store.TraceQuery) time.Time {
	var newest time.Time
	for _, s := range spans {
		if spanMeetsQuery(s, q) && s.Start.After(newest) {
			newest = s.Start
		}
	}
	return newest
}

// spanMeetsQuery checks a span against the service, operation, duration,
// window and attribute conditions of a search.
func spanMeetsQuery(s store.Span, q store.TraceQuery) bool {
	if s.Service != q.Service || q.Operation != "" && s.Name != q.Operation {
		return false
	}
	if q.MinDuration > 0 && s.Duration < q.MinDuration || q.MaxDuration > 0 && s.Duration > q.MaxDuration {
		return false
	}
	if !q.Start.IsZero() && s.Start.Before(q.Start) || !q.End.IsZero() && s.Start.After(q.End) {
		return false
	}
	for k, v := range q.Tags {
		if s.Attributes[k] != v {
			return false
		}
	}
	return true
}

// traceMatches reports whether one span of the trace meets every condition
// of the search (Jaeger's rule: service, operation, tags and duration on the
// same span), derived tags included.
func traceMatches(spans []store.Span, ts traceSearch) bool {
	for _, s := range spans {
		if spanMeetsQuery(s, ts.Query) && spanMatches(s, ts.Derived) {
			return true
		}
	}
	return false
}
