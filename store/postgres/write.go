package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/spanrows"
)

// createStaging makes the session's staging table, once per connection
// (stagingKey in the connection's CustomData); it empties itself at every
// commit.
const createStaging = `CREATE TEMP TABLE IF NOT EXISTS spans_staging (LIKE spans) ON COMMIT DELETE ROWS`

const stagingKey = "meshlens.spans_staging"

// WriteSpans stores spans; a span already stored (same trace ID, span ID and
// start) is left as it is. The spans are encoded as rows (spanrows) and
// written as WriteSpanRows writes them.
func (s *Store) WriteSpans(ctx context.Context, spans []store.Span) error {
	if len(spans) == 0 {
		return nil
	}
	buf := copyBufs.Get().(*[]byte)
	defer func() {
		if cap(*buf) <= maxPooledCopyBuf {
			copyBufs.Put(buf)
		}
	}()
	b := slices.Grow((*buf)[:0], len(spans)*encodedSpanGuess)
	var sum spanrows.Summary
	for i := range spans {
		sp := &spans[i]
		b = spanrows.AppendSpan(b, sp)
		sum.Note(sp.Start.UnixNano(), spanrows.Clean(sp.Service), spanrows.Clean(sp.Name), spanrows.Clean(sp.Kind))
	}
	*buf = b
	return s.WriteSpanRows(ctx, spanrows.Batch{Rows: b, N: len(spans), Summary: sum})
}

// WriteSpanRows stores spans encoded as rows (spanrows); a span already
// stored (same trace ID, span ID and start) is left as it is.
//
// The rows are COPYed as they are straight into the partitioned spans
// table: one statement, one round trip, no per-row work in the store (the
// days and operations the rows hold come with them; rows without them are
// read once to find them). A span stored before (a replay
// of a batch after a crash or a lost answer) makes that COPY fail on the
// primary key, and nothing of it is kept; the batch then goes the slower
// way: COPY into the session's staging table and one INSERT ... ON CONFLICT
// DO NOTHING into the partitions, in one transaction.
func (s *Store) WriteSpanRows(ctx context.Context, b spanrows.Batch) error {
	if len(b.Rows) == 0 {
		return nil
	}
	if !b.Known() {
		var err error
		if b.Summary, b.N, err = spanrows.Summarize(b.Rows); err != nil {
			return fmt.Errorf("postgres store: write spans: %w", err)
		}
	}
	rows, n, days := b.Rows, b.N, b.Days
	fresh := s.freshOperations(b.Ops)
	if err := s.ensureDays(ctx, days); err != nil {
		return fmt.Errorf("postgres store: write %d spans: %w", n, err)
	}
	if err := s.writeOperations(ctx, fresh); err != nil {
		return fmt.Errorf("postgres store: write %d spans: operations: %w", n, err)
	}
	err := s.copySpans(ctx, rows)
	if isNoPartition(err) {
		// Another collector dropped a day this one thought was there.
		s.forgetDays()
		if err = s.ensureDays(ctx, days); err == nil {
			err = s.copySpans(ctx, rows)
		}
	}
	if err != nil {
		return fmt.Errorf("postgres store: write %d spans: %w", n, err)
	}
	return nil
}

// freshOperations are the operations of ops this store has not written
// yet, in opKey form.
func (s *Store) freshOperations(ops []spanrows.Op) []string {
	var fresh []string
	var key []byte
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	for _, op := range ops {
		key = appendOpKey(key[:0], op.Service, op.Name, op.Kind)
		if _, ok := s.ops[string(key)]; !ok {
			fresh = append(fresh, string(key))
		}
	}
	return fresh
}

// appendOpKey is an operation as one string: service, name and kind
// separated by NUL, which cleaned text never holds.
func appendOpKey(b []byte, service, name, kind string) []byte {
	b = append(b, service...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	return append(b, kind...)
}

// copySpans COPYs rows into spans, or, when some are stored already,
// through the staging table.
func (s *Store) copySpans(ctx context.Context, rows []byte) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	pc := conn.Conn().PgConn()
	_, err = pc.CopyFrom(ctx, copyStream(rows), copySpansSQL("spans"))
	if !isStoredAlready(err) {
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		return nil
	}
	if pc.CustomData()[stagingKey] == nil {
		if _, err := pc.Exec(ctx, createStaging).ReadAll(); err != nil {
			return fmt.Errorf("staging table: %w", err)
		}
		pc.CustomData()[stagingKey] = true
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, copyStream(rows), copySpansSQL("spans_staging")); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO spans SELECT * FROM spans_staging ORDER BY trace_id, span_id ON CONFLICT DO NOTHING`); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		return nil
	})
}

// isStoredAlready reports whether a COPY into spans failed because a span
// of it is stored already (unique_violation), or on a lock cycle with
// another writer of the same spans (deadlock_detected).
func isStoredAlready(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01")
}

// maxKnownOperations bounds the memory of operations written.
const maxKnownOperations = 100_000

// writeOperations writes operations (opKey form) and remembers them:
// operations are never deleted, so one written once is not sent again.
func (s *Store) writeOperations(ctx context.Context, fresh []string) error {
	if len(fresh) == 0 {
		return nil
	}
	opService, opName, opKind := make([]string, 0, len(fresh)), make([]string, 0, len(fresh)), make([]string, 0, len(fresh))
	for _, k := range fresh {
		parts := strings.SplitN(k, "\x00", 3)
		opService, opName, opKind = append(opService, parts[0]), append(opName, parts[1]), append(opKind, parts[2])
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO operations (service, name, kind)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) AS u(s, n, k) ORDER BY s, n, k ON CONFLICT DO NOTHING`,
		opService, opName, opKind); err != nil {
		return err
	}
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	if s.ops == nil || len(s.ops)+len(fresh) > maxKnownOperations {
		s.ops = map[string]struct{}{}
	}
	for _, k := range fresh {
		s.ops[k] = struct{}{}
	}
	return nil
}

// clean makes s storable as PostgreSQL text: NUL bytes are dropped and
// invalid UTF-8 replaced, so one malformed span cannot fail a batch forever.
// Valid text is returned as it is.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
}

type rollupID struct {
	minute time.Time
	key    [6]string
	source string
}

// WriteRollups stores rollups, replacing any with the same minute, key and
// source (the last one wins within a call). Minutes are truncated to the
// minute.
func (s *Store) WriteRollups(ctx context.Context, rollups []store.Rollup) error {
	if len(rollups) == 0 {
		return nil
	}
	idx := map[rollupID]int{}
	var minutes []time.Time
	var cols [12][]string
	var counts []int64
	var days []int64
	for _, r := range rollups {
		m := r.Minute.Truncate(time.Minute).UTC()
		k := r.Key
		id := rollupID{m, [6]string{clean(k.Service), clean(string(k.Direction)), clean(k.Peer), clean(k.Route), clean(k.Method), clean(k.StatusClass)}, clean(r.Source)}
		vals := [...]string{id.key[0], id.key[1], id.key[2], id.key[3], id.key[4], id.key[5], id.source, clean(r.Total), clean(r.Upstream), clean(r.Overhead)}
		if i, dup := idx[id]; dup {
			counts[i] = r.Count
			for c, v := range vals {
				cols[c][i] = v
			}
			continue
		}
		idx[id] = len(minutes)
		minutes = append(minutes, m)
		counts = append(counts, r.Count)
		for c, v := range vals {
			cols[c] = append(cols[c], v)
		}
		if d := dayOf(m); len(days) == 0 || days[len(days)-1] != d {
			days = append(days, d)
		}
	}
	write := func() error {
		return s.tx(ctx, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO rollups
				(minute, service, direction, peer, route, method, status_class, source, total, upstream, overhead, count)
				SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
					$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[]) AS u(m, s, d, p, r, me, sc, src)
				ORDER BY s, m, d, p, r, me, sc, src
				ON CONFLICT (service, minute, direction, peer, route, method, status_class, source) DO UPDATE SET
				count = excluded.count, total = excluded.total, upstream = excluded.upstream, overhead = excluded.overhead`,
				minutes, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7], cols[8], cols[9], counts)
			if err != nil {
				return err
			}
			return bumpGenerations(ctx, tx, cols[0], minutes)
		})
	}
	err := s.ensureDays(ctx, days)
	if err == nil {
		err = write()
	}
	if isNoPartition(err) {
		s.forgetDays()
		if err = s.ensureDays(ctx, days); err == nil {
			err = write()
		}
	}
	if err != nil {
		return fmt.Errorf("postgres store: write %d rollups: %w", len(rollups), err)
	}
	return nil
}

// ObserveServices records services, widening first and last seen; HasProxy
// once true stays true.
func (s *Store) ObserveServices(ctx context.Context, services []store.Service) error {
	if len(services) == 0 {
		return nil
	}
	merged := map[string]store.Service{}
	var order []string
	for _, sv := range services {
		name := clean(sv.Name)
		if m, ok := merged[name]; ok {
			sv.Widen(m)
		} else {
			order = append(order, name)
		}
		merged[name] = sv
	}
	var first, last []int64
	var proxied []bool
	for _, n := range order {
		sv := merged[n]
		first, last, proxied = append(first, sv.FirstSeen.UnixNano()), append(last, sv.LastSeen.UnixNano()), append(proxied, sv.HasProxy)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO services (name, first_seen_ns, last_seen_ns, has_proxy)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::boolean[]) AS u(n) ORDER BY n
		ON CONFLICT (name) DO UPDATE SET
		first_seen_ns = least(services.first_seen_ns, excluded.first_seen_ns),
		last_seen_ns = greatest(services.last_seen_ns, excluded.last_seen_ns),
		has_proxy = services.has_proxy OR excluded.has_proxy`, order, first, last, proxied)
	if err != nil {
		return fmt.Errorf("postgres store: observe %d services: %w", len(order), err)
	}
	return nil
}

// ObserveEdges records edges, widening first and last seen.
func (s *Store) ObserveEdges(ctx context.Context, edges []store.Edge) error {
	if len(edges) == 0 {
		return nil
	}
	type pair struct{ caller, callee string }
	merged := map[pair]store.Edge{}
	var order []pair
	for _, e := range edges {
		p := pair{clean(e.Caller), clean(e.Callee)}
		if m, ok := merged[p]; ok {
			e.Widen(m)
		} else {
			order = append(order, p)
		}
		merged[p] = e
	}
	var callers, callees []string
	var first, last []int64
	for _, p := range order {
		e := merged[p]
		callers, callees = append(callers, p.caller), append(callees, p.callee)
		first, last = append(first, e.FirstSeen.UnixNano()), append(last, e.LastSeen.UnixNano())
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO edges (caller, callee, first_seen_ns, last_seen_ns)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(a, b) ORDER BY a, b
		ON CONFLICT (caller, callee) DO UPDATE SET
		first_seen_ns = least(edges.first_seen_ns, excluded.first_seen_ns),
		last_seen_ns = greatest(edges.last_seen_ns, excluded.last_seen_ns)`, callers, callees, first, last)
	if err != nil {
		return fmt.Errorf("postgres store: observe %d edges: %w", len(order), err)
	}
	return nil
}
