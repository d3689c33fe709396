package integrity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/sink"
	"github.com/agenttrail/agenttrail/storetest"
)

// TestCheckpointsReachSinks runs the server as serve does, with a file
// sink: every checkpoint signed is an audit event of its org, so the sink
// delivers it, a signed note that opens with the server's key.
func TestCheckpointsReachSinks(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "siem.ndjson")
	sc := sink.Config{Name: "siem", Type: sink.TypeFile, Path: out}
	sc.Batch.MaxWait = sink.Duration(20 * time.Millisecond)
	m, err := app.Open(t.Context(), app.Config{Addr: "127.0.0.1:0", DataDir: filepath.Join(dir, "data"),
		Sinks: []sink.Config{sc}, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	token, err := os.ReadFile(filepath.Join(dir, "data", app.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(m.URL(), client.WithToken(string(bytes.TrimSpace(token))))
	events := storetest.Events(1, 50, time.Now().Add(-time.Hour), time.Hour)
	for i := range events {
		events[i].Org = "acme"
	}
	if _, err := c.Ingest(t.Context(), events); err != nil {
		t.Fatal(err)
	}
	key, err := c.IntegrityKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		b, _ := os.ReadFile(out)
		for _, line := range bytes.Split(b, []byte("\n")) {
			if !bytes.Contains(line, []byte(`"integrity.checkpoint"`)) || !bytes.Contains(line, []byte(`"org":"acme"`)) {
				continue
			}
			var e agenttrail.Event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("sink line %s: %v", line, err)
			}
			var md struct {
				Integrity struct {
					Note string `json:"note"`
				} `json:"integrity"`
			}
			if err := json.Unmarshal(e.Metadata, &md); err != nil {
				t.Fatal(err)
			}
			cp, err := integrity.OpenCheckpoint([]byte(md.Integrity.Note), key)
			if err != nil || cp.Org != "acme" || cp.Size < 50 {
				t.Fatalf("delivered checkpoint %q: %+v, %v", md.Integrity.Note, cp, err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of acme reached the file sink in 30 s:\n%s", b)
		}
	}
}
