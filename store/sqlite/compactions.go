package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
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

// CurrentCompactions returns the current compactions q selects.
func (s *Store) CurrentCompactions(ctx context.Context, q store.CompactionQuery) ([]store.Compaction, error) {
	col := func(h store.Histograms, name string) string {
		if q.Histograms&h != 0 {
			return "c." + name
		}
		return "''"
	}
	query := `SELECT c.direction, c.start, c.gen, c.count, c.rollups, c.by_class, ` +
		col(store.TotalHistogram, "total") + `, ` + col(store.UpstreamHistogram, "upstream") + `, ` + col(store.OverheadHistogram, "overhead") + `
		FROM rollup_compactions c LEFT JOIN rollup_generations g
		ON g.service = c.service AND g.period_s = c.period_s AND g.start = c.start
		WHERE c.service = ? AND c.period_s = ? AND c.start >= ? AND c.start < ? AND c.gen = coalesce(g.gen, 0)`
	args := []any{q.Service, int64(q.Period / time.Second), q.From.Unix(), q.To.Unix()}
	if q.Starts != nil {
		if len(q.Starts) == 0 {
			return nil, nil
		}
		query += ` AND c.start IN (?` + strings.Repeat(", ?", len(q.Starts)-1) + `)`
		for _, t := range q.Starts {
			args = append(args, t.Unix())
		}
	}
	rows, err := s.db.QueryContext(ctx, query+` ORDER BY c.start, c.direction`, args...)
	if err != nil {
		return nil, fmt.Errorf("query compactions: %w", err)
	}
	defer rows.Close()
	var out []store.Compaction
	for rows.Next() {
		c := store.Compaction{Service: q.Service, Period: q.Period}
		var dir, byClass string
		var start int64
		if err := rows.Scan(&dir, &start, &c.Generation, &c.Count, &c.Rollups, &byClass, &c.Total, &c.Upstream, &c.Overhead); err != nil {
			return nil, fmt.Errorf("read compactions: %w", err)
		}
		c.Direction, c.Start = model.Direction(dir), time.Unix(start, 0).UTC()
		if byClass != "" {
			if err := json.Unmarshal([]byte(byClass), &c.ByClass); err != nil {
				return nil, fmt.Errorf("read compactions: %s counts by class: %w", c.Start.Format(time.RFC3339), err)
			}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// WriteCompactions stores compactions, replacing those of the same service,
// direction, period and start unless they are of a newer generation, and
// marks their periods built.
func (s *Store) WriteCompactions(ctx context.Context, cs []store.Compaction) error {
	if len(cs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range cs {
			byClass := ""
			if len(c.ByClass) > 0 {
				b, err := json.Marshal(c.ByClass)
				if err != nil {
					return fmt.Errorf("write compactions: %w", err)
				}
				byClass = string(b)
			}
			secs, start := int64(c.Period/time.Second), c.Start.Unix()
			if _, err := tx.ExecContext(ctx, `INSERT INTO rollup_compactions
				(service, direction, period_s, start, gen, count, rollups, by_class, total, upstream, overhead)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (service, period_s, start, direction) DO UPDATE SET
				gen = excluded.gen, count = excluded.count, rollups = excluded.rollups, by_class = excluded.by_class,
				total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead
				WHERE rollup_compactions.gen <= excluded.gen`,
				c.Service, string(c.Direction), secs, start, c.Generation, c.Count, c.Rollups, byClass,
				c.Total, c.Upstream, c.Overhead); err != nil {
				return fmt.Errorf("write compactions: %w", err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE rollup_generations SET built = ?
				WHERE service = ? AND period_s = ? AND start = ? AND built < ?`, c.Generation, c.Service, secs, start, c.Generation); err != nil {
				return fmt.Errorf("write compactions: mark built: %w", err)
			}
		}
		return nil
	})
}

// DirtyPeriods returns periods with rollups newer than their compactions
// that ended by closedBy, newest first (through the partial index on
// rollup_generations of the rows with built <> gen).
func (s *Store) DirtyPeriods(ctx context.Context, closedBy time.Time, limit int) ([]store.Period, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT service, period_s, start FROM rollup_generations
		WHERE built <> gen AND start <= ? AND start + period_s <= ?
		ORDER BY start DESC, period_s, service LIMIT ?`, closedBy.Unix()-60, closedBy.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("query dirty periods: %w", err)
	}
	defer rows.Close()
	var out []store.Period
	for rows.Next() {
		var p store.Period
		var secs, start int64
		if err := rows.Scan(&p.Service, &secs, &start); err != nil {
			return nil, fmt.Errorf("read dirty periods: %w", err)
		}
		p.Length, p.Start = time.Duration(secs)*time.Second, time.Unix(start, 0).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
