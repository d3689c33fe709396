package main

import (
	"bytes"
	"context"
	byteorder "encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/client"
)

// The test binary plays a stdio MCP server when this variable is set, so
// `agenttrail proxy mcp -- <test binary>` wraps a real SDK server.
const envMCPServer = "AGENTTRAIL_TEST_MCP_SERVER"

func runTestMCPServer() int {
	s := sdk.NewServer(&sdk.Implementation{Name: "echo-server", Version: "1.0.0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "echoes msg"},
		func(_ context.Context, _ *sdk.CallToolRequest, in struct {
			Msg string `json:"msg"`
		}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Msg}}}, nil, nil
		})
	if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
		return 1
	}
	return 0
}

// mcpHost is one `agenttrail proxy mcp` an MCP host started over stdio,
// with the SDK client session talking through it.
type mcpHost struct {
	cmd     *exec.Cmd
	session *sdk.ClientSession
	stderr  *syncWriter
}

// startMCPProxy starts `agenttrail proxy mcp -- <test binary>` the way an
// MCP host does, with env (the default spool lives under XDG_CACHE_HOME).
func startMCPProxy(t *testing.T, p *process, env []string, extra ...string) *mcpHost {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"proxy", "mcp", "--server", p.url, "--token", p.token, "--heartbeat", "500ms"}, extra...)
	cmd := exec.Command(binary, append(args, "--", self)...)
	cmd.Env = append(append(os.Environ(), envMCPServer+"=1"), env...)
	h := &mcpHost{cmd: cmd, stderr: &syncWriter{w: &bytes.Buffer{}}}
	cmd.Stderr = h.stderr
	// The MCP server child shares the proxy's stderr; a killed proxy's
	// child must not hold Wait up.
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := sdk.NewClient(&sdk.Implementation{Name: "host", Version: "1"}, nil)
	if h.session, err = c.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil); err != nil {
		t.Fatalf("connect through agenttrail proxy mcp: %v\n%s", err, h.stderr)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the proxy and its server child, if still there
		h.session.Close()
	})
	return h
}

// stop sends sig to the proxy and waits until it has exited. The SDK's
// transport owns the process: it waits for it when the session closes.
func (h *mcpHost) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	h.session.Close()
}

func (h *mcpHost) call(t *testing.T, n int, tag string) {
	t.Helper()
	for i := range n {
		msg := fmt.Sprintf("%s-%d", tag, i)
		res, err := h.session.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": msg}})
		if err != nil || res.IsError {
			t.Fatalf("echo %s: %v %+v\n%s", msg, err, res, h.stderr)
		}
	}
}

// TestGapsExactAcrossProcesses runs what an MCP host does to the trail's
// gap detection with the real binary: two `proxy mcp` side by side on the
// default spool, two failed starts beside them (`watch` on a missing
// directory, `proxy egress` on a taken port), then one proxy stopped with
// SIGTERM and the other SIGKILLed. /v1/gaps must then report exactly the
// killed proxy's silence and nothing else: no sequence gap (nothing was
// lost), no heartbeat gap for the clean stop.
func TestGapsExactAcrossProcesses(t *testing.T) {
	p := startServe(t, freeAddr(t), t.TempDir())
	c := p.client()
	cache := t.TempDir()
	env := []string{"XDG_CACHE_HOME=" + cache, "HOME=" + cache}

	a := startMCPProxy(t, p, env)
	b := startMCPProxy(t, p, env)
	a.call(t, 5, "a")
	b.call(t, 7, "b")

	// Two starts that fail beside them must not touch their producers.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, args := range [][]string{
		{"watch", "--heartbeat", "500ms", "--server", p.url, "--token", p.token, t.TempDir() + "/missing"},
		{"proxy", "egress", "--heartbeat", "500ms", "--server", p.url, "--token", p.token, "--listen", taken.Addr().String()},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("agenttrail %s succeeded, want a failed start:\n%s", strings.Join(args[:2], " "), out)
		}
	}
	a.call(t, 3, "a2")
	b.call(t, 3, "b2")

	host, _ := os.Hostname()
	self := "proxy-mcp@" + host
	mcpCalls := agenttrail.Filter{Source: []string{agenttrail.SourceMCP}, Action: []string{"tools/call"}}
	waitStored(t, c, mcpCalls, 18)
	producers := map[string]bool{}
	for _, e := range eventsOf(t, c, mcpCalls) {
		producers[e.ProducerID] = true
	}
	if len(producers) != 2 {
		t.Fatalf("tools/call events come from producers %v, want one for each proxy", producers)
	}

	// b stops cleanly; a, which took the first spool slot, is killed once
	// all it recorded has arrived.
	b.stop(t, syscall.SIGTERM)
	stops := waitStored(t, c, agenttrail.Filter{Source: []string{agenttrail.SourceAgent}, Action: []string{agenttrail.ActionStop}}, 1)
	if stops[0].ActorID != self || stops[0].ActorType != agenttrail.ActorSystem {
		t.Errorf("stop event = %+v, want actor %s (system)", stops[0], self)
	}
	stopped := stops[0].ProducerID
	var killed string
	for id := range producers {
		if id != stopped {
			killed = id
		}
	}
	if !producers[stopped] || killed == "" {
		t.Fatalf("stop from producer %s, want one of %v", stopped, producers)
	}
	waitFor(t, "a heartbeat of the proxy to kill after its calls", func() bool {
		hb := eventsOf(t, c, agenttrail.Filter{ProducerID: []string{killed}, Action: []string{agenttrail.ActionHeartbeat}, Since: time.Now().Add(-time.Second)})
		return len(hb) > 0
	})
	a.stop(t, syscall.SIGKILL)
	time.Sleep(2 * time.Second) // four of a's heartbeat intervals
	// a took the first slot of the default spool; its counter there is the
	// last producer_seq it took, which the server may or may not have.
	slot := filepath.Join(cache, "agenttrail", "spool-mcp", "0")
	counter, err := os.ReadFile(filepath.Join(slot, "producer.seq"))
	if err != nil || len(counter) != 8 {
		t.Fatalf("producer.seq of the killed proxy: %x, %v", counter, err)
	}
	lastTaken := int64(byteorder.NativeEndian.Uint64(counter))
	var lastStored int64
	for _, e := range eventsOf(t, c, agenttrail.Filter{ProducerID: []string{killed}}) {
		lastStored = max(lastStored, e.ProducerSeq)
	}

	gaps, err := c.Gaps(context.Background(), agenttrail.Filter{Since: time.Now().Add(-time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(gaps.Sequences) != 0 {
		t.Errorf("/v1/gaps sequences = %+v, want none: nothing was lost", gaps.Sequences)
	}
	if len(gaps.Heartbeats) != 1 {
		t.Fatalf("/v1/gaps heartbeats = %+v, want exactly the killed proxy's open gap", gaps.Heartbeats)
	}
	g := gaps.Heartbeats[0]
	if g.ProducerID != killed || g.ActorID != self || !g.Open || g.Missed < 2 {
		t.Errorf("heartbeat gap = %+v, want an open gap of %s, producer %s, at least 2 missed", g, self, killed)
	}
	// The host starts the killed proxy again: it takes the first free slot,
	// the killed one's, and continues the killed producer, right after the last number the killed
	// run took (nothing was lost, so no sequence gap), and ends cleanly.
	again := startMCPProxy(t, p, env)
	again.call(t, 2, "again")
	again.session.Close() // the MCP session ends: a clean stop
	waitFor(t, "the restarted proxy's stop", func() bool {
		return len(eventsOf(t, c, agenttrail.Filter{ProducerID: []string{killed}, Action: []string{agenttrail.ActionStop}})) == 1
	})
	gaps, err = c.Gaps(context.Background(), agenttrail.Filter{Since: time.Now().Add(-time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// What the killed run lost is exactly what it had numbered (its counter
	// in the slot, read after the kill) and not delivered: heartbeats, a
	// few at most, taken in its last second.
	var wantSeq []agenttrail.SequenceGap
	if lastTaken > lastStored {
		wantSeq = append(wantSeq, agenttrail.SequenceGap{Org: agenttrail.DefaultOrg, ProducerID: killed, From: lastStored + 1, To: lastTaken})
	}
	if !slices.Equal(gaps.Sequences, wantSeq) || lastTaken-lastStored > 4 {
		t.Errorf("/v1/gaps sequences after the restart = %+v, want exactly %+v (the killed run took up to %d, the server had up to %d)", gaps.Sequences, wantSeq, lastTaken, lastStored)
	}
	if len(gaps.Heartbeats) != 1 || gaps.Heartbeats[0].ProducerID != killed || gaps.Heartbeats[0].Open || !gaps.Heartbeats[0].From.Equal(g.From) {
		t.Errorf("/v1/gaps heartbeats after the restart = %+v, want the killed producer's gap, closed by the restart", gaps.Heartbeats)
	}

	// The failed starts recorded nothing at all.
	for _, actor := range []string{"watch@" + host, "proxy-egress@" + host} {
		if evs := eventsOf(t, c, agenttrail.Filter{ActorID: []string{actor}}); len(evs) != 0 {
			t.Errorf("a failed start recorded %d events as %s: %+v", len(evs), actor, evs)
		}
	}
	// Each proxy's producer numbers from 1, the restarted one right after
	// the last number the killed run took.
	for id := range producers {
		evs := eventsOf(t, c, agenttrail.Filter{ProducerID: []string{id}})
		seen := map[int64]bool{}
		var top int64
		for _, e := range evs {
			seen[e.ProducerSeq] = true
			top = max(top, e.ProducerSeq)
		}
		for n := int64(1); n <= top; n++ {
			if !seen[n] && (id != killed || n <= lastStored || n > lastTaken) {
				t.Errorf("producer %s: producer_seq %d missing of 1-%d", id, n, top)
				break
			}
		}
	}
}

// waitStored waits until at least n events match f and returns them.
func waitStored(t *testing.T, c *client.Client, f agenttrail.Filter, n int) []agenttrail.Event {
	t.Helper()
	var evs []agenttrail.Event
	waitFor(t, fmt.Sprintf("%d events matching %+v", n, f), func() bool {
		evs = eventsOf(t, c, f)
		return len(evs) >= n
	})
	return evs
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 30s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}
