package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

var _ store.Compactions = (*Store)(nil)

// bumpGenerations marks the minutes and hours written, so that compactions
// built before are no longer current. It runs in the rollups' transaction.
func bumpGenerations(ctx context.Context, tx pgx.Tx, services []string, minutes []time.Time) error {
	type period struct {
		service string
		secs    int32
		start   time.Time
	}
	seen := map[period]bool{}
	var svc []string
	var secs []int32
	var starts []time.Time
	for i, m := range minutes {
		for _, p := range []period{{services[i], 60, m}, {services[i], 3600, m.Truncate(time.Hour)}} {
			if !seen[p] {
				seen[p] = true
				svc, secs, starts = append(svc, p.service), append(secs, p.secs), append(starts, p.start)
			}
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO rollup_generations (service, period_s, start, gen)
		SELECT s, p, t, 1 FROM unnest($1::text[], $2::integer[], $3::timestamptz[]) AS u(s, p, t) ORDER BY s, p, t
		ON CONFLICT (service, period_s, start) DO UPDATE SET gen = rollup_generations.gen + 1`, svc, secs, starts)
	if err != nil {
		return fmt.Errorf("bump rollup generations: %w", err)
	}
	return nil
}

// RollupGenerations returns the write generations of the service's periods
// starting in [from, to).
func (s *Store) RollupGenerations(ctx context.Context, service string, period time.Duration, from, to time.Time) (map[time.Time]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT start, gen FROM rollup_generations
		WHERE service = $1 AND period_s = $2 AND start >= $3 AND start < $4`, service, int32(period/time.Second), from, to)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query rollup generations: %w", err)
	}
	out := map[time.Time]int64{}
	var start time.Time
	var gen int64
	_, err = pgx.ForEachRow(rows, []any{&start, &gen}, func() error { out[start.UTC()] = gen; return nil })
	if err != nil {
		return nil, fmt.Errorf("postgres store: read rollup generations: %w", err)
	}
	return out, nil
}

// CurrentCompactions returns the service's current compactions of the
// period length starting in [from, to).
func (s *Store) CurrentCompactions(ctx context.Context, service string, period time.Duration, from, to time.Time) ([]store.Compaction, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.direction, c.start, c.gen, c.count, c.total, c.upstream, c.overhead
		FROM rollup_compactions c LEFT JOIN rollup_generations g
		ON g.service = c.service AND g.period_s = c.period_s AND g.start = c.start
		WHERE c.service = $1 AND c.period_s = $2 AND c.start >= $3 AND c.start < $4 AND c.gen = coalesce(g.gen, 0)
		ORDER BY c.start, c.direction`, service, int32(period/time.Second), from, to)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query compactions: %w", err)
	}
	var out []store.Compaction
	c := store.Compaction{Service: service, Period: period}
	var dir string
	_, err = pgx.ForEachRow(rows, []any{&dir, &c.Start, &c.Generation, &c.Count, &c.Total, &c.Upstream, &c.Overhead}, func() error {
		c.Direction, c.Start = model.Direction(dir), c.Start.UTC()
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read compactions: %w", err)
	}
	return out, nil
}

// WriteCompactions stores compactions, replacing those of the same service,
// direction, period and start.
func (s *Store) WriteCompactions(ctx context.Context, cs []store.Compaction) error {
	if len(cs) == 0 {
		return nil
	}
	var svc, dir, total, upstream, overhead []string
	var secs []int32
	var starts []time.Time
	var gens, counts []int64
	for _, c := range cs {
		svc, dir, secs, starts = append(svc, clean(c.Service)), append(dir, clean(string(c.Direction))), append(secs, int32(c.Period/time.Second)), append(starts, c.Start)
		gens, counts = append(gens, c.Generation), append(counts, c.Count)
		total, upstream, overhead = append(total, c.Total), append(upstream, c.Upstream), append(overhead, c.Overhead)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO rollup_compactions
		(service, direction, period_s, start, gen, count, total, upstream, overhead)
		SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::bigint[], $6::bigint[],
			$7::text[], $8::text[], $9::text[])
		ON CONFLICT (service, period_s, start, direction) DO UPDATE SET
		gen = excluded.gen, count = excluded.count, total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead`,
		svc, dir, secs, starts, gens, counts, total, upstream, overhead)
	if err != nil {
		return fmt.Errorf("postgres store: write %d compactions: %w", len(cs), err)
	}
	return nil
}
