package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

func llmEvent(extra map[string]any, llm map[string]any) string {
	m := map[string]any{"source": "llm-proxy", "action": "chat.completions", "metadata": map[string]any{"llm": llm}}
	for k, v := range extra {
		m[k] = v
	}
	return eventJSON(m)
}

// TestUsageCannotPoisonRollups is the attack on cost attribution: an
// ingest token posts LLM usage at the limits of its types. Counters and
// costs over the documented bounds are rejected by index with a message
// naming the field and the bound, their neighbours are stored, and the
// aggregations keep answering with exact sums of what was stored, before
// and after another agent's normal events.
func TestUsageCannotPoisonRollups(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: b})
			got := se.ingestAs(t, "acme-ingest",
				llmEvent(nil, map[string]any{"model": "m", "input_tokens": int64(math.MaxInt64)}),
				llmEvent(nil, map[string]any{"model": "m", "output_tokens": int64(math.MaxInt64)}),
				llmEvent(nil, map[string]any{"model": "m", "reasoning_tokens": agenttrail.MaxLLMTokens + 1}),
				llmEvent(nil, map[string]any{"model": "m", "cost_usd": 1e308}),
				llmEvent(map[string]any{"id": "max"}, map[string]any{"model": "m",
					"input_tokens": agenttrail.MaxLLMTokens, "output_tokens": agenttrail.MaxLLMTokens,
					"cache_read_tokens": agenttrail.MaxLLMTokens, "cache_write_tokens": agenttrail.MaxLLMTokens,
					"reasoning_tokens": agenttrail.MaxLLMTokens, "cost_usd": agenttrail.MaxLLMCostUSD}),
			)
			wantFields := []string{"metadata.llm.input_tokens", "metadata.llm.output_tokens", "metadata.llm.reasoning_tokens", "metadata.llm.cost_usd"}
			if got.Accepted != 1 || len(got.Rejected) != len(wantFields) {
				t.Fatalf("POST usage at the type limits = %+v, want 1 accepted and %d rejected", got, len(wantFields))
			}
			for i, rj := range got.Rejected {
				if rj.Index != i || !strings.HasPrefix(rj.Error, wantFields[i]+": must be from 0 to ") {
					t.Errorf("rejection %d = %+v, want index %d naming %s and its bound", i, rj, i, wantFields[i])
				}
			}
			// Another agent's batch: a normal LLM call and a shell command.
			got = se.ingestAs(t, "acme-ingest",
				llmEvent(map[string]any{"id": "normal", "actor_id": "agent-2"}, map[string]any{"model": "m", "input_tokens": 10, "cost_usd": 0.5}),
				eventJSON(map[string]any{"id": "shell", "actor_id": "agent-2"}))
			if got.Accepted != 2 || len(got.Rejected) != 0 {
				t.Fatalf("POST of a normal batch after the attack = %+v, want both stored", got)
			}
			// Enough events at the bound that a 32-bit or a float32 sum
			// would be off; each read answers 200 with exact sums.
			var many []string
			for i := range 20 {
				many = append(many, llmEvent(map[string]any{"id": fmt.Sprintf("max-%d", i)}, map[string]any{"model": "m",
					"input_tokens": agenttrail.MaxLLMTokens, "cost_usd": agenttrail.MaxLLMCostUSD}))
			}
			if got := se.ingestAs(t, "acme-ingest", many...); got.Accepted != len(many) {
				t.Fatalf("POST of %d events at the bound = %+v", len(many), got)
			}
			for _, path := range []string{"/v1/aggregate?by=model", "/v1/aggregate?by=actor_id", "/v1/timeseries?interval=hour&since=2h", "/v1/timeseries?interval=day&by=source&since=7d", "/v1/export?format=ndjson", "/v1/export?format=ocsf", "/v1/events?limit=200"} {
				r := se.do(t, http.MethodGet, path, se.as("acme-read"), nil)
				if r.status != http.StatusOK {
					t.Errorf("GET %s after the attack = %d, want 200: %s", path, r.status, r.body)
				}
			}
			var agg wire.Aggregate
			r := se.do(t, http.MethodGet, "/v1/aggregate?by=model", se.as("acme-read"), nil)
			if err := json.Unmarshal(r.body, &agg); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			var m agenttrail.Bucket
			for _, bk := range agg.Buckets {
				if bk.Key == "m" {
					m = bk
				}
			}
			const n = 21 // "max" and the 20 after it
			if m.Count != n+1 || m.InputTokens != n*agenttrail.MaxLLMTokens+10 || m.OutputTokens != agenttrail.MaxLLMTokens ||
				math.Abs(m.CostUSD-(n*agenttrail.MaxLLMCostUSD+0.5)) > 1e-6 {
				t.Errorf("aggregate by model = %+v, want %d events, %d input tokens, %d output tokens, cost %v",
					m, n+1, n*agenttrail.MaxLLMTokens+10, agenttrail.MaxLLMTokens, n*agenttrail.MaxLLMCostUSD+0.5)
			}
		})
	}
}

// refusing returns b with a database that refuses, as a database refuses
// a value out of range, every event whose action is "refused-by-db": the
// stand-in for any value one store cannot hold.
func refusing(b backend) backend {
	switch b.name {
	case "sqlite":
		b.open = func(t testing.TB) (agenttrail.Store, func(t testing.TB) []string) {
			path := filepath.Join(t.TempDir(), "trail.db")
			st, dump := openSQLiteAt(t, path)
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.action = 'refused-by-db'
				BEGIN SELECT RAISE(ABORT, 'driver text: value refused by trigger'); END`); err != nil {
				t.Fatal(err)
			}
			return st, dump
		}
	case "postgres":
		b.open = func(t testing.TB) (agenttrail.Store, func(t testing.TB) []string) {
			dsn, schema := pgSchema(t)
			st, dump := openPostgresAt(t, dsn, schema)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for _, stmt := range []string{
				`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
					IF NEW.action = 'refused-by-db' THEN
						RAISE EXCEPTION 'driver text: bigint out of range' USING ERRCODE = 'numeric_value_out_of_range';
					END IF;
					RETURN NEW; END $$`,
				`CREATE TRIGGER refuse BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION refuse()`,
			} {
				if _, err := conn.Exec(ctx, stmt); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}
			return st, dump
		}
	}
	return b
}

// TestStoreRefusalCostsNoNeighbours: when the database refuses one event
// of a batch, that event is rejected by index with a message that holds
// none of the database's text, and the events around it are stored.
func TestStoreRefusalCostsNoNeighbours(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			se := newSecEnv(t, secOptions{backend: refusing(b)})
			var batch []string
			for i := range 9 {
				fields := map[string]any{"id": fmt.Sprintf("e-%d", i)}
				if i == 3 || i == 7 {
					fields["action"] = "refused-by-db"
				}
				batch = append(batch, eventJSON(fields))
			}
			batch = append(batch, llmEvent(map[string]any{"id": "e-9"}, map[string]any{"model": "m", "input_tokens": 5}))
			r := se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), []byte(strings.Join(batch, "\n")))
			got := decodeIngest(t, "POST with two events the database refuses", r)
			if got.Accepted != 8 || len(got.Rejected) != 2 || got.Rejected[0].Index != 3 || got.Rejected[1].Index != 7 {
				t.Fatalf("POST = %+v, want 8 accepted and events 3 and 7 rejected", got)
			}
			for _, leak := range []string{"driver text", "sqlstate", "trigger", "bigint"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("the answer shows the database's text (%q): %s", leak, r.body)
				}
			}
			page, err := se.store.Query(t.Context(), agenttrail.Query{Sort: agenttrail.SortSeq, Limit: 100,
				Filter: agenttrail.Filter{Org: []string{"acme"}, Source: []string{"shell", "llm-proxy"}}})
			if err != nil || len(page.Events) != 8 {
				t.Fatalf("stored %d events (%v), want 8", len(page.Events), err)
			}
			// Sending the same batch again stores nothing new and refuses
			// the same two.
			got = decodeIngest(t, "POST again", se.do(t, http.MethodPost, "/v1/events", se.as("acme-ingest"), []byte(strings.Join(batch, "\n"))))
			if got.Accepted != 0 || got.Duplicates != 8 || len(got.Rejected) != 2 {
				t.Errorf("POST again = %+v, want 8 duplicates and 2 rejected", got)
			}
		})
	}
}
