package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestAppendInterleavedDuplicates mixes stored ids, repeats within the
// batch and new ids, so the seqs of the new events close up over the
// skipped ones: they must stay gapless, and event_ids must agree with
// events, or Get would miss them.
func TestAppendInterleavedDuplicates(t *testing.T) {
	s, dsn := openStore(t)
	ctx := context.Background()
	events := storetest.Events(5, 40, storetest.Base(), time.Hour)
	var stored []agenttrail.Event
	for i := 0; i < 40; i += 4 {
		stored = append(stored, events[i])
	}
	stored = storetest.AppendAll(t, s, stored, len(stored))
	last := stored[len(stored)-1].Seq

	batch := append([]agenttrail.Event(nil), events...)
	batch = append(batch, events[1], events[39], events[0])
	res, err := s.Append(ctx, batch)
	if err != nil || res.Inserted != 30 || res.Duplicates != 13 {
		t.Fatalf("Append(10 stored, 30 new, 3 repeated) = %+v, %v, want 30 inserted, 13 duplicates", res, err)
	}
	want := last
	for i, e := range batch {
		new := i < 40 && i%4 != 0
		switch {
		case new:
			want++
			if e.Seq != want {
				t.Errorf("Append: new event %d got seq %d, want %d", i, e.Seq, want)
			}
		case e.Seq != 0:
			t.Errorf("Append: duplicate %d got seq %d, want 0", i, e.Seq)
		}
	}
	if n := queryInt(t, dsn, `SELECT count(*) FROM events e JOIN event_ids i USING (id, org)
		WHERE e.seq <> i.seq OR e.time <> i.time`); n != 0 {
		t.Errorf("%d events disagree with their event_ids row", n)
	}
	for i := 1; i < 40; i += 4 {
		got, err := s.Get(ctx, batch[i].ID, agenttrail.Filter{})
		if err != nil || got.Seq != batch[i].Seq {
			t.Errorf("Get(%q) = seq %d, %v, want seq %d", batch[i].ID, got.Seq, err, batch[i].Seq)
		}
	}
	if got := queryInt(t, dsn, "SELECT last_seq FROM seq_counter"); got != want {
		t.Errorf("seq_counter = %d after the batch, want %d", got, want)
	}
}

// TestAppendCanceled cancels Append: nothing is stored and no seq is used.
func TestAppendCanceled(t *testing.T) {
	s, dsn := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	batch := storetest.Events(6, 10, storetest.Base(), time.Hour)
	if _, err := s.Append(ctx, batch); err == nil {
		t.Fatal("Append(canceled context) = nil error, want one")
	}
	for i := range batch {
		if batch[i].Seq != 0 {
			t.Errorf("Append(canceled) left seq %d on event %d, want 0", batch[i].Seq, i)
		}
	}
	if n := queryInt(t, dsn, "SELECT count(*) FROM events"); n != 0 {
		t.Errorf("Append(canceled) stored %d events, want 0", n)
	}
	res, err := s.Append(context.Background(), batch)
	if err != nil || res.Inserted != 10 || batch[0].Seq != 1 {
		t.Errorf("Append(after a canceled one) = %+v, %v, first seq %d; want 10 inserted from seq 1", res, err, batch[0].Seq)
	}
}
