package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// TestTaskPlans checks that a page of one trace or one session can use its
// partial index under a generic plan, the plan PostgreSQL settles on for a
// statement it has seen a few times with other values: the planner must
// prove the index's condition (the column is not empty) from the query
// alone. Sequential scans are off so that the small test table does not
// hide the answer.
func TestTaskPlans(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	stored := storetest.AppendAll(t, s, storetest.Events(3, 2000, storetest.Base(), 6*time.Hour), 1000)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	var e agenttrail.Event
	for _, x := range stored {
		if x.TraceID != "" && x.SessionID != "" {
			e = x
			break
		}
	}
	for i, c := range []struct {
		name  string
		q     agenttrail.Query
		index string
	}{
		{"one trace in order", agenttrail.Query{Limit: 50, Sort: agenttrail.SortTimeAsc,
			Filter: agenttrail.Filter{Org: []string{e.Org}, TraceID: []string{e.TraceID}}}, "trace_id_time_seq_idx"},
		{"one trace, next page", agenttrail.Query{Limit: 50, Filter: agenttrail.Filter{TraceID: []string{e.TraceID}},
			After: &agenttrail.Position{Time: e.Time, Seq: e.Seq}}, "trace_id_time_seq_idx"},
		{"two sessions, a day", agenttrail.Query{Limit: 50, Sort: agenttrail.SortTimeAsc, Filter: agenttrail.Filter{
			SessionID: []string{e.SessionID, "another task"}, Since: storetest.Base()}}, "session_id_time_seq_idx"},
	} {
		sql, args, err := postgres.PageSQL(c.q)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("task_plan_%d", i)
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+sql); err != nil {
			t.Fatalf("PREPARE %s: %v", sql, err)
		}
		lits := make([]string, len(args))
		for j, a := range args {
			lits[j] = literal(t, a)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+strings.Join(lits, ", ")+")", pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(plan, "\n"); !strings.Contains(text, c.index) {
			t.Errorf("generic plan of %s does not use %s:\n%s", c.name, c.index, text)
		}
	}
}

// literal writes a statement argument as an SQL literal.
func literal(t *testing.T, v any) string {
	t.Helper()
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	switch v := v.(type) {
	case []string:
		var els []string
		for _, s := range v {
			els = append(els, `"`+strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)+`"`)
		}
		return quote("{"+strings.Join(els, ",")+"}") + "::text[]"
	case time.Time:
		return quote(v.UTC().Format(time.RFC3339Nano)) + "::timestamptz"
	case int64:
		return fmt.Sprint(v)
	}
	t.Fatalf("no literal for %T", v)
	return ""
}
