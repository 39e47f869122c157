package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// Rollups returns the rollups f selects, ordered by minute, key and source.
func (s *Store) Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if !f.From.IsZero() {
		add("minute >= ?", minuteCeil(f.From))
	}
	if !f.To.IsZero() {
		add("minute < ?", minuteCeil(f.To))
	}
	if f.Service != "" {
		add("service = ?", f.Service)
	}
	if f.Direction != "" {
		add("direction = ?", string(f.Direction))
	}
	if f.Peer != "" {
		add("peer = ?", f.Peer)
	}
	if f.Route != "" {
		add("route = ?", f.Route)
	}
	q := `SELECT minute, service, direction, peer, route, method, status_class, source, count, total, upstream, overhead FROM rollups`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY minute, service, direction, peer, route, method, status_class, source"
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query rollups: %w", err)
	}
	defer rows.Close()
	var out []store.Rollup
	for rows.Next() {
		var r store.Rollup
		var minute int64
		var dir string
		if err := rows.Scan(&minute, &r.Key.Service, &dir, &r.Key.Peer, &r.Key.Route, &r.Key.Method, &r.Key.StatusClass,
			&r.Source, &r.Count, &r.Total, &r.Upstream, &r.Overhead); err != nil {
			return nil, fmt.Errorf("read rollups: %w", err)
		}
		r.Minute = time.Unix(minute, 0).UTC()
		r.Key.Direction = model.Direction(dir)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rollups: %w", err)
	}
	return out, nil
}

// minuteCeil is the first whole minute at or after t, in Unix seconds: a
// minute is selected by [From, To) only when it starts in the window.
func minuteCeil(t time.Time) int64 {
	m := t.Truncate(time.Minute)
	if m.Before(t) {
		m = m.Add(time.Minute)
	}
	return m.Unix()
}

// Services lists the discovered services by name.
func (s *Store) Services(ctx context.Context) ([]store.Service, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, first_seen_ns, last_seen_ns, has_proxy FROM services ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("query services: %w", err)
	}
	defer rows.Close()
	var out []store.Service
	for rows.Next() {
		var sv store.Service
		var first, last int64
		if err := rows.Scan(&sv.Name, &first, &last, &sv.HasProxy); err != nil {
			return nil, fmt.Errorf("read services: %w", err)
		}
		sv.FirstSeen, sv.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, sv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	return out, nil
}

// Edges lists the discovered edges by caller and callee.
func (s *Store) Edges(ctx context.Context) ([]store.Edge, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT caller, callee, first_seen_ns, last_seen_ns FROM edges ORDER BY caller, callee`)
	if err != nil {
		return nil, fmt.Errorf("query edges: %w", err)
	}
	defer rows.Close()
	var out []store.Edge
	for rows.Next() {
		var e store.Edge
		var first, last int64
		if err := rows.Scan(&e.Caller, &e.Callee, &first, &last); err != nil {
			return nil, fmt.Errorf("read edges: %w", err)
		}
		e.FirstSeen, e.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read edges: %w", err)
	}
	return out, nil
}

const spanColumns = `trace_id, span_id, parent_span_id, service, name, kind, start_ns, duration_ns, status_code, status_msg, request_id, attributes`

// Trace returns the spans of a trace ordered by start, ErrNotFound when there
// is none.
func (s *Store) Trace(ctx context.Context, traceID string) ([]store.Span, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+spanColumns+` FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id`, traceID)
	if err != nil {
		return nil, fmt.Errorf("query trace %s: %w", traceID, err)
	}
	defer rows.Close()
	var out []store.Span
	for rows.Next() {
		var sp store.Span
		var start, dur int64
		var attrs sql.NullString
		if err := rows.Scan(&sp.TraceID, &sp.SpanID, &sp.ParentSpanID, &sp.Service, &sp.Name, &sp.Kind, &start, &dur,
			&sp.StatusCode, &sp.StatusMsg, &sp.RequestID, &attrs); err != nil {
			return nil, fmt.Errorf("read trace %s: %w", traceID, err)
		}
		sp.Start, sp.Duration = time.Unix(0, start).UTC(), time.Duration(dur)
		if attrs.Valid {
			if err := json.Unmarshal([]byte(attrs.String), &sp.Attributes); err != nil {
				return nil, fmt.Errorf("read trace %s: span %s attributes: %w", traceID, sp.SpanID, err)
			}
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read trace %s: %w", traceID, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trace %s: %w", traceID, store.ErrNotFound)
	}
	return out, nil
}

// TraceIDByRequestID returns the trace of the earliest span carrying the
// request ID.
func (s *Store) TraceIDByRequestID(ctx context.Context, requestID string) (string, error) {
	if requestID == "" {
		return "", fmt.Errorf("request id is empty: %w", store.ErrNotFound)
	}
	var id string
	err := s.db.QueryRowContext(ctx, `SELECT trace_id FROM spans WHERE request_id = ? ORDER BY start_ns LIMIT 1`, requestID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("request %s: %w", requestID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("query request %s: %w", requestID, err)
	}
	return id, nil
}

// FindTraceIDs returns the traces with a span matching every condition of q,
// newest first (by the latest matching span's start).
func (s *Store) FindTraceIDs(ctx context.Context, q store.TraceQuery) ([]string, error) {
	var where []string
	var args []any
	add := func(cond string, v ...any) { where = append(where, cond); args = append(args, v...) }
	if q.Service != "" {
		add("service = ?", q.Service)
	}
	if q.Operation != "" {
		add("name = ?", q.Operation)
	}
	if q.MinDuration > 0 {
		add("duration_ns >= ?", int64(q.MinDuration))
	}
	if q.MaxDuration > 0 {
		add("duration_ns <= ?", int64(q.MaxDuration))
	}
	if !q.Start.IsZero() {
		add("start_ns >= ?", q.Start.UnixNano())
	}
	if !q.End.IsZero() {
		add("start_ns <= ?", q.End.UnixNano())
	}
	for k, v := range q.Tags {
		add("EXISTS (SELECT 1 FROM json_each(spans.attributes) WHERE key = ? AND value = ?)", k, v)
	}
	sqlq := `SELECT trace_id, max(start_ns) AS newest FROM spans`
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " GROUP BY trace_id ORDER BY newest DESC, trace_id"
	if q.Limit > 0 {
		sqlq += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := s.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return nil, fmt.Errorf("find traces: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		var newest int64
		if err := rows.Scan(&id, &newest); err != nil {
			return nil, fmt.Errorf("find traces: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find traces: %w", err)
	}
	return ids, nil
}

// Operations lists the span names and kinds seen for a service.
func (s *Store) Operations(ctx context.Context, service string) ([]store.Operation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, kind FROM operations WHERE service = ? ORDER BY name, kind`, service)
	if err != nil {
		return nil, fmt.Errorf("query operations of %q: %w", service, err)
	}
	defer rows.Close()
	var out []store.Operation
	for rows.Next() {
		var o store.Operation
		if err := rows.Scan(&o.Name, &o.Kind); err != nil {
			return nil, fmt.Errorf("read operations of %q: %w", service, err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read operations of %q: %w", service, err)
	}
	return out, nil
}
