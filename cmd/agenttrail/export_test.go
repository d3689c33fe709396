package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/servertest"
)

// cliEvents records n events with actions prefix-i, for actors a0..a2.
func cliEvents(t *testing.T, c *client.Client, prefix string, n int) []agenttrail.Event {
	t.Helper()
	now := time.Now().UTC()
	events := make([]agenttrail.Event, n)
	for i := range events {
		events[i] = agenttrail.Event{
			ID: fmt.Sprintf("%s-%d", prefix, i), Time: now, ActorType: agenttrail.ActorAgent,
			ActorID: fmt.Sprintf("a%d", i%3), Source: "shell", Action: fmt.Sprintf("%s-%d", prefix, i),
			Result: agenttrail.ResultSuccess,
		}
	}
	if res, err := c.Ingest(context.Background(), events); err != nil || res.Accepted != n {
		t.Fatalf("Ingest = %+v, %v", res, err)
	}
	return events
}

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExportCommand(t *testing.T) {
	srv := servertest.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.Token))
	defer c.CloseIdleConnections()
	events := cliEvents(t, c, "x", 1200)

	out := filepath.Join(t.TempDir(), "trail.csv")
	code, _, stderr := runCLI(t, "export", "--server", srv.URL, "--token", srv.Token, "--format", "csv", "--actor-id", "a1", "--out", out)
	if code != 0 {
		t.Fatalf("export --format csv = %d: %s", code, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != len(events)/3+1 {
		t.Fatalf("exported CSV: %d rows, %v; want %d", len(rows), err, len(events)/3+1)
	}
	for _, r := range rows[1:] {
		if r[3] != "a1" {
			t.Fatalf("exported row of actor %q, want only a1", r[3])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*partial*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// --source: the server also holds its audit of its token and of the export above.
	code, stdout, stderr := runCLI(t, "export", "--server", srv.URL, "--token", srv.Token, "--format", "cef", "--source", "shell")
	if code != 0 || strings.Count(stdout, "CEF:0|agenttrail|") != len(events) {
		t.Errorf("export --format cef = %d, %d lines: %s", code, strings.Count(stdout, "\n"), stderr)
	}
	if code, _, stderr := runCLI(t, "export", "--server", srv.URL, "--token", srv.Token, "--format", "xml"); code != 2 || !strings.Contains(stderr, "--format") {
		t.Errorf("export --format xml = %d (%s), want usage error 2", code, stderr)
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct{ syncWriter }

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.String()
}

func TestTailCommand(t *testing.T) {
	srv := servertest.Start(t)
	c := client.New(srv.URL, client.WithToken(srv.Token))
	defer c.CloseIdleConnections()
	before := cliEvents(t, c, "before", 3)

	for _, asJSON := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		out := &lockedBuffer{syncWriter{w: &bytes.Buffer{}}}
		var errb bytes.Buffer
		args := []string{"tail", "--server", srv.URL, "--token", srv.Token, "--actor-id", "a0", "--since", "1h"}
		if asJSON {
			args = append(args, "--json")
		}
		done := make(chan int, 1)
		go func() { done <- Run(ctx, args, strings.NewReader(""), out, &errb) }()
		prefix := fmt.Sprintf("live%v", asJSON)
		live := cliEvents(t, c, prefix, 6)
		want := []string{before[0].Action, live[0].Action, live[3].Action}
		deadline := time.Now().Add(15 * time.Second)
		for !containsAll(out.String(), want) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("tail (json %v) = %d: %s", asJSON, code, errb.String())
		}
		got := out.String()
		if !containsAll(got, want) || strings.Contains(got, live[1].Action) {
			t.Errorf("tail --actor-id a0 (json %v) printed %q, want %v and no other actor", asJSON, got, want)
		}
		if asJSON {
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				var e agenttrail.Event
				if err := json.Unmarshal([]byte(line), &e); err != nil || e.ActorID != "a0" {
					t.Errorf("tail --json line %q: %v", line, err)
				}
			}
		} else if !strings.HasPrefix(got, "TIME ") {
			t.Errorf("tail table = %q, want a header first", got)
		}
	}
}

func containsAll(s string, subs []string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}
