package agenttrail

import (
	"testing"
	"time"
)

func TestMissedBeats(t *testing.T) {
	const iv = 10 * time.Second
	tests := []struct {
		d    time.Duration
		open bool
		want int64
	}{
		// Closed: the heartbeat that ended the window was one of the due
		// ones, a little early or late.
		{16 * time.Second, false, 1}, {20 * time.Second, false, 1}, {24 * time.Second, false, 1},
		{26 * time.Second, false, 2}, {40 * time.Second, false, 3},
		// Open: every one due strictly before the end is missed.
		{16 * time.Second, true, 1}, {20 * time.Second, true, 1}, {25 * time.Second, true, 2},
		{31 * time.Second, true, 3}, {110 * time.Second, true, 10},
	}
	for _, tc := range tests {
		if got := missedBeats(tc.d, iv, tc.open); got != tc.want {
			t.Errorf("missedBeats(%v, %v, open %v) = %d, want %d", tc.d, iv, tc.open, got, tc.want)
		}
	}
}

func TestHeartbeatIntervalOf(t *testing.T) {
	tests := []struct {
		meta string
		want time.Duration
	}{
		{`{"interval_ms":30000,"last_seq":7}`, 30 * time.Second},
		{`{"interval_ms":250}`, 250 * time.Millisecond},
		{``, 0},
		{`{}`, 0},
		{`{"interval_ms":0}`, 0},
		{`{"interval_ms":-5}`, 0},
		{`{"interval_ms":"30s"}`, 0},
		{`{"interval_ms":1e300}`, 0},
		{`not json`, 0},
	}
	for _, tc := range tests {
		if got := HeartbeatIntervalOf([]byte(tc.meta)); got != tc.want {
			t.Errorf("HeartbeatIntervalOf(%s) = %v, want %v", tc.meta, got, tc.want)
		}
	}
}

// TestHeartbeatScan pins the rules the stores share: producers are judged
// apart, each heartbeat by its own interval, and a stop ends a run cleanly.
func TestHeartbeatScan(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	beat := func(producer string, s int, iv time.Duration) Beat {
		return Beat{Org: "o", ActorID: "proxy-mcp@h", ProducerID: producer, Time: at(s), Interval: iv}
	}
	stop := func(producer string, s int) Beat {
		b := beat(producer, s, 0)
		b.Stop = true
		return b
	}
	scan := HeartbeatScan{Until: at(100)}
	for _, b := range []Beat{
		// p1 heartbeats every 10 s, misses the one at 30, stops cleanly at
		// 45 and starts again at 80: only the first is a gap.
		beat("p1", 0, 10*time.Second), beat("p1", 10, 10*time.Second), beat("p1", 20, 10*time.Second),
		beat("p1", 40, 10*time.Second), stop("p1", 45), beat("p1", 80, 10*time.Second), beat("p1", 90, 10*time.Second),
		// p2, the same actor, every 5 s until 50, then nothing: open.
		beat("p2", 0, 5*time.Second), beat("p2", 5, 5*time.Second), beat("p2", 50, 5*time.Second),
		// p3 states no interval: the 30 s default, so 40 s apart is none.
		beat("p3", 0, 0), beat("p3", 40, 0), beat("p3", 80, 0),
		// p4 stopped and never came back.
		beat("p4", 0, time.Second), stop("p4", 1),
	} {
		scan.Add(b)
	}
	got := scan.Gaps()
	want := []HeartbeatGap{
		{Org: "o", ActorID: "proxy-mcp@h", ProducerID: "p1", From: at(20), To: at(40), Missed: 1},
		{Org: "o", ActorID: "proxy-mcp@h", ProducerID: "p2", From: at(5), To: at(50), Missed: 8},
		{Org: "o", ActorID: "proxy-mcp@h", ProducerID: "p2", From: at(50), To: at(100), Missed: 9, Open: true},
	}
	if len(got) != len(want) {
		t.Fatalf("Gaps() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("gap %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
