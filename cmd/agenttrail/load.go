package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// runLoad sends synthetic events to a server as fast as it takes them and
// reports its ingest rate, measured from outside the server's process:
//
//	agenttrail load [--server URL --token T] [--events N | --duration 10s] [--senders 4] [--batch 1000] [--json]
//
// agenttrail bench runs it against the server it starts. With --duration it
// sends for that long, as the outside load generator does (-d), so that
// the store grows as much as it does under that generator: a fixed number of
// events ends sooner on a fast server, on a smaller store.
func runLoad(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("load", env)
	var sf serverFlags
	sf.register(fs, env)
	events := fs.Int("events", 300000, "events to send (rounded down to whole requests)")
	duration := fs.Duration("duration", 0, "send for this long instead of --events (requests under way at the end complete)")
	senders := fs.Int("senders", 4, "concurrent senders")
	batch := fs.Int("batch", 1000, "events per request")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*duration <= 0 && *events < *batch) || *batch < 1 || *senders < 1 || *duration < 0 {
		return fmt.Errorf("--events must be at least --batch, and counts and --duration positive")
	}
	l := newLoad(sf.server, sf.token, *batch)
	start := time.Now()
	requests := int64(*events / *batch)
	var until time.Time
	if *duration > 0 {
		requests, until = math.MaxInt64, start.Add(*duration)
	}
	n, err := l.send(ctx, *senders, requests, until)
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	res := ingestResult{Events: n, Seconds: elapsed.Seconds(), EventsPerSec: float64(n) / elapsed.Seconds()}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(res)
	}
	fmt.Fprintf(env.Stdout, "accepted %d events in %.2f s: %.0f events/s\n", res.Events, res.Seconds, res.EventsPerSec)
	return nil
}

// load sends ingest requests as a load generator outside the server does:
// each request a JSON array of batch events of about 600 bytes with ids
// unique to the run (so none is a duplicate), built by appending into a
// buffer each sender reuses, so the senders leave the CPU to the server.
type load struct {
	url, token string
	batch      int
	run        string
	hc         *http.Client
}

var (
	loadSources = []string{"shell", "mcp-tool", "llm-proxy", "forward-proxy", "k8s-proxy", "aws-proxy", "sandbox"}
	loadResults = []string{"success", "success", "success", "failure", "error"}
)

func newLoad(url, token string, batch int) *load {
	return &load{
		url: url, token: token, batch: batch,
		run: strconv.FormatInt(time.Now().UnixNano(), 36),
		// A default client, as a simple sender has: it keeps two idle
		// connections to the server, so more senders reconnect.
		hc: &http.Client{Timeout: time.Minute, Transport: http.DefaultTransport.(*http.Transport).Clone()},
	}
}

// send posts requests requests from senders goroutines, stopping early
// at until when it is set, and returns how many events the server
// accepted. A 503 or 429 is retried after a short pause, as the SDK backs
// off; anything else stops the run.
func (l *load) send(ctx context.Context, senders int, requests int64, until time.Time) (int, error) {
	defer l.hc.CloseIdleConnections()
	var next, accepted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for w := range senders {
		wg.Go(func() {
			var buf []byte
			seq := int64(0)
			for i := next.Add(1) - 1; i < requests && ctx.Err() == nil && (until.IsZero() || time.Now().Before(until)); i = next.Add(1) - 1 {
				buf = l.body(buf[:0], w, &seq)
				got, err := l.post(ctx, buf)
				if err != nil {
					errs <- err
					return
				}
				accepted.Add(int64(got))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return int(accepted.Load()), nil
}

// body appends one request's JSON array of events for sender w.
func (l *load) body(b []byte, w int, seq *int64) []byte {
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	b = append(b, '[')
	for i := range l.batch {
		*seq++
		n := *seq
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":"load-`...)
		b = append(b, l.run...)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(w), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, n, 10)
		b = append(b, `","time":"`...)
		b = append(b, ts...)
		b = append(b, `","duration_ms":12.5,"actor_type":"agent","actor_id":"agent-`...)
		b = strconv.AppendInt(b, (n+int64(w))%64, 10)
		b = append(b, `","actor_name":"load generator","source":"`...)
		b = append(b, loadSources[n%7]...)
		b = append(b, `","action":"shell_exec","resource_type":"host","resource_id":"box-`...)
		b = strconv.AppendInt(b, n%100, 10)
		b = append(b, `","result":"`...)
		b = append(b, loadResults[n%5]...)
		b = append(b, `","status_code":200,"description":"ran kubectl get pods -n default","org":"acme","project":"p`...)
		b = strconv.AppendInt(b, n%8, 10)
		b = append(b, `","metadata":{"shell":{"command":"kubectl get pods -n default","exit_code":0,"stdout":"NAME READY STATUS RESTARTS AGE\\nweb-1 1/1 Running 0 3d\\nweb-2 1/1 Running 0 3d"}}}`...)
	}
	return append(b, ']')
}

// post sends one request and returns how many events the server accepted,
// which must be all of them.
func (l *load) post(ctx context.Context, body []byte) (int, error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		if l.token != "" {
			req.Header.Set("Authorization", "Bearer "+l.token)
		}
		resp, err := l.hc.Do(req)
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return 0, err
		case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
			// The server says it is full instead of dropping: back off
			// briefly, as the SDK does.
			time.Sleep(5 * time.Millisecond)
			continue
		case resp.StatusCode != http.StatusOK:
			return 0, fmt.Errorf("POST /v1/events: status %d: %.300s", resp.StatusCode, b)
		}
		var res struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal(b, &res); err != nil {
			return 0, fmt.Errorf("POST /v1/events: %w", err)
		}
		if res.Accepted != l.batch {
			return 0, fmt.Errorf("POST /v1/events accepted %d of %d events: %.300s", res.Accepted, l.batch, b)
		}
		return res.Accepted, nil
	}
}
