// Command agent is a tiny agent for the reliability tests: it records a
// numbered stream of events through client.Recorder with a spool directory,
// and prints its counters as one JSON line every 50 ms, so a test can kill
// it at a known point and restart it on the same spool.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// stats is one line of the agent's output.
type stats struct {
	ProducerID string `json:"producer_id"`
	Recorded   int64  `json:"recorded"`
	Sent       int64  `json:"sent"`
	Spooled    int64  `json:"spooled"`
	Replayed   int64  `json:"replayed"`
	Dropped    int64  `json:"dropped"`
	Done       bool   `json:"done"`
}

func main() {
	var (
		server = flag.String("server", "", "agenttrail server URL")
		token  = flag.String("token", "", "bearer token")
		spool  = flag.String("spool", "", "spool directory")
		actor  = flag.String("actor", "test-agent", "actor id")
		n      = flag.Int("n", 0, "events to record before closing; 0 records until killed")
		rate   = flag.Int("rate", 2000, "events per second")
		queue  = flag.Int("queue", 1000, "RecorderConfig.QueueSize")
		batch  = flag.Int("batch", 100, "RecorderConfig.BatchSize")
		drain  = flag.Bool("drain", false, "before closing, wait (up to a minute) until the spool is replayed")
	)
	flag.Parse()
	c := client.New(*server, client.WithToken(*token))
	rec, err := client.NewRecorder(c, client.RecorderConfig{
		SpoolDir: *spool, ActorID: *actor, QueueSize: *queue, BatchSize: *batch,
		FlushInterval: 100 * time.Millisecond, Heartbeat: client.HeartbeatOff,
		MaxBackoff: 500 * time.Millisecond, RequestTimeout: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	report := func(done bool) {
		s := rec.Stats()
		enc.Encode(stats{ProducerID: rec.ProducerID(), Recorded: s.Recorded, Sent: s.Sent, Spooled: s.Spooled,
			Replayed: s.Replayed, Dropped: s.DroppedTotal(), Done: done})
	}
	tick := time.NewTicker(time.Second / time.Duration(*rate))
	defer tick.Stop()
	out := time.NewTicker(50 * time.Millisecond)
	defer out.Stop()
	for i := 1; *n == 0 || i <= *n; {
		select {
		case <-tick.C:
			rec.Record(context.Background(), agenttrail.Event{
				Source: "shell", Action: "shell_exec", Result: agenttrail.ResultSuccess,
				ResourceType: "step", ResourceID: strconv.Itoa(i),
			})
			i++
		case <-out.C:
			report(false)
		}
	}
	// Close does not replay the spool; a test that wants everything
	// delivered waits for the replay first.
	for deadline := time.Now().Add(time.Minute); *drain && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if s := rec.Stats(); s.SpoolPending == 0 && s.Queued == 0 {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	report(true)
}
