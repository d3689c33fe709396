package agenttrail

import (
	"encoding/json"
	"math"
	"time"
)

// DefaultHeartbeatInterval is the interval gap detection judges a heartbeat
// by when the heartbeat states none (metadata.interval_ms, which the SDK
// sets) and the caller gives none. It is the SDK's default.
const DefaultHeartbeatInterval = 30 * time.Second

// Beat is one lifecycle event of a producer as gap detection reads it: a
// heartbeat (source "agent", action "heartbeat") or the clean stop that ends
// a producer's run (action "stop").
type Beat struct {
	Org, ActorID, ProducerID string
	Time                     time.Time
	Stop                     bool
	// Interval is the interval the heartbeat promised the next one within;
	// zero when it stated none.
	Interval time.Duration
}

// HeartbeatIntervalOf returns the interval a heartbeat's metadata states
// (interval_ms), or 0 when it states none or something unusable.
func HeartbeatIntervalOf(metadata []byte) time.Duration {
	if len(metadata) == 0 {
		return 0
	}
	var m struct {
		IntervalMS float64 `json:"interval_ms"`
	}
	if json.Unmarshal(metadata, &m) != nil || !(m.IntervalMS >= 1) || m.IntervalMS > float64(math.MaxInt64/int64(time.Millisecond)) {
		return 0
	}
	return time.Duration(m.IntervalMS) * time.Millisecond
}

// HeartbeatScan finds heartbeat gaps in a stream of Beats given in order of
// (org, actor_id, producer_id, time): both stores feed it from one ordered
// query, so the rule below is written once.
//
// Each producer is judged apart (two processes heartbeating as one actor do
// not hide each other's death), each heartbeat by the interval it states,
// unless Interval overrides them all, or Default when it states none. A gap is
// a heartbeat followed, more than 1.5 of its intervals later, by the
// producer's next heartbeat (closed) or by nothing at Until (open). A stop
// ends a run cleanly: the time after it is never a gap. The zero value is
// not usable; set Until and Default.
type HeartbeatScan struct {
	Until    time.Time
	Interval time.Duration // overrides the stated intervals when positive
	Default  time.Duration // for heartbeats that state none

	prev *Beat
	gaps []HeartbeatGap
}

// Add takes the next beat.
func (s *HeartbeatScan) Add(b Beat) {
	p := s.prev
	s.prev = &b
	if p == nil || p.Stop || p.Org != b.Org || p.ActorID != b.ActorID || p.ProducerID != b.ProducerID {
		if p != nil && !p.Stop {
			s.open(p)
		}
		return
	}
	iv := s.interval(p)
	if d := b.Time.Sub(p.Time); d > iv*3/2 {
		s.gaps = append(s.gaps, HeartbeatGap{Org: p.Org, ActorID: p.ActorID, ProducerID: p.ProducerID,
			From: p.Time.UTC(), To: b.Time.UTC(), Missed: missedBeats(d, iv, false)})
	}
}

// Gaps ends the scan and returns the gaps found, open ones included.
func (s *HeartbeatScan) Gaps() []HeartbeatGap {
	if p := s.prev; p != nil && !p.Stop {
		s.open(p)
	}
	s.prev = nil
	return s.gaps
}

// open records an open gap after p, the last beat of its producer, when it
// is too old at Until.
func (s *HeartbeatScan) open(p *Beat) {
	iv := s.interval(p)
	if d := s.Until.Sub(p.Time); d > iv*3/2 {
		s.gaps = append(s.gaps, HeartbeatGap{Org: p.Org, ActorID: p.ActorID, ProducerID: p.ProducerID,
			From: p.Time.UTC(), To: s.Until.UTC(), Missed: missedBeats(d, iv, true), Open: true})
	}
}

func (s *HeartbeatScan) interval(b *Beat) time.Duration {
	switch {
	case s.Interval > 0:
		return s.Interval
	case b.Interval > 0:
		return b.Interval
	case s.Default > 0:
		return s.Default
	}
	return DefaultHeartbeatInterval
}

// missedBeats counts the heartbeats due in a window of length d after the
// last one. A closed window ended with a heartbeat that was itself one of
// the due ones, possibly a little early or late: the count is rounded. In an
// open window, the heartbeats due strictly before its end are missed.
func missedBeats(d, iv time.Duration, open bool) int64 {
	if open {
		n := int64(d / iv)
		if d%iv == 0 {
			n--
		}
		return n
	}
	return int64(math.Round(float64(d)/float64(iv))) - 1
}
