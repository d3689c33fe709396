package server

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/storetest"
)

// BenchmarkExport measures GET /v1/export end to end over HTTP from the
// SQLite store, per format; one op is one whole export.
func BenchmarkExport(b *testing.B) {
	const n = 20000
	e := newEnv(b, options{now: testNow})
	events := storetest.Events(99, n, testNow.Add(-72*time.Hour), 71*time.Hour)
	for i := 0; i < n; i += 5000 {
		e.ingest(b, events[i:i+5000])
	}
	for _, format := range export.Formats() {
		b.Run(format, func(b *testing.B) {
			var bytes int64
			for i := 0; i < b.N; i++ {
				resp, err := e.client.Get(e.url + "/v1/export?format=" + format)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("GET /v1/export: %v %v", resp, err)
				}
				m, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					b.Fatal(err)
				}
				bytes += m
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(bytes)/float64(n*b.N), "B/event")
		})
	}
}
