package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkAppend measures Append of realistic batches into a store that
// already holds events, so dedup probes a populated id index.
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, _ := openStore(b)
			ctx := context.Background()
			start := time.Now().Add(-2 * time.Hour)
			storetest.AppendAll(b, s, storetest.Events(-1, 20000, start, time.Hour), 5000)
			batches := make([][]agenttrail.Event, b.N)
			for i := range batches {
				batches[i] = storetest.Events(int64(i), size, start, 2*time.Hour)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := s.Append(ctx, batches[i])
				if err != nil || res.Inserted != size {
					b.Fatalf("Append(%d) = %+v, %v", size, res, err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendTaskIndexes measures what the partial trace and session
// indexes cost Append, in one run: the same batches (two events in three
// in a trace and a session) into a store with the indexes and into one
// without them.
func BenchmarkAppendTaskIndexes(b *testing.B) {
	for _, indexes := range []string{"on", "off"} {
		b.Run("indexes="+indexes, func(b *testing.B) {
			s, dsn := openStore(b)
			ctx := context.Background()
			if indexes == "off" {
				conn, err := pgx.Connect(ctx, dsn)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := conn.Exec(ctx, "DROP INDEX events_trace; DROP INDEX events_session"); err != nil {
					b.Fatal(err)
				}
				conn.Close(ctx)
			}
			start := time.Now().Add(-2 * time.Hour)
			storetest.AppendAll(b, s, storetest.Events(-1, 20000, start, time.Hour), 5000)
			batches := make([][]agenttrail.Event, b.N)
			for i := range batches {
				batches[i] = storetest.Events(int64(i), 5000, start, 2*time.Hour)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if res, err := s.Append(ctx, batches[i]); err != nil || res.Inserted != 5000 {
					b.Fatalf("Append = %+v, %v", res, err)
				}
			}
			b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendNaive is the design Append is measured against: one
// transaction per event, with the same schema, dedup, seq and rollups.
func BenchmarkAppendNaive(b *testing.B) {
	s, dsn := openStore(b)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Hour)
	storetest.AppendAll(b, s, storetest.Events(-1, 20000, start, time.Hour), 5000)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	events := storetest.Events(1, b.N, start, 2*time.Hour)
	b.ResetTimer()
	for i := range events {
		if err := insertNaive(ctx, conn, &events[i]); err != nil {
			b.Fatalf("insert event %d: %v", i, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func insertNaive(ctx context.Context, conn *pgx.Conn, e *agenttrail.Event) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var seq int64
		if err := tx.QueryRow(ctx, "UPDATE seq_counter SET last_seq = last_seq + 1 RETURNING last_seq").Scan(&seq); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, "INSERT INTO event_ids (id, org, seq, time) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
			e.ID, e.Org, seq, e.Time)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		l, _ := e.LLM()
		var metadata []byte = e.Metadata
		if _, err := tx.Exec(ctx, `INSERT INTO events (time, seq, id, org, project, actor_type, actor_id, actor_name,
			source, action, resource_type, resource_id, result, status_code, duration_ms, description, metadata,
			producer_id, producer_seq, received_at, model, input_tokens, output_tokens, cache_read_tokens,
			cache_write_tokens, reasoning_tokens, cost_usd, trace_id, span_id, parent_span_id, session_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
			$22, $23, $24, $25, $26, $27, $28, $29, $30, $31)`,
			e.Time, seq, e.ID, e.Org, e.Project, string(e.ActorType), e.ActorID, e.ActorName, e.Source, e.Action,
			e.ResourceType, e.ResourceID, string(e.Result), e.StatusCode, e.DurationMS, e.Description, metadata,
			e.ProducerID, e.ProducerSeq, e.ReceivedAt, l.Model, l.InputTokens, l.OutputTokens, l.CacheReadTokens,
			l.CacheWriteTokens, l.ReasoningTokens, l.CostUSD, e.TraceID, e.SpanID, e.ParentSpanID, e.SessionID); err != nil {
			return err
		}
		// The rollup rows of one event, one upsert per table: the totals
		// row and one per rolled-up dimension.
		dims := []string{"all", "source", "actor_type", "actor_id", "result", "action", "resource_type", "model"}
		keys := []string{"", e.Source, string(e.ActorType), e.ActorID, string(e.Result), e.Action, e.ResourceType, l.Model}
		for table, unit := range map[string]string{"rollups_hourly": "hour", "rollups_daily": "day"} {
			if _, err := tx.Exec(ctx, `INSERT INTO `+table+` AS r
				SELECT d, date_trunc('`+unit+`', $2::timestamptz), $3, $4, k, 1, $5, $6, $7, $8, $9, $10
				FROM unnest($1::text[], $11::text[]) AS u (d, k)
				ON CONFLICT (dim, start, org, project, key) DO UPDATE SET
				count = r.count + 1, input_tokens = r.input_tokens + excluded.input_tokens,
				output_tokens = r.output_tokens + excluded.output_tokens,
				cache_read_tokens = r.cache_read_tokens + excluded.cache_read_tokens,
				cache_write_tokens = r.cache_write_tokens + excluded.cache_write_tokens,
				reasoning_tokens = r.reasoning_tokens + excluded.reasoning_tokens,
				cost_usd = r.cost_usd + excluded.cost_usd`,
				dims, e.Time, e.Org, e.Project, l.InputTokens, l.OutputTokens,
				l.CacheReadTokens, l.CacheWriteTokens, l.ReasoningTokens, l.Cost(), keys); err != nil {
				return err
			}
		}
		return nil
	})
}

// BenchmarkAppendTree measures what the integrity tree costs the write
// path: two stores, one keeping the tree and one not, take the same batches
// in turn, so both see the same load; it reports each one's events per
// second of its own Append time and the ratio (the target is ≥ 0.9).
//
//	AGENTTRAIL_TEST_POSTGRES=… go test -run '^$' -bench AppendTree -benchtime 60x ./postgres/
func BenchmarkAppendTree(b *testing.B) {
	const size = 5000
	with, _ := openStore(b)
	without, _ := openStore(b)
	postgres.NoTree(without)
	ctx := context.Background()
	start := time.Now().Add(-2 * time.Hour)
	var tWith, tWithout time.Duration
	for i := range b.N {
		stores := []*postgres.Store{with, without}
		if i%2 == 1 {
			stores[0], stores[1] = without, with
		}
		batch := storetest.Events(int64(i), size, start, 2*time.Hour)
		for _, s := range stores {
			c := append([]agenttrail.Event(nil), batch...)
			t0 := time.Now()
			if res, err := s.Append(ctx, c); err != nil || res.Inserted != size {
				b.Fatalf("Append(%d) = %+v, %v", size, res, err)
			}
			if s == with {
				tWith += time.Since(t0)
			} else {
				tWithout += time.Since(t0)
			}
		}
	}
	n := float64(b.N * size)
	b.ReportMetric(n/tWith.Seconds(), "events/s-tree")
	b.ReportMetric(n/tWithout.Seconds(), "events/s-no-tree")
	b.ReportMetric(tWithout.Seconds()/tWith.Seconds(), "ratio")
}
