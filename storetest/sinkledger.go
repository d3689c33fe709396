package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// testSinkLedger: checkpoints start at 0, move both ways and are per sink;
// HeadSeq follows Append; dead letters keep their bytes, page by ID and are
// deleted by ID within their own sink only.
func testSinkLedger(t *testing.T, s agenttrail.Store) {
	l := as[agenttrail.SinkLedger](t, s)
	ctx := t.Context()
	if h, err := l.HeadSeq(ctx); err != nil || h != 0 {
		t.Fatalf("HeadSeq(empty) = %d, %v, want 0", h, err)
	}
	stored := AppendAll(t, s, Events(3, 30, Base(), time.Hour), 10)
	if h, err := l.HeadSeq(ctx); err != nil || h != stored[len(stored)-1].Seq {
		t.Fatalf("HeadSeq = %d, %v, want %d", h, err, stored[len(stored)-1].Seq)
	}
	if cp, err := l.Checkpoint(ctx, "a"); err != nil || cp != 0 {
		t.Fatalf("Checkpoint(new) = %d, %v, want 0", cp, err)
	}
	for _, seq := range []int64{10, 25, 3} {
		if err := l.SetCheckpoint(ctx, "a", seq); err != nil {
			t.Fatal(err)
		}
		if cp, err := l.Checkpoint(ctx, "a"); err != nil || cp != seq {
			t.Fatalf("Checkpoint after SetCheckpoint(%d) = %d, %v", seq, cp, err)
		}
	}
	if cp, _ := l.Checkpoint(ctx, "b"); cp != 0 {
		t.Fatalf("Checkpoint(b) = %d, want 0: checkpoints are per sink", cp)
	}
	var letters []agenttrail.DeadLetter
	for i := range 5 {
		letters = append(letters, agenttrail.DeadLetter{Seq: int64(i + 1), EventID: "e" + string(rune('0'+i)), Org: "acme",
			Reason: "refused", Time: Base(), Event: []byte(`{"id":"x","bin":"\u0000"}`)})
	}
	if err := l.AddDeadLetters(ctx, "a", letters); err != nil {
		t.Fatal(err)
	}
	if err := l.AddDeadLetters(ctx, "b", letters[:1]); err != nil {
		t.Fatal(err)
	}
	got, err := l.DeadLetters(ctx, "a", 0, 3)
	if err != nil || len(got) != 3 {
		t.Fatalf("DeadLetters(a, limit 3) = %d, %v", len(got), err)
	}
	if got[0].Seq != 1 || got[0].Reason != "refused" || string(got[0].Event) != string(letters[0].Event) || !got[0].Time.Equal(Base()) || got[0].EventID != "e0" {
		t.Fatalf("DeadLetters[0] = %+v", got[0])
	}
	rest, err := l.DeadLetters(ctx, "a", got[2].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].ID <= got[2].ID {
		t.Fatalf("DeadLetters(after %d) = %+v, %v", got[2].ID, rest, err)
	}
	b, _ := l.DeadLetters(ctx, "b", 0, 10)
	// Deleting by another sink's name removes nothing.
	if err := l.DeleteDeadLetters(ctx, "a", []int64{b[0].ID}); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteDeadLetters(ctx, "a", []int64{got[0].ID, got[1].ID}); err != nil {
		t.Fatal(err)
	}
	na, _ := l.CountDeadLetters(ctx, "a")
	nb, _ := l.CountDeadLetters(ctx, "b")
	if na != 3 || nb != 1 {
		t.Fatalf("CountDeadLetters after deleting 2 of a = %d, %d; want 3, 1", na, nb)
	}
	left, _ := l.DeadLetters(ctx, "a", 0, 10)
	if !slices.ContainsFunc(left, func(d agenttrail.DeadLetter) bool { return d.Seq == 3 }) || slices.ContainsFunc(left, func(d agenttrail.DeadLetter) bool { return d.Seq == 1 }) {
		t.Fatalf("DeadLetters after delete = %+v", left)
	}
}
