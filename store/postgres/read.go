package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

// args collects query arguments and hands out their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// Rollups returns the rollups f selects, ordered by minute, key and source.
func (s *Store) Rollups(ctx context.Context, f store.RollupFilter) ([]store.Rollup, error) {
	var where []string
	var a args
	if !f.From.IsZero() {
		where = append(where, "minute >= "+a.add(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "minute < "+a.add(f.To))
	}
	for _, c := range []struct{ col, v string }{{"service", f.Service}, {"direction", string(f.Direction)}, {"peer", f.Peer}, {"route", f.Route}} {
		if c.v != "" {
			where = append(where, c.col+" = "+a.add(c.v))
		}
	}
	q := `SELECT minute, service, direction, peer, route, method, status_class, source, count, total, upstream, overhead FROM rollups`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY minute, service, direction, peer, route, method, status_class, source"
	rows, err := s.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query rollups: %w", err)
	}
	var out []store.Rollup
	var r store.Rollup
	var dir string
	_, err = pgx.ForEachRow(rows, []any{&r.Minute, &r.Key.Service, &dir, &r.Key.Peer, &r.Key.Route, &r.Key.Method,
		&r.Key.StatusClass, &r.Source, &r.Count, &r.Total, &r.Upstream, &r.Overhead}, func() error {
		r.Minute = r.Minute.UTC()
		r.Key.Direction = model.Direction(dir)
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read rollups: %w", err)
	}
	return out, nil
}

// Services lists the discovered services by name.
func (s *Store) Services(ctx context.Context) ([]store.Service, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, first_seen_ns, last_seen_ns, has_proxy FROM services ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query services: %w", err)
	}
	var out []store.Service
	var sv store.Service
	var first, last int64
	_, err = pgx.ForEachRow(rows, []any{&sv.Name, &first, &last, &sv.HasProxy}, func() error {
		sv.FirstSeen, sv.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, sv)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read services: %w", err)
	}
	return out, nil
}

// Edges lists the discovered edges by caller and callee.
func (s *Store) Edges(ctx context.Context) ([]store.Edge, error) {
	rows, err := s.pool.Query(ctx, `SELECT caller, callee, first_seen_ns, last_seen_ns FROM edges ORDER BY caller, callee`)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query edges: %w", err)
	}
	var out []store.Edge
	var e store.Edge
	var first, last int64
	_, err = pgx.ForEachRow(rows, []any{&e.Caller, &e.Callee, &first, &last}, func() error {
		e.FirstSeen, e.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read edges: %w", err)
	}
	return out, nil
}

// traceSQL reads a trace's spans (by the primary key, trace ID first).
var traceSQL = `SELECT ` + strings.Join(spanColumns, ", ") + ` FROM spans WHERE trace_id = $1 ORDER BY start_ns, span_id`

// Trace returns the spans of a trace ordered by start, ErrNotFound when there
// is none.
func (s *Store) Trace(ctx context.Context, traceID string) ([]store.Span, error) {
	rows, err := s.pool.Query(ctx, traceSQL, traceID)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query trace %s: %w", traceID, err)
	}
	var out []store.Span
	var sp store.Span
	var start, dur int64
	var attrs []byte
	_, err = pgx.ForEachRow(rows, []any{&sp.TraceID, &sp.SpanID, &sp.ParentSpanID, &sp.Service, &sp.Name, &sp.Kind,
		&start, &dur, &sp.StatusCode, &sp.StatusMsg, &sp.RequestID, &attrs}, func() error {
		sp.Start, sp.Duration, sp.Attributes = time.Unix(0, start).UTC(), time.Duration(dur), nil
		if attrs != nil {
			if err := json.Unmarshal(attrs, &sp.Attributes); err != nil {
				return fmt.Errorf("span %s attributes: %w", sp.SpanID, err)
			}
		}
		out = append(out, sp)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read trace %s: %w", traceID, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("trace %s: %w", traceID, store.ErrNotFound)
	}
	return out, nil
}

// requestTraceSQL finds the trace of a request ID. It repeats the partial
// request index's predicate (not empty) so that a generic plan, which cannot
// see that $1 is not empty, may use the index too.
const requestTraceSQL = `SELECT trace_id FROM spans WHERE request_id = $1 AND request_id <> '' ORDER BY start_ns LIMIT 1`

// TraceIDByRequestID returns the trace of the earliest span carrying the
// request ID.
func (s *Store) TraceIDByRequestID(ctx context.Context, requestID string) (string, error) {
	if requestID == "" {
		return "", fmt.Errorf("request id is empty: %w", store.ErrNotFound)
	}
	var id string
	err := s.pool.QueryRow(ctx, requestTraceSQL, requestID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("request %s: %w", requestID, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("postgres store: query request %s: %w", requestID, err)
	}
	return id, nil
}

// FindTraceIDs returns the traces with a span matching every condition of q,
// newest first (by the latest matching span's start).
func (s *Store) FindTraceIDs(ctx context.Context, q store.TraceQuery) ([]string, error) {
	sql, a := findTracesSQL(q)
	rows, err := s.pool.Query(ctx, sql, a...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: find traces: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres store: find traces: %w", err)
	}
	return ids, nil
}

// durationBucket is the duration key of the span index on service plus
// duration: 2^16 ns, 65.5 µs.
const durationBucket = "(duration_ns >> 16)"

// findTracesSQL is FindTraceIDs' query and its arguments. The span indexes
// on service plus time and service plus duration hold hashtext(service),
// and the latter the duration's bucket, not the duration
// (migrations/0004_span_index_keys.up.sql): the service is matched by its
// hash and a duration bound by its bucket, which the indexes search, and
// both by their exact values, which settle two services of one hash and
// the spans of a bound's own bucket.
func findTracesSQL(q store.TraceQuery) (string, args) {
	var where []string
	var a args
	if q.Service != "" {
		p := a.add(q.Service)
		where = append(where, "hashtext(service) = hashtext("+p+"::text)", "service = "+p)
	}
	if q.Operation != "" {
		where = append(where, "name = "+a.add(q.Operation))
	}
	if q.MinDuration > 0 {
		p := a.add(int64(q.MinDuration))
		where = append(where, durationBucket+" >= ("+p+"::bigint >> 16)", "duration_ns >= "+p)
	}
	if q.MaxDuration > 0 {
		p := a.add(int64(q.MaxDuration))
		where = append(where, durationBucket+" <= ("+p+"::bigint >> 16)", "duration_ns <= "+p)
	}
	if !q.Start.IsZero() {
		where = append(where, "start_ns >= "+a.add(q.Start.UnixNano()))
	}
	if !q.End.IsZero() {
		where = append(where, "start_ns <= "+a.add(q.End.UnixNano()))
	}
	if len(q.Tags) > 0 {
		where = append(where, "attributes @> "+a.add(q.Tags)+"::jsonb")
	}
	sql := `SELECT trace_id FROM spans`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " GROUP BY trace_id ORDER BY max(start_ns) DESC, trace_id"
	if q.Limit > 0 {
		sql += " LIMIT " + a.add(q.Limit)
	}
	return sql, a
}

// Operations lists the span names and kinds seen for a service.
func (s *Store) Operations(ctx context.Context, service string) ([]store.Operation, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, kind FROM operations WHERE service = $1 ORDER BY name, kind`, service)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query operations of %q: %w", service, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[store.Operation])
	if err != nil {
		return nil, fmt.Errorf("postgres store: read operations of %q: %w", service, err)
	}
	return out, nil
}
