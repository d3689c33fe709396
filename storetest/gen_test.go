package storetest

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func TestEvents(t *testing.T) {
	start := Base()
	a := Events(7, 2000, start, 24*time.Hour)
	b := Events(7, 2000, start, 24*time.Hour)
	sources := map[string]int{}
	ids := map[string]bool{}
	ties := 0
	for i := range a {
		e := &a[i]
		if d := DiffEvent(e, &b[i]); d != "" {
			t.Fatalf("Events(7) is not deterministic: event %d: %s", i, d)
		}
		if err := e.Validate(start.Add(24 * time.Hour)); err != nil {
			t.Fatalf("Events(7)[%d] is invalid: %v", i, err)
		}
		if e.Time.Before(start) || !e.Time.Before(start.Add(24*time.Hour)) || e.Time.Nanosecond()%1000 != 0 {
			t.Errorf("Events(7)[%d].Time = %v, want a microsecond in the span", i, e.Time)
		}
		if ids[e.Org+"/"+e.ID] {
			t.Errorf("Events(7)[%d] repeats id %s", i, e.ID)
		}
		ids[e.Org+"/"+e.ID] = true
		sources[e.Source]++
		_, hasLLM := e.LLM()
		if hasLLM != (e.Source == agenttrail.SourceLLM) {
			t.Errorf("Events(7)[%d] from %s has LLM usage %v", i, e.Source, hasLLM)
		}
		if i > 0 && e.Time.Equal(a[i-1].Time) {
			ties++
		}
	}
	if len(sources) != 7 {
		t.Errorf("Events(7) covers %d sources %v, want the 7 surfaces", len(sources), sources)
	}
	if ties == 0 {
		t.Errorf("Events(7) has no events sharing a time, want some to test tie-breaks")
	}
	if c := Events(8, 10, start, time.Hour); c[0].ID == a[0].ID {
		t.Errorf("Events(8) and Events(7) share id %s", c[0].ID)
	}
}

func TestHeartbeats(t *testing.T) {
	hb := Heartbeats("o", "a", Base(), time.Minute, 10, func(i int) bool { return i == 3 })
	if len(hb) != 9 {
		t.Fatalf("Heartbeats(10, skip 1) = %d events, want 9", len(hb))
	}
	for i, e := range hb {
		if err := e.Validate(Base().Add(time.Hour)); err != nil {
			t.Fatalf("Heartbeats()[%d] is invalid: %v", i, err)
		}
		if e.ProducerSeq != int64(i+1) {
			t.Errorf("Heartbeats()[%d].ProducerSeq = %d, want %d", i, e.ProducerSeq, i+1)
		}
	}
	if got, want := hb[3].Time, Base().Add(4*time.Minute); !got.Equal(want) {
		t.Errorf("Heartbeats()[3].Time = %v, want %v (the skipped one leaves a hole)", got, want)
	}
}

func TestSelect(t *testing.T) {
	events := Events(9, 300, Base(), time.Hour)
	for i := range events {
		events[i].Seq = int64(i + 1)
	}
	for _, s := range sorts() {
		got := Select(events, agenttrail.Query{Sort: s, Filter: agenttrail.Filter{Org: []string{"acme"}}})
		for i := range got {
			if got[i].Org != "acme" {
				t.Fatalf("Select(org acme) returned org %s", got[i].Org)
			}
			if i > 0 && !After(s, agenttrail.PositionOf(&got[i-1]), agenttrail.PositionOf(&got[i])) {
				t.Fatalf("Select(sort %s) out of order at %d", s, i)
			}
		}
		if len(got) == 0 || len(got) == len(events) {
			t.Errorf("Select(org acme) = %d of %d events, want some", len(got), len(events))
		}
	}
}
