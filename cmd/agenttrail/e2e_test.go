package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// binary is the agenttrail binary built once for the end-to-end tests, so
// they run the real process the way a user does.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(envMCPServer) == "1" {
		os.Exit(runTestMCPServer())
	}
	dir, err := os.MkdirTemp("", "agenttrail-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "agenttrail")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build agenttrail:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a running agenttrail serve. token is the admin token it
// created in its data directory on first start.
type process struct {
	cmd    *exec.Cmd
	url    string
	token  string
	stderr *bytes.Buffer
}

// client returns an SDK client of the server with its admin token.
func (p *process) client() *client.Client {
	return client.New(p.url, client.WithToken(p.token))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `agenttrail serve` and waits until /readyz answers.
func startServe(t *testing.T, addr, data string, extra ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--addr", addr, "--data", data}, extra...)
	p := &process{cmd: exec.Command(binary, args...), url: "http://" + addr, stderr: &bytes.Buffer{}}
	p.cmd.Stderr = &syncWriter{w: p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	c := client.New(p.url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ready(ctx)
		cancel()
		if err == nil {
			b, err := os.ReadFile(filepath.Join(data, "admin.token"))
			if err != nil {
				t.Fatalf("agenttrail serve is ready but left no admin token: %v", err)
			}
			p.token = strings.TrimSpace(string(b))
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("agenttrail serve not ready after 30s: %v\nstderr:\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// allIDs pages through every event in commit order and returns their ids,
// failing on a repeated one.
func allIDs(t *testing.T, c *client.Client) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	opts := client.QueryOptions{Sort: agenttrail.SortSeq, Limit: agenttrail.MaxLimit}
	for {
		page, err := c.Query(context.Background(), agenttrail.Filter{}, opts)
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		for _, e := range page.Events {
			if ids[e.ID] {
				t.Fatalf("event %s returned twice", e.ID)
			}
			ids[e.ID] = true
		}
		if len(page.Events) == 0 {
			return ids
		}
		opts.Cursor = page.NextCursor
	}
}

// TestKillAfterAcknowledgement kills the server with SIGKILL while senders
// are mid-stream, restarts it on the same data, and checks that every event
// the server acknowledged is stored, once.
func TestKillAfterAcknowledgement(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	p := startServe(t, addr, data)
	c := p.client()

	var (
		mu    sync.Mutex
		acked []string
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	gen := newTraffic(7)
	var genMu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				genMu.Lock()
				batch := make([]agenttrail.Event, 50)
				for i := range batch {
					batch[i] = gen.event(time.Now())
				}
				genMu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := c.Ingest(ctx, batch)
				cancel()
				if err != nil {
					return // the server is gone: nothing of this batch was acknowledged
				}
				if res.Accepted+res.Duplicates != len(batch) {
					t.Errorf("Ingest accepted %d + %d duplicates of %d", res.Accepted, res.Duplicates, len(batch))
					return
				}
				mu.Lock()
				for _, e := range batch {
					acked = append(acked, e.ID)
				}
				mu.Unlock()
			}
		}()
	}
	// Let acknowledgements accumulate, then kill mid-stream.
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 2000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.cmd.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatalf("no batch was acknowledged before the kill; stderr:\n%s", p.stderr)
	}

	p2 := startServe(t, addr, data)
	stored := allIDs(t, p2.client())
	lost := 0
	for _, id := range acked {
		if !stored[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged events lost after SIGKILL", lost, len(acked))
	}
	t.Logf("%d acknowledged events, all stored after SIGKILL and restart (%d stored in all)", len(acked), len(stored))
}

// TestReadmeCommands runs what the README tells a new user to run: serve,
// demo, query, from one directory, with no token given: the client commands
// find the admin token serve left in ./agenttrail-data. It also checks that
// a graceful stop (SIGTERM) exits cleanly.
func TestReadmeCommands(t *testing.T) {
	dir := t.TempDir()
	addr, data := freeAddr(t), filepath.Join(dir, "agenttrail-data")
	p := startServe(t, addr, data)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTTRAIL_TOKEN=") {
			env = append(env, kv)
		}
	}
	env = append(env, "AGENTTRAIL_SERVER="+p.url)

	demo := exec.Command(binary, "demo", "--events", "1200")
	demo.Env, demo.Dir = env, dir
	out, err := demo.CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrail demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "1200 accepted") {
		t.Fatalf("agenttrail demo output lacks %q:\n%s", "1200 accepted", out)
	}

	query := exec.Command(binary, "query", "--since", "8d", "--source", "llm-proxy", "--limit", "5")
	query.Env, query.Dir = env, dir
	out, err = query.Output()
	if err != nil {
		t.Fatalf("agenttrail query: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("agenttrail query printed %d lines, want a header and 5 rows:\n%s", len(lines), out)
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "llm-proxy") {
			t.Errorf("row %q is not an llm-proxy event", l)
		}
	}

	all := exec.Command(binary, "query", "--since", "8d", "--all", "--json", "--limit", "200")
	all.Env, all.Dir = env, dir
	out, err = all.Output()
	if err != nil {
		t.Fatalf("agenttrail query --all --json: %v", err)
	}
	// The trail audits itself: the reads above are events too, with the
	// admin token's name as actor, recorded without making the reads wait.
	var demoEvents int
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var e agenttrail.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("agenttrail query --json printed %q: %v", line, err)
		}
		if e.Source != agenttrail.SourceAudit {
			demoEvents++
		}
	}
	if demoEvents != 1200 {
		t.Fatalf("agenttrail query --all --json printed %d events besides audit events, want 1200", demoEvents)
	}
	audit := agenttrail.Filter{Source: []string{agenttrail.SourceAudit}, ActorID: []string{"admin"}, Action: []string{"events.query"}}
	for deadline := time.Now().Add(10 * time.Second); ; {
		page, err := p.client().Query(context.Background(), audit, client.QueryOptions{Limit: 10})
		if err != nil {
			t.Fatalf("Query audit events: %v", err)
		}
		if len(page.Events) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no events.query audit event of the admin token 10s after the queries")
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, p.stderr)
	}
}
