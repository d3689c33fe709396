package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/sink"
)

// BenchmarkIngestStuckSink measures ingest over HTTP (2 senders, 1,000
// events a request, 100,000 events) into a server without sinks and into
// one whose webhook sink's receiver never answers, in the same run, and
// reports both rates and their ratio: a stuck receiver must not slow
// ingest (target: the ratio at least 0.9).
func BenchmarkIngestStuckSink(b *testing.B) {
	stuck := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-stuck // never answers while the benchmark runs
	}))
	defer hook.Close()
	defer close(stuck)
	rate := func(sinks []sink.Config) float64 {
		dir := b.TempDir()
		m, err := Open(context.Background(), Config{Addr: "127.0.0.1:0", DataDir: dir, Sinks: sinks})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan error, 1)
		go func() { ran <- m.Run(ctx) }()
		defer func() { cancel(); <-ran }()
		tok, _ := os.ReadFile(filepath.Join(dir, AdminTokenFile))
		c := client.New(m.URL(), client.WithToken(strings.TrimSpace(string(tok))))
		const senders, perReq, total = 2, 1000, 100000
		t0 := time.Now()
		var wg sync.WaitGroup
		for s := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch := make([]agenttrail.Event, perReq)
				for r := 0; r < total/senders/perReq; r++ {
					for i := range batch {
						batch[i] = agenttrail.Event{ActorType: "agent", ActorID: fmt.Sprintf("a%d", s), Source: "shell", Action: "exec", Result: "success",
							ID: fmt.Sprintf("s%d-r%d-i%d", s, r, i)}
					}
					if _, err := c.Ingest(context.Background(), batch); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return total / time.Since(t0).Seconds()
	}
	sc := sink.Config{Name: "stuck", Type: sink.TypeWebhook, URL: hook.URL}
	if err := sc.Check(); err != nil {
		b.Fatal(err)
	}
	// Alternate which server runs first, so warm-up favours neither.
	var none, withStuck float64
	for i := range b.N {
		if i%2 == 0 {
			none += rate(nil)
			withStuck += rate([]sink.Config{sc})
		} else {
			withStuck += rate([]sink.Config{sc})
			none += rate(nil)
		}
	}
	b.ReportMetric(none/float64(b.N), "events/s-no-sink")
	b.ReportMetric(withStuck/float64(b.N), "events/s-stuck-sink")
	b.ReportMetric(withStuck/none, "ratio")
}
