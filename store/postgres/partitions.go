package postgres

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Spans and rollups are range-partitioned by day (UTC): spans on start_ns,
// rollups on minute. The partitions of one day are spans_pYYYYMMDD and
// rollups_pYYYYMMDD.

const day = 24 * time.Hour

// dayOf is t's Unix day number.
func dayOf(t time.Time) int64 { return t.UnixNano() / int64(day) }

func dayStart(d int64) time.Time { return time.Unix(0, 0).UTC().Add(time.Duration(d) * day) }

func partitionSuffix(d int64) string { return dayStart(d).Format("20060102") }

var partitionName = regexp.MustCompile(`^(spans|rollups)_p(\d{8})$`)

// ensureDays creates the partitions of the given days, and of today and the
// days ahead, that this store has not seen yet. Creation is serialised
// between collectors by an advisory lock and skips partitions another
// collector created.
func (s *Store) ensureDays(ctx context.Context, days []int64) error {
	today := dayOf(time.Now())
	days = slices.Clone(days)
	for d := today; d <= today+int64(s.ahead); d++ {
		days = append(days, d)
	}
	s.mu.Lock()
	var missing []int64
	for _, d := range days {
		if !s.days[d] && !slices.Contains(missing, d) {
			missing = append(missing, d)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('meshlens partitions ' || $1))`, s.schema); err != nil {
			return err
		}
		for _, d := range missing {
			from, to := dayStart(d), dayStart(d+1)
			suffix := partitionSuffix(d)
			stmts := []string{
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF spans FOR VALUES FROM (%d) TO (%d)`,
					pgx.Identifier{s.schema, "spans_p" + suffix}.Sanitize(), from.UnixNano(), to.UnixNano()),
				fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF rollups FOR VALUES FROM ('%s') TO ('%s')`,
					pgx.Identifier{s.schema, "rollups_p" + suffix}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339)),
			}
			for _, stmt := range stmts {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("create partition for %s: %w", from.Format(time.DateOnly), err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, d := range missing {
		s.days[d] = true
	}
	s.mu.Unlock()
	return nil
}

// forgetDays empties the cache of existing partitions, after a write found a
// day gone.
func (s *Store) forgetDays() {
	s.mu.Lock()
	s.days = map[int64]bool{}
	s.mu.Unlock()
}

// partitionDays lists the days that have a spans or rollups partition.
func (s *Store) partitionDays(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) (map[string][]int64, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent IN ('spans'::regclass, 'rollups'::regclass)`)
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	out := map[string][]int64{}
	for _, n := range names {
		m := partitionName.FindStringSubmatch(n)
		if m == nil {
			continue // not one of ours: leave it alone
		}
		t, err := time.Parse("20060102", m[2])
		if err != nil {
			continue
		}
		out[m[1]] = append(out[m[1]], dayOf(t))
	}
	return out, nil
}

// DropBefore drops the partitions of the days that end at or before t, then
// deletes what is left before t in the day t falls in (nothing when t is
// midnight, as the retention loop asks).
func (s *Store) DropBefore(ctx context.Context, t time.Time) error {
	var dropped []int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('meshlens partitions ' || $1))`, s.schema); err != nil {
			return err
		}
		parts, err := s.partitionDays(ctx, tx)
		if err != nil {
			return err
		}
		for table, days := range parts {
			for _, d := range days {
				if dayStart(d + 1).After(t) {
					continue
				}
				name := pgx.Identifier{s.schema, table + "_p" + partitionSuffix(d)}.Sanitize()
				if _, err := tx.Exec(ctx, `DROP TABLE `+name); err != nil {
					return fmt.Errorf("drop partition %s: %w", name, err)
				}
				dropped = append(dropped, d)
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM spans WHERE start_ns < $1`, t.UnixNano()); err != nil {
			return fmt.Errorf("delete spans before %v: %w", t, err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM rollups WHERE minute < $1`, t); err != nil {
			return fmt.Errorf("delete rollups before %v: %w", t, err)
		}
		// A compaction of a period that starts before t may hold dropped
		// rollups; its generation row goes with it.
		for _, table := range []string{"rollup_compactions", "rollup_generations"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE start < $1`, t); err != nil {
				return fmt.Errorf("delete %s before %v: %w", table, t, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres store: drop before %v: %w", t, err)
	}
	s.mu.Lock()
	for _, d := range dropped {
		delete(s.days, d)
	}
	s.mu.Unlock()
	if len(dropped) > 0 {
		s.logger.Info("retention dropped partitions", "before", t, "partitions", len(dropped))
	}
	return nil
}
