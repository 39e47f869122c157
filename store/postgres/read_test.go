package postgres_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/meshlens/meshlens/store"
	"github.com/meshlens/meshlens/store/postgres"
	"github.com/meshlens/meshlens/store/storetest"
)

// TestSpanLookupsUseIndexes checks that each span lookup of the read path
// can be answered through the index meant for it, in a generic plan too
// (pgx prepares statements, and PostgreSQL may switch them to a generic
// plan, which cannot see the argument values).
func TestSpanLookupsUseIndexes(t *testing.T) {
	ctx := context.Background()
	url := migrated(t)
	st, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now().UTC().Add(-time.Hour)
	spans := storetest.Spans(2000, 1, start)
	if err := st.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, set := range []string{`ANALYZE spans`, `SET enable_seqscan = off`, `SET plan_cache_mode = force_generic_plan`} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	find := func(q store.TraceQuery) (string, []any) { return postgres.FindTracesSQL(q) }
	byTime, byTimeArgs := find(store.TraceQuery{Service: "checkout", Start: start, End: start.Add(10 * time.Millisecond), Limit: 20})
	byDuration, byDurationArgs := find(store.TraceQuery{Service: "checkout", MinDuration: 40 * time.Millisecond, Limit: 20})
	for _, c := range []struct {
		name, sql string
		args      []any
		index     string
		cond      []string // what the index search must name
	}{
		{"trace", postgres.TraceSQL, []any{spans[0].TraceID}, "spans_pkey", []string{"trace_id = "}},
		{"request", postgres.RequestTraceSQL, []any{spans[0].RequestID}, "spans_request_id", []string{"request_id = "}},
		{"service and time", byTime, byTimeArgs, "spans_service_start", []string{"hashtext(service) = ", "start_ns >= "}},
		{"service and duration", byDuration, byDurationArgs, "spans_service_duration", []string{"hashtext(service) = ", "(duration_ns >> 16) >= "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := pgx.Identifier{"lookup " + c.name}.Sanitize()
			if _, err := conn.Exec(ctx, `PREPARE `+name+` AS `+c.sql); err != nil {
				t.Fatal(err)
			}
			var lits []string
			for _, a := range c.args {
				lits = append(lits, literal(t, a))
			}
			var plan []byte
			if err := conn.QueryRow(ctx, `EXPLAIN (FORMAT JSON) EXECUTE `+name+` (`+strings.Join(lits, ", ")+`)`).Scan(&plan); err != nil {
				t.Fatal(err)
			}
			var indexes []string
			collectIndexNames(t, plan, c.cond, &indexes)
			// The plan names the partitions' indexes; find their parents.
			var parents []string
			rows, err := conn.Query(ctx, `SELECT DISTINCT p.relname::text FROM pg_inherits i
				JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
				WHERE c.relname = ANY($1)`, indexes)
			if err == nil {
				parents, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(parents, c.index) {
				t.Errorf("plan uses %v (of %v), want %s:\n%s", indexes, parents, c.index, plan)
			}
		})
	}
}

// literal is a as an SQL literal, for EXECUTE.
func literal(t *testing.T, a any) string {
	t.Helper()
	switch a := a.(type) {
	case string:
		return "'" + strings.ReplaceAll(a, "'", "''") + "'"
	case int:
		return strconv.Itoa(a)
	case int64:
		return strconv.FormatInt(a, 10)
	}
	t.Fatalf("no literal for %T", a)
	return ""
}

// collectIndexNames appends the "Index Name" of every node of an EXPLAIN
// (FORMAT JSON) plan whose index search ("Index Cond") names all of conds.
func collectIndexNames(t *testing.T, plan []byte, conds []string, out *[]string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(plan, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			n, _ := v["Index Name"].(string)
			c, _ := v["Index Cond"].(string)
			if n != "" && c != "" && !slices.ContainsFunc(conds, func(s string) bool { return !strings.Contains(c, s) }) {
				*out = append(*out, n)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(v)
}

// TestFindTracesDurationBuckets checks duration bounds at the edges of the
// duration index's buckets (2^16 ns): the bucket finds the candidates, the
// exact bound decides, so the bounds stay inclusive and exact.
func TestFindTracesDurationBuckets(t *testing.T) {
	ctx := context.Background()
	st, err := postgres.Open(ctx, postgres.Options{URL: migrated(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const bucket = 1 << 16
	durations := []time.Duration{bucket - 1, bucket, bucket + 1, 2*bucket - 1, 2 * bucket}
	start := time.Now().UTC().Add(-time.Hour)
	var spans []store.Span
	for i, d := range durations {
		spans = append(spans, store.Span{TraceID: strconv.Itoa(i), SpanID: "1", Service: "svc", Name: "op", Kind: "server",
			Start: start.Add(time.Duration(i) * time.Second), Duration: d, StatusCode: "unset"})
	}
	if err := st.WriteSpans(ctx, spans); err != nil {
		t.Fatal(err)
	}
	f := func(min, max time.Duration, want ...string) {
		t.Helper()
		got, err := st.FindTraceIDs(ctx, store.TraceQuery{Service: "svc", MinDuration: min, MaxDuration: max})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("durations [%d, %d] ns: got traces %v, want %v", min, max, got, want)
		}
	}
	f(bucket-1, 0, "0", "1", "2", "3", "4")
	f(bucket, 0, "1", "2", "3", "4")
	f(bucket+1, 0, "2", "3", "4")
	f(2*bucket, 0, "4")
	f(0, bucket-1, "0")
	f(0, bucket, "0", "1")
	f(0, 2*bucket-1, "0", "1", "2", "3")
	f(bucket, bucket, "1")
	f(bucket+1, 2*bucket-1, "2", "3")
}
