package agenttrail_test

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
)

// TestBudgetWindowsAcrossDST: every instant of a year lies in its own
// window, and windows chain end to start, in zones whose DST change skips
// or repeats midnight itself (Havana, Santiago, Asunción, Beirut) as in
// ordinary ones. A day that starts at 01:00 because midnight never happened
// must not end before it started.
func TestBudgetWindowsAcrossDST(t *testing.T) {
	for _, tz := range []string{"America/Havana", "Asia/Beirut", "America/Santiago", "America/Asuncion", "Europe/Berlin", "Australia/Lord_Howe", "UTC"} {
		for _, p := range []agenttrail.Period{agenttrail.PeriodDay, agenttrail.PeriodWeek, agenttrail.PeriodMonth} {
			b := agenttrail.Budget{Timezone: tz, Period: p}
			year := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			for i := 0; i < 366*24; i += 3 {
				at := year.Add(time.Duration(i) * time.Hour)
				s, e := b.Window(at)
				if at.Before(s) || !at.Before(e) {
					t.Fatalf("%s %s: %v is not in its window [%v, %v)", tz, p, at, s, e)
				}
				if s3, _ := b.Window(e); !s3.Equal(e) {
					t.Fatalf("%s %s: the window after the one ending %v starts at %v", tz, p, e, s3)
				}
			}
		}
	}
	// Havana skipped 2025-03-09 00:00: that day starts at 01:00 CDT.
	b := agenttrail.Budget{Timezone: "America/Havana", Period: agenttrail.PeriodDay}
	s, _ := b.Window(time.Date(2025, 3, 9, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2025, 3, 9, 5, 0, 0, 0, time.UTC); !s.Equal(want) {
		t.Errorf("Havana's 2025-03-09 starts at %v, want %v (01:00 CDT)", s.UTC(), want)
	}
}
