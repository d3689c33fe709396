package server

import (
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/storetest"
)

// BenchmarkDecodeBody measures the CPU the server spends per event before
// the store: splitting a 1,000-event NDJSON body, normalizing and
// validating each event.
func BenchmarkDecodeBody(b *testing.B) {
	now := time.Now()
	body := ndjson(b, storetest.Events(1, 1000, now.Add(-2*time.Hour), time.Hour))
	lim := agenttrail.DefaultLimits
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := decodeBody(body, lim)
		if err != nil || len(d.rejected) != 0 {
			b.Fatalf("decodeBody: %v, %v", err, d.rejected)
		}
		for i := range d.events {
			d.events[i].Normalize(now, "")
			if err := d.events[i].Validate(now); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
