package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/storetest"
	"github.com/agenttrail/agenttrail/wire"
)

// BenchmarkIngestHTTP posts 1,000-event NDJSON batches from several
// clients through the real server, pipeline and SQLite store, with group
// commit and with one transaction per event (the naive design), and
// reports events per second. Run with -benchtime=Nx for N batches.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, mode := range []struct {
		name string
		cfg  ingest.Config
	}{
		{"group", ingest.Config{}},
		{"naive", ingest.Config{Naive: true}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			const perBatch, clients = 1000, 4
			e := newEnv(b, options{ingest: mode.cfg})
			start := e.clock.Now().Add(-2 * time.Hour)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = ndjson(b, storetest.Events(int64(i+1), perBatch, start, time.Hour))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range clients {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= len(bodies) {
							return
						}
						if err := e.postBatch(bodies[i], perBatch); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// postBatch posts an NDJSON body and checks that all n events were
// accepted. It is safe to call from several goroutines.
func (e *env) postBatch(body []byte, n int) error {
	resp, err := e.client.Post(e.url+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var got wire.IngestResult
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &got) != nil || got.Accepted != n {
		return &batchError{status: resp.StatusCode, body: string(b)}
	}
	return nil
}

type batchError struct {
	status int
	body   string
}

func (e *batchError) Error() string {
	return "POST /v1/events = " + http.StatusText(e.status) + ": " + e.body
}
