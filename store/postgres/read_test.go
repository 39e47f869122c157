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
		cond      string // what the index search must name
	}{
		{"trace", postgres.TraceSQL, []any{spans[0].TraceID}, "spans_pkey", "trace_id = "},
		{"request", postgres.RequestTraceSQL, []any{spans[0].RequestID}, "spans_request_id", "request_id = "},
		{"service and time", byTime, byTimeArgs, "spans_service_start", "hashtext(service) = "},
		{"service and duration", byDuration, byDurationArgs, "spans_service_duration", "hashtext(service) = "},
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
// (FORMAT JSON) plan whose index search ("Index Cond") names cond.
func collectIndexNames(t *testing.T, plan []byte, cond string, out *[]string) {
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
			if c, _ := v["Index Cond"].(string); n != "" && strings.Contains(c, cond) {
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
