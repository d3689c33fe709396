package server

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/storetest"
)

// BenchmarkDecodeBodyRedacted is BenchmarkDecodeBody with the redaction the
// server applies before storing (the built-in rules and the agenttrail
// token pattern): the difference of the two is redaction's cost per event
// on ordinary, secret-free traffic.
func BenchmarkDecodeBodyRedacted(b *testing.B) {
	now := time.Now()
	body := ndjson(b, storetest.Events(1, 1000, now.Add(-2*time.Hour), time.Hour))
	lim := agenttrail.DefaultLimits
	red, err := redact.New(TokenPattern)
	if err != nil {
		b.Fatal(err)
	}
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
			red.Event(&d.events[i])
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRedactStoredEvents measures redaction alone on decoded,
// validated events of ordinary traffic.
func BenchmarkRedactStoredEvents(b *testing.B) {
	now := time.Now()
	events := storetest.Events(1, 1000, now.Add(-2*time.Hour), time.Hour)
	red, err := redact.New(TokenPattern)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			e := events[i]
			red.Event(&e)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkTokenAuthenticate measures what a request pays for its token:
// the hash, the constant-time comparison, and the periodic stat.
func BenchmarkTokenAuthenticate(b *testing.B) {
	file := NewTokenFile(filepath.Join(b.TempDir(), "tokens.json"))
	token, _, err := file.Create("bench", RoleRead, "acme", "tester", time.Now())
	if err != nil {
		b.Fatal(err)
	}
	auth, err := NewTokenAuth(file, nil)
	if err != nil {
		b.Fatal(err)
	}
	r, _ := http.NewRequest(http.MethodGet, "/v1/events", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := auth.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
