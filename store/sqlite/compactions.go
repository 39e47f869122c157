package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

var _ store.Compactions = (*Store)(nil)

// bumpGenerations marks the minutes and hours of the rollups as written, so
// that compactions built before are no longer current.
func bumpGenerations(ctx context.Context, tx *sql.Tx, rollups []store.Rollup) error {
	type period struct {
		service string
		secs    int64
		start   int64
	}
	seen := map[period]bool{}
	for _, r := range rollups {
		m := r.Minute.Truncate(time.Minute)
		for _, p := range []period{{r.Key.Service, 60, m.Unix()}, {r.Key.Service, 3600, m.Truncate(time.Hour).Unix()}} {
			if seen[p] {
				continue
			}
			seen[p] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_generations (service, period_s, start, gen) VALUES (?, ?, ?, 1)
				ON CONFLICT (service, period_s, start) DO UPDATE SET gen = gen + 1`, p.service, p.secs, p.start); err != nil {
				return fmt.Errorf("bump rollup generation: %w", err)
			}
		}
	}
	return nil
}

// RollupGenerations returns the write generations of the service's periods
// starting in [from, to).
func (s *Store) RollupGenerations(ctx context.Context, service string, period time.Duration, from, to time.Time) (map[time.Time]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT start, gen FROM rollup_generations
		WHERE service = ? AND period_s = ? AND start >= ? AND start < ?`, service, int64(period/time.Second), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("query rollup generations: %w", err)
	}
	defer rows.Close()
	out := map[time.Time]int64{}
	for rows.Next() {
		var start, gen int64
		if err := rows.Scan(&start, &gen); err != nil {
			return nil, fmt.Errorf("read rollup generations: %w", err)
		}
		out[time.Unix(start, 0).UTC()] = gen
	}
	return out, rows.Err()
}

// CurrentCompactions returns the service's current compactions of the
// period length starting in [from, to).
func (s *Store) CurrentCompactions(ctx context.Context, service string, period time.Duration, from, to time.Time) ([]store.Compaction, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.direction, c.start, c.gen, c.count, c.total, c.upstream, c.overhead
		FROM rollup_compactions c LEFT JOIN rollup_generations g
		ON g.service = c.service AND g.period_s = c.period_s AND g.start = c.start
		WHERE c.service = ? AND c.period_s = ? AND c.start >= ? AND c.start < ? AND c.gen = coalesce(g.gen, 0)
		ORDER BY c.start, c.direction`, service, int64(period/time.Second), from.Unix(), to.Unix())
	if err != nil {
		return nil, fmt.Errorf("query compactions: %w", err)
	}
	defer rows.Close()
	var out []store.Compaction
	for rows.Next() {
		c := store.Compaction{Service: service, Period: period}
		var dir string
		var start int64
		if err := rows.Scan(&dir, &start, &c.Generation, &c.Count, &c.Total, &c.Upstream, &c.Overhead); err != nil {
			return nil, fmt.Errorf("read compactions: %w", err)
		}
		c.Direction, c.Start = model.Direction(dir), time.Unix(start, 0).UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// WriteCompactions stores compactions, replacing those of the same service,
// direction, period and start.
func (s *Store) WriteCompactions(ctx context.Context, cs []store.Compaction) error {
	if len(cs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range cs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_compactions
				(service, direction, period_s, start, gen, count, total, upstream, overhead) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (service, period_s, start, direction) DO UPDATE SET
				gen = excluded.gen, count = excluded.count, total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead`,
				c.Service, string(c.Direction), int64(c.Period/time.Second), c.Start.Unix(), c.Generation, c.Count,
				c.Total, c.Upstream, c.Overhead); err != nil {
				return fmt.Errorf("write compactions: %w", err)
			}
		}
		return nil
	})
}
