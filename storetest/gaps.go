package storetest

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

func testHeartbeatGaps(t *testing.T, s agenttrail.Store) {
	iv := time.Minute
	start := Base().Truncate(time.Minute)
	at := func(i int) time.Time { return start.Add(time.Duration(i) * iv) }
	var events []agenttrail.Event
	// agent-a stops for exactly 3 intervals: heartbeats 10, 11, 12 missing.
	events = append(events, Heartbeats("acme", "agent-a", start, iv, 30, func(i int) bool { return i >= 10 && i <= 12 })...)
	// agent-b never misses one, with up to ±10% jitter.
	r := rand.New(rand.NewPCG(40, 41))
	b := Heartbeats("acme", "agent-b", start, iv, 30, nil)
	for i := 1; i < len(b); i++ {
		b[i].Time = b[i].Time.Add(time.Duration(r.IntN(12e6)-6e6) * time.Microsecond)
	}
	events = append(events, b...)
	// agent-c stops for good after its 20th heartbeat.
	events = append(events, Heartbeats("acme", "agent-c", start, iv, 20, nil)...)
	// agent-d misses a single heartbeat: 2 intervals apart is a gap.
	events = append(events, Heartbeats("acme", "agent-d", start, iv, 30, func(i int) bool { return i == 15 })...)
	// agent-a of another org has no gap: gaps are per (org, actor_id).
	events = append(events, Heartbeats("globex", "agent-a", start, iv, 30, nil)...)
	// Other events of agent-a during its gap are not heartbeats.
	other := Events(42, 5, at(10), 3*iv)
	for i := range other {
		other[i].Org, other[i].ActorID = "acme", "agent-a"
	}
	events = append(events, other...)
	AppendAll(t, s, events, len(events))

	gapA := agenttrail.HeartbeatGap{Org: "acme", ActorID: "agent-a", From: at(9), To: at(13), Missed: 3}
	gapC := agenttrail.HeartbeatGap{Org: "acme", ActorID: "agent-c", From: at(19), To: at(30), Missed: 10, Open: true}
	gapD := agenttrail.HeartbeatGap{Org: "acme", ActorID: "agent-d", From: at(14), To: at(16), Missed: 1}
	tests := []struct {
		f    agenttrail.Filter
		want []agenttrail.HeartbeatGap
	}{
		{agenttrail.Filter{Since: start, Until: at(30)}, []agenttrail.HeartbeatGap{gapA, gapC, gapD}},
		{agenttrail.Filter{Org: []string{"acme"}, ActorID: []string{"agent-a"}, Since: start, Until: at(30)}, []agenttrail.HeartbeatGap{gapA}},
		{agenttrail.Filter{Org: []string{"globex"}, Since: start, Until: at(30)}, nil},
		{agenttrail.Filter{ActorID: []string{"agent-b"}, Since: start, Until: at(30)}, nil},
		{agenttrail.Filter{Since: start, Until: at(9)}, nil},
	}
	for _, tc := range tests {
		got, err := s.HeartbeatGaps(t.Context(), tc.f, iv)
		call := fmt.Sprintf("HeartbeatGaps(%s, %v)", filterString(tc.f), iv)
		if err != nil {
			t.Fatalf("%s error: %v", call, err)
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s = %d gaps %+v, want %d %+v", call, len(got), got, len(tc.want), tc.want)
			continue
		}
		sort.Slice(got, func(i, j int) bool {
			if got[i].Org != got[j].Org {
				return got[i].Org < got[j].Org
			}
			return got[i].ActorID < got[j].ActorID
		})
		for i, g := range got {
			w := tc.want[i]
			if g.Org != w.Org || g.ActorID != w.ActorID || !g.From.Equal(w.From) || !g.To.Equal(w.To) || g.Missed != w.Missed || g.Open != w.Open {
				t.Errorf("%s gap %d = %+v, want %+v", call, i, g, w)
			}
		}
	}
}

func testSequenceGaps(t *testing.T, s agenttrail.Store) {
	start := Base()
	var events []agenttrail.Event
	produce := func(org, producer string, seqs ...int64) {
		for _, n := range seqs {
			e := Events(int64(len(events)), 1, start.Add(time.Duration(n)*time.Second), time.Millisecond)[0]
			e.ID = fmt.Sprintf("%s-%s-%d-%d", org, producer, n, len(events))
			e.Org, e.ProducerID, e.ProducerSeq = org, producer, n
			events = append(events, e)
		}
	}
	seqRange := func(from, to int64) []int64 {
		var out []int64
		for n := from; n <= to; n++ {
			out = append(out, n)
		}
		return out
	}
	produce("acme", "p1", append(seqRange(1, 10), seqRange(15, 20)...)...)
	produce("acme", "p2", 1, 2, 3, 4, 5, 7, 9, 10, 11, 12)
	produce("globex", "p1", seqRange(1, 20)...)
	produce("globex", "p3", 3, 3, 4, 5, 4) // repeats and out of order: no gap
	r := rand.New(rand.NewPCG(43, 44))
	r.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
	AppendAll(t, s, events, 25)

	p1 := []agenttrail.SequenceGap{{Org: "acme", ProducerID: "p1", From: 11, To: 14}}
	p2 := []agenttrail.SequenceGap{{Org: "acme", ProducerID: "p2", From: 6, To: 6}, {Org: "acme", ProducerID: "p2", From: 8, To: 8}}
	tests := []struct {
		f    agenttrail.Filter
		want []agenttrail.SequenceGap
	}{
		{agenttrail.Filter{}, append(append([]agenttrail.SequenceGap(nil), p1...), p2...)},
		{agenttrail.Filter{ProducerID: []string{"p1"}}, p1},
		{agenttrail.Filter{Org: []string{"globex"}}, nil},
		{agenttrail.Filter{Org: []string{"acme"}, ProducerID: []string{"p2"}}, p2},
		// Only seqs 15..20 of p1 lie in this range: nothing missing among them.
		{agenttrail.Filter{ProducerID: []string{"p1"}, Org: []string{"acme"}, Since: start.Add(15 * time.Second)}, nil},
		{agenttrail.Filter{Since: start, Until: start.Add(8 * time.Second)}, p2[:1]},
	}
	for _, tc := range tests {
		got, err := s.SequenceGaps(t.Context(), tc.f)
		call := fmt.Sprintf("SequenceGaps(%s)", filterString(tc.f))
		if err != nil {
			t.Fatalf("%s error: %v", call, err)
		}
		sort.Slice(got, func(i, j int) bool {
			a, b := got[i], got[j]
			if a.Org != b.Org {
				return a.Org < b.Org
			}
			if a.ProducerID != b.ProducerID {
				return a.ProducerID < b.ProducerID
			}
			return a.From < b.From
		})
		if len(got) == 0 && len(tc.want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s = %+v, want %+v", call, got, tc.want)
		}
	}
}

// testHeartbeatProducers stores what two capture processes of one actor
// (proxy-mcp@host) send, each with its own producer and stated interval,
// and checks that the death of one is not hidden by the other, that a clean
// stop is never a gap, and that interval 0 reads each heartbeat's own.
func testHeartbeatProducers(t *testing.T, s agenttrail.Store) {
	start := Base().Truncate(time.Minute)
	at := func(sec int) time.Time { return start.Add(time.Duration(sec) * time.Second) }
	var events []agenttrail.Event
	beat := func(producer string, sec int, action string, meta string) {
		e := agenttrail.Event{
			ID: fmt.Sprintf("%s-%d-%s", producer, sec, action), Time: at(sec), ActorType: agenttrail.ActorSystem,
			ActorID: "proxy-mcp@host", Source: agenttrail.SourceAgent, Action: action, Result: agenttrail.ResultSuccess,
			Org: "acme", ProducerID: producer, ProducerSeq: int64(len(events) + 1), ReceivedAt: at(sec),
		}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		events = append(events, e)
	}
	// p1 heartbeats every 10 s until 300 s, then dies (SIGKILL): open gap.
	for sec := 0; sec <= 300; sec += 10 {
		beat("p1", sec, agenttrail.ActionHeartbeat, `{"interval_ms":10000}`)
	}
	// p2, the same actor, every 10 s throughout: it must not hide p1's end.
	for sec := 0; sec <= 600; sec += 10 {
		beat("p2", sec, agenttrail.ActionHeartbeat, `{"interval_ms":10000}`)
	}
	// p3 every 10 s, stops cleanly at 205 s and starts again at 400 s.
	for sec := 0; sec <= 200; sec += 10 {
		beat("p3", sec, agenttrail.ActionHeartbeat, `{"interval_ms":10000}`)
	}
	beat("p3", 205, agenttrail.ActionStop, "")
	for sec := 400; sec <= 600; sec += 10 {
		beat("p3", sec, agenttrail.ActionHeartbeat, `{"interval_ms":10000}`)
	}
	// p4 stops cleanly at 100 s for good.
	for sec := 0; sec <= 90; sec += 10 {
		beat("p4", sec, agenttrail.ActionHeartbeat, `{"interval_ms":10000}`)
	}
	beat("p4", 100, agenttrail.ActionStop, "")
	// p5 states a 60 s interval and keeps to it: not a gap by its own
	// interval, though 6 of p1's.
	for sec := 0; sec <= 600; sec += 60 {
		beat("p5", sec, agenttrail.ActionHeartbeat, `{"interval_ms":60000}`)
	}
	// p6 states nothing: judged by the 30 s default, 40 s apart is none.
	for sec := 0; sec <= 600; sec += 40 {
		beat("p6", sec, agenttrail.ActionHeartbeat, "")
	}
	AppendAll(t, s, events, 50)

	f := agenttrail.Filter{Since: start, Until: at(605)}
	got, err := s.HeartbeatGaps(t.Context(), f, 0)
	if err != nil {
		t.Fatalf("HeartbeatGaps(%s, 0) error: %v", filterString(f), err)
	}
	want := []agenttrail.HeartbeatGap{{Org: "acme", ActorID: "proxy-mcp@host", ProducerID: "p1", From: at(300), To: at(605), Missed: 30, Open: true}}
	if len(got) != 1 || got[0].ProducerID != want[0].ProducerID || !got[0].From.Equal(want[0].From) ||
		!got[0].To.Equal(want[0].To) || got[0].Missed != want[0].Missed || !got[0].Open || got[0].ActorID != want[0].ActorID {
		t.Errorf("HeartbeatGaps(%s, 0) = %+v, want %+v", filterString(f), got, want)
	}
	// Judged by 10 s, p5's and p6's heartbeats are late too.
	got, err = s.HeartbeatGaps(t.Context(), f, 10*time.Second)
	if err != nil {
		t.Fatalf("HeartbeatGaps(%s, 10s) error: %v", filterString(f), err)
	}
	perProducer := map[string]int{}
	for _, g := range got {
		perProducer[g.ProducerID]++
	}
	if want := map[string]int{"p1": 1, "p5": 10, "p6": 15}; !reflect.DeepEqual(perProducer, want) {
		t.Errorf("HeartbeatGaps(%s, 10s) gaps per producer = %v, want %v", filterString(f), perProducer, want)
	}
}
