package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/model"
	"github.com/meshlens/meshlens/store"
)

var _ store.Compactions = (*Store)(nil)

// bumpGenerations marks the minutes and hours written, so that compactions
// built before are no longer current (and the periods dirty, built <> gen).
// It runs in the rollups' transaction.
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

// CurrentCompactions returns the current compactions q selects.
func (s *Store) CurrentCompactions(ctx context.Context, q store.CompactionQuery) ([]store.Compaction, error) {
	col := func(h store.Histograms, name string) string {
		if q.Histograms&h != 0 {
			return "c." + name
		}
		return "''"
	}
	// The generation is looked up per compaction by the whole primary key:
	// a join may be planned as a scan of every generation of the service
	// per compaction while the tables' statistics are young.
	sql := `SELECT c.direction, c.start, c.gen, c.count, c.rollups, c.by_class, ` +
		col(store.TotalHistogram, "total") + `, ` + col(store.UpstreamHistogram, "upstream") + `, ` + col(store.OverheadHistogram, "overhead") + `
		FROM rollup_compactions c
		WHERE c.service = $1 AND c.period_s = $2 AND c.start >= $3 AND c.start < $4
		AND c.gen = coalesce((SELECT g.gen FROM rollup_generations g
			WHERE g.service = c.service AND g.period_s = c.period_s AND g.start = c.start), 0)`
	args := []any{q.Service, int32(q.Period / time.Second), q.From, q.To}
	if q.Starts != nil {
		sql += ` AND c.start = ANY($5::timestamptz[])`
		args = append(args, q.Starts)
	}
	rows, err := s.pool.Query(ctx, sql+` ORDER BY c.start, c.direction`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query compactions: %w", err)
	}
	var out []store.Compaction
	c := store.Compaction{Service: q.Service, Period: q.Period}
	var dir, byClass string
	_, err = pgx.ForEachRow(rows, []any{&dir, &c.Start, &c.Generation, &c.Count, &c.Rollups, &byClass, &c.Total, &c.Upstream, &c.Overhead}, func() error {
		c.Direction, c.Start, c.ByClass = model.Direction(dir), c.Start.UTC(), nil
		if byClass != "" {
			if err := json.Unmarshal([]byte(byClass), &c.ByClass); err != nil {
				return fmt.Errorf("compaction %s counts by class: %w", c.Start.Format(time.RFC3339), err)
			}
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read compactions: %w", err)
	}
	return out, nil
}

// WriteCompactions stores compactions, replacing those of the same service,
// direction, period and start unless they are of a newer generation, and
// marks their periods built, in one transaction.
func (s *Store) WriteCompactions(ctx context.Context, cs []store.Compaction) error {
	if len(cs) == 0 {
		return nil
	}
	var svc, dir, total, upstream, overhead, byClass []string
	var secs []int32
	var starts []time.Time
	var gens, counts, rollups []int64
	for _, c := range cs {
		bc := ""
		if len(c.ByClass) > 0 {
			b, err := json.Marshal(c.ByClass)
			if err != nil {
				return fmt.Errorf("postgres store: write compactions: %w", err)
			}
			bc = clean(string(b))
		}
		svc, dir, secs, starts = append(svc, clean(c.Service)), append(dir, clean(string(c.Direction))), append(secs, int32(c.Period/time.Second)), append(starts, c.Start)
		gens, counts, rollups, byClass = append(gens, c.Generation), append(counts, c.Count), append(rollups, c.Rollups), append(byClass, bc)
		total, upstream, overhead = append(total, c.Total), append(upstream, c.Upstream), append(overhead, c.Overhead)
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rollup_compactions
			(service, direction, period_s, start, gen, count, rollups, by_class, total, upstream, overhead)
			SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::bigint[], $6::bigint[],
				$7::bigint[], $8::text[], $9::text[], $10::text[], $11::text[]) AS u(s, d, p, t)
			ORDER BY s, p, t, d
			ON CONFLICT (service, period_s, start, direction) DO UPDATE SET
			gen = excluded.gen, count = excluded.count, rollups = excluded.rollups, by_class = excluded.by_class,
			total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead
			WHERE rollup_compactions.gen <= excluded.gen`,
			svc, dir, secs, starts, gens, counts, rollups, byClass, total, upstream, overhead); err != nil {
			return err
		}
		// Rows locked in (service, period, start) order, as bumpGenerations
		// locks them, so that a rollup write and this never deadlock.
		_, err := tx.Exec(ctx, `WITH u AS (
				SELECT s, p, t, max(gen) AS gen FROM unnest($1::text[], $2::integer[], $3::timestamptz[], $4::bigint[]) AS u(s, p, t, gen)
				GROUP BY s, p, t),
			l AS (SELECT g.service, g.period_s, g.start, u.gen FROM rollup_generations g
				JOIN u ON g.service = u.s AND g.period_s = u.p AND g.start = u.t
				WHERE g.built < u.gen ORDER BY g.service, g.period_s, g.start FOR UPDATE OF g)
			UPDATE rollup_generations g SET built = l.gen FROM l
			WHERE g.service = l.service AND g.period_s = l.period_s AND g.start = l.start`, svc, secs, starts, gens)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres store: write %d compactions: %w", len(cs), err)
	}
	return nil
}

// DirtyPeriods returns periods with rollups newer than their compactions
// that ended by closedBy, newest first (through the partial index on
// rollup_generations of the rows with built <> gen).
func (s *Store) DirtyPeriods(ctx context.Context, closedBy time.Time, limit int) ([]store.Period, error) {
	rows, err := s.pool.Query(ctx, `SELECT service, period_s, start FROM rollup_generations
		WHERE built <> gen AND start <= $1::timestamptz - interval '1 minute'
		AND start + period_s * interval '1 second' <= $1::timestamptz
		ORDER BY start DESC, period_s, service LIMIT $2`, closedBy, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres store: query dirty periods: %w", err)
	}
	var out []store.Period
	var p store.Period
	var secs int32
	_, err = pgx.ForEachRow(rows, []any{&p.Service, &secs, &p.Start}, func() error {
		p.Length, p.Start = time.Duration(secs)*time.Second, p.Start.UTC()
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres store: read dirty periods: %w", err)
	}
	return out, nil
}

var _ store.CompactorLock = (*Store)(nil)

// TryLockCompactor takes a session advisory lock, keyed by the schema, on a
// connection of its own held until unlock. A process that dies loses its
// connection and with it the lock. A pool of one connection
// (pool_max_conns=1) cannot spare one for the lock while the compactor
// works: its compactor runs unlocked, as before the lock existed (the same
// period may then be built twice, which costs work, never correctness).
func (s *Store) TryLockCompactor(ctx context.Context) (func(), bool, error) {
	if s.pool.Config().MaxConns < 2 {
		return func() {}, true, nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("postgres store: compactor lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtext('meshlens compactor ' || $1))`, s.schema).Scan(&got); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("postgres store: compactor lock: %w", err)
	}
	if !got {
		conn.Release()
		return nil, false, nil
	}
	unlock := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtext('meshlens compactor ' || $1))`, s.schema); err != nil {
			// Not released: close the connection (which ends the lock)
			// rather than hand it back to the pool still holding it.
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}
	return unlock, true, nil
}
