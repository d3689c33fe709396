package sandbox

import (
	"slices"
	"testing"
	"time"
)

func TestCoalescer(t *testing.T) {
	var out []fileEvent
	c := newCoalescer(time.Second, func(e fileEvent) { out = append(out, e) })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

	c.create("a", false, at(0))
	c.create("a", false, at(1)) // seen twice: one create
	for i := range 50 {
		c.write("a", at(2+i))
	}
	c.write("b", at(10))
	c.write("b", at(20))
	if next := c.expire(at(999)); len(out) != 0 || next != at(1000) {
		t.Fatalf("before the window: %d events, next due %v; want none, %v", len(out), next, at(1000))
	}
	next := c.expire(at(1000))
	if len(out) != 1 || next != at(1010) {
		t.Fatalf("at the window: %d events, next due %v; want 1, %v", len(out), next, at(1010))
	}
	if e := out[0]; e.op != OpFileCreate || e.path != "a" || e.writes != 50 || e.first != at(0) || e.last != at(51) {
		t.Errorf("coalesced create = %+v, want a create of a with 50 writes from 0 to 51 ms", e)
	}

	// Writes after the window are a new event.
	c.write("a", at(1500))
	c.remove("b", false, at(1600)) // lets out b's writes, then the delete
	c.rename("a", "z", false, at(1700))
	want := []fileEvent{
		{op: OpFileWrite, path: "b", first: at(10), last: at(20), writes: 2},
		{op: OpFileDelete, path: "b", first: at(1600), last: at(1600)},
		{op: OpFileWrite, path: "a", first: at(1500), last: at(1500), writes: 1},
		{op: OpFileRename, path: "a", newPath: "z", first: at(1700), last: at(1700)},
	}
	if !slices.Equal(out[1:], want) {
		t.Errorf("events = %+v\nwant %+v", out[1:], want)
	}
	if next := c.expire(at(5000)); !next.IsZero() || len(c.pending) != 0 || len(c.queue) != 0 {
		t.Errorf("after everything went out: next %v, %d pending, %d queued", next, len(c.pending), len(c.queue))
	}

	out = nil
	c.create("d", true, at(6000))
	c.write("e", at(6001))
	c.flushAll()
	if len(out) != 2 || out[0].path != "d" || !out[0].dir || out[1].path != "e" {
		t.Errorf("flushAll = %+v, want d then e", out)
	}
}
