package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/jackc/pgx/v5"
)

func TestDeleteBeforeDropsPartitions(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	start := now.Add(-35 * 24 * time.Hour)
	stored := storetest.AppendAll(t, s, storetest.Events(9, 4000, start, 35*24*time.Hour-time.Minute), 1000)
	// An unaligned cut: whole days before it are dropped, its own day and
	// hour lose only what lies before it.
	cut := now.Add(-30*24*time.Hour - 17*time.Minute - 123*time.Millisecond)
	var want int64
	for _, e := range stored {
		if e.Time.Before(cut) {
			want++
		}
	}
	n, err := s.DeleteBefore(ctx, cut)
	if err != nil || n != want {
		t.Fatalf("DeleteBefore(%v) = %d, %v, want %d", cut, n, err, want)
	}
	parts := partitions(t, dsn)
	for d := start; day(d).Before(day(cut)); d = d.AddDate(0, 0, 1) {
		if slices.Contains(parts, partitionOf(d)) {
			t.Errorf("after DeleteBefore(%v), partition %s is still attached", cut, partitionOf(d))
		}
	}
	if !slices.Contains(parts, partitionOf(cut)) {
		t.Errorf("after DeleteBefore(%v), partitions = %v, want %s kept", cut, parts, partitionOf(cut))
	}
	for _, q := range []string{
		"SELECT count(*) FROM events WHERE time < $1",
		"SELECT count(*) FROM event_ids WHERE time < $1",
		"SELECT count(*) FROM rollups_hourly WHERE start < date_trunc('hour', $1::timestamptz)",
		"SELECT count(*) FROM rollups_daily WHERE start < date_trunc('day', $1::timestamptz)",
	} {
		if n := queryInt(t, dsn, q, cut); n != 0 {
			t.Errorf("%s = %d after DeleteBefore, want 0", q, n)
		}
	}
	if got, want := queryInt(t, dsn, "SELECT count(*) FROM event_ids"), queryInt(t, dsn, "SELECT count(*) FROM events"); got != want {
		t.Errorf("event_ids has %d rows, events %d; want them equal", got, want)
	}
	checkRollups(t, dsn)

	// A deleted event may be sent again: its id is free, and it gets a new
	// seq, above every seq ever given.
	var old agenttrail.Event
	for _, e := range stored {
		if e.Time.Before(cut) {
			old = e
			break
		}
	}
	maxSeq := stored[len(stored)-1].Seq
	again := []agenttrail.Event{old}
	res, err := s.Append(ctx, again)
	if err != nil || res.Inserted != 1 {
		t.Fatalf("Append(a deleted event again) = %+v, %v, want inserted", res, err)
	}
	if again[0].Seq <= maxSeq {
		t.Errorf("Append(a deleted event again) seq = %d, want > %d (seqs are never reused)", again[0].Seq, maxSeq)
	}
	checkRollups(t, dsn)
}

// checkRollups compares the rollups of every dimension, hourly and daily,
// with a GROUP BY over the events themselves.
func checkRollups(t *testing.T, dsn string) {
	t.Helper()
	dims := map[string]string{"all": "''"}
	for _, d := range agenttrail.Dimensions {
		switch d {
		case agenttrail.DimOrg, agenttrail.DimProject: // columns of every row, not rows of their own
		case agenttrail.DimTraceID, agenttrail.DimSessionID: // grouped from the events, never rolled up
		default:
			dims[string(d)] = string(d)
		}
	}
	for dim, col := range dims {
		for table, unit := range map[string]string{"rollups_hourly": "hour", "rollups_daily": "day"} {
			q := `SELECT count(*) FROM (
				(SELECT start, org, project, key, count, input_tokens, output_tokens, reasoning_tokens
					FROM ` + table + ` WHERE dim = '` + dim + `'
				EXCEPT
				SELECT date_trunc('` + unit + `', time), org, project, ` + col + `, count(*), sum(input_tokens),
					sum(output_tokens), sum(reasoning_tokens) FROM events GROUP BY 1, 2, 3, 4)
				UNION ALL
				(SELECT date_trunc('` + unit + `', time), org, project, ` + col + `, count(*), sum(input_tokens),
					sum(output_tokens), sum(reasoning_tokens) FROM events GROUP BY 1, 2, 3, 4
				EXCEPT
				SELECT start, org, project, key, count, input_tokens, output_tokens, reasoning_tokens
					FROM ` + table + ` WHERE dim = '` + dim + `')) AS x`
			if n := queryInt(t, dsn, q); n != 0 {
				t.Errorf("%s of %s: %d rows disagree with the events", table, dim, n)
			}
		}
	}
}

func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func TestDeleteBeforeAligned(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	start := storetest.Base()
	stored := storetest.AppendAll(t, s, storetest.Events(8, 1000, start, 3*24*time.Hour), 500)
	var byTime []time.Time
	for _, e := range stored {
		byTime = append(byTime, e.Time)
	}
	slices.SortFunc(byTime, time.Time.Compare)
	for _, cut := range []time.Time{
		day(start).AddDate(0, 0, 1),                    // midnight: whole days only
		day(start).AddDate(0, 0, 1).Add(5 * time.Hour), // an hour boundary inside a day
		byTime[len(byTime)*3/4].Add(time.Nanosecond),   // just after an event: it goes
		time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC),    // nothing that old
	} {
		var want int64
		var kept []agenttrail.Event
		for _, e := range stored {
			if e.Time.Before(cut) {
				want++
			} else {
				kept = append(kept, e)
			}
		}
		stored = kept
		n, err := s.DeleteBefore(ctx, cut)
		if err != nil || n != want {
			t.Fatalf("DeleteBefore(%v) = %d, %v, want %d", cut, n, err, want)
		}
		if got := queryInt(t, dsn, "SELECT count(*) FROM events"); got != int64(len(stored)) {
			t.Errorf("after DeleteBefore(%v), %d events, want %d", cut, got, len(stored))
		}
		checkRollups(t, dsn)
	}
}

// TestDeleteBeforeBlocked holds a reader open on events: retention cannot
// drop partitions, gives up after a short wait as unavailable, and leaves
// everything as it was; once the reader is gone it succeeds.
func TestDeleteBeforeBlocked(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	start := storetest.Base()
	stored := storetest.AppendAll(t, s, storetest.Events(11, 500, start, 3*24*time.Hour), 500)
	reader, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close(ctx)
	tx, err := reader.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT count(*) FROM events"); err != nil {
		t.Fatal(err)
	}
	cut := day(start).AddDate(0, 0, 2).Add(time.Hour)
	_, err = s.DeleteBefore(ctx, cut)
	if code := agenttrail.ErrorCode(err); code != agenttrail.EUNAVAILABLE {
		t.Errorf("DeleteBefore(while a reader holds events) error code = %q (%v), want %q", code, err, agenttrail.EUNAVAILABLE)
	}
	if n := queryInt(t, dsn, "SELECT count(*) FROM event_ids"); n != int64(len(stored)) {
		t.Errorf("after a failed DeleteBefore, %d ids, want %d", n, len(stored))
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteBefore(ctx, cut); err != nil {
		t.Errorf("DeleteBefore(after the reader ended) error: %v", err)
	}
	checkRollups(t, dsn)
}
