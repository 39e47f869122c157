package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/meshlens/meshlens/store"
)

// WriteSpans stores spans; a span already stored is left as it is.
func (s *Store) WriteSpans(ctx context.Context, spans []store.Span) error {
	if len(spans) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO spans
			(trace_id, span_id, parent_span_id, service, name, kind, start_ns, duration_ns, status_code, status_msg, request_id, attributes)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return fmt.Errorf("write spans: %w", err)
		}
		defer ins.Close()
		type op struct{ service, name, kind string }
		ops := map[op]struct{}{}
		for i := range spans {
			sp := &spans[i]
			attrs, err := encodeAttributes(sp.Attributes)
			if err != nil {
				return fmt.Errorf("write spans: span %s/%s: %w", sp.TraceID, sp.SpanID, err)
			}
			if _, err := ins.ExecContext(ctx, sp.TraceID, sp.SpanID, sp.ParentSpanID, sp.Service, sp.Name, sp.Kind,
				sp.Start.UnixNano(), int64(sp.Duration), sp.StatusCode, sp.StatusMsg, sp.RequestID, attrs); err != nil {
				return fmt.Errorf("write spans: span %s/%s: %w", sp.TraceID, sp.SpanID, err)
			}
			ops[op{sp.Service, sp.Name, sp.Kind}] = struct{}{}
		}
		for o := range ops {
			if _, err := tx.ExecContext(ctx, `INSERT INTO operations (service, name, kind) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
				o.service, o.name, o.kind); err != nil {
				return fmt.Errorf("write operations: %w", err)
			}
		}
		return nil
	})
}

// encodeAttributes renders attributes as a JSON object, or NULL when empty.
func encodeAttributes(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode attributes: %w", err)
	}
	return string(b), nil
}

// WriteRollups stores rollups, replacing any with the same minute, key and
// source. Minutes are truncated to the minute.
func (s *Store) WriteRollups(ctx context.Context, rollups []store.Rollup) error {
	if len(rollups) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		up, err := tx.PrepareContext(ctx, `INSERT INTO rollups
			(minute, service, direction, peer, route, method, status_class, source, count, total, upstream, overhead)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (minute, service, direction, peer, route, method, status_class, source) DO UPDATE SET
			count = excluded.count, total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead`)
		if err != nil {
			return fmt.Errorf("write rollups: %w", err)
		}
		defer up.Close()
		for _, r := range rollups {
			k := r.Key
			if _, err := up.ExecContext(ctx, r.Minute.Truncate(time.Minute).Unix(), k.Service, string(k.Direction), k.Peer, k.Route,
				k.Method, k.StatusClass, r.Source, r.Count, r.Total, r.Upstream, r.Overhead); err != nil {
				return fmt.Errorf("write rollups: %s %v: %w", r.Minute.UTC().Format(time.RFC3339), k, err)
			}
		}
		return bumpGenerations(ctx, tx, rollups)
	})
}

// ObserveServices records services, widening first and last seen; HasProxy
// once true stays true.
func (s *Store) ObserveServices(ctx context.Context, services []store.Service) error {
	if len(services) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, sv := range services {
			if _, err := tx.ExecContext(ctx, `INSERT INTO services (name, first_seen_ns, last_seen_ns, has_proxy) VALUES (?, ?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET
				first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
				last_seen_ns = max(last_seen_ns, excluded.last_seen_ns),
				has_proxy = max(has_proxy, excluded.has_proxy)`,
				sv.Name, sv.FirstSeen.UnixNano(), sv.LastSeen.UnixNano(), sv.HasProxy); err != nil {
				return fmt.Errorf("observe service %q: %w", sv.Name, err)
			}
		}
		return nil
	})
}

// ObserveEdges records edges, widening first and last seen.
func (s *Store) ObserveEdges(ctx context.Context, edges []store.Edge) error {
	if len(edges) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range edges {
			if _, err := tx.ExecContext(ctx, `INSERT INTO edges (caller, callee, first_seen_ns, last_seen_ns) VALUES (?, ?, ?, ?)
				ON CONFLICT (caller, callee) DO UPDATE SET
				first_seen_ns = min(first_seen_ns, excluded.first_seen_ns),
				last_seen_ns = max(last_seen_ns, excluded.last_seen_ns)`,
				e.Caller, e.Callee, e.FirstSeen.UnixNano(), e.LastSeen.UnixNano()); err != nil {
				return fmt.Errorf("observe edge %s -> %s: %w", e.Caller, e.Callee, err)
			}
		}
		return nil
	})
}

// DropBefore deletes the spans that started before t and the rollups whose
// minute is before t.
func (s *Store) DropBefore(ctx context.Context, t time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM spans WHERE start_ns < ?`, t.UnixNano()); err != nil {
			return fmt.Errorf("drop spans: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM rollups WHERE minute < ?`, t.Unix()); err != nil {
			return fmt.Errorf("drop rollups: %w", err)
		}
		// A compaction of a period that starts before t may hold dropped
		// rollups; its generation row goes with it.
		for _, table := range []string{"rollup_compactions", "rollup_generations"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE start < ?`, t.Unix()); err != nil {
				return fmt.Errorf("drop %s: %w", table, err)
			}
		}
		return nil
	})
}
