package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/agenttrail/agenttrail"
)

// tap keeps a copy of the bytes that cross one end of a pipe.
type tap struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (t *tap) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b.Bytes())
}

type tapReader struct {
	io.ReadCloser
	t *tap
}

func (r tapReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.t.mu.Lock()
	r.t.b.Write(p[:n])
	r.t.mu.Unlock()
	return n, err
}

type tapWriter struct {
	io.WriteCloser
	t *tap
}

func (w tapWriter) Write(p []byte) (int, error) {
	w.t.mu.Lock()
	w.t.b.Write(p)
	w.t.mu.Unlock()
	return w.WriteCloser.Write(p)
}

// stdioRig is an SDK client and an in-process SDK server with Stdio.Relay
// between them, and a copy of the bytes at both ends of both directions.
type stdioRig struct {
	cs                                           *sdk.ClientSession
	clientSent, clientGot, serverGot, serverSent tap
	relayDone, serverDone                        chan error
}

func startStdioRig(t *testing.T, p *Stdio, opts *sdk.ClientSessionOptions) *stdioRig {
	t.Helper()
	ctx := context.Background()
	c2pR, c2pW := io.Pipe()
	p2cR, p2cW := io.Pipe()
	p2sR, p2sW := io.Pipe()
	s2pR, s2pW := io.Pipe()
	rig := &stdioRig{relayDone: make(chan error, 1), serverDone: make(chan error, 1)}
	go func() { rig.relayDone <- p.Relay(c2pR, p2cW, p2sW, s2pR) }()
	go func() {
		rig.serverDone <- newTestServer().Run(ctx, &sdk.IOTransport{
			Reader: tapReader{p2sR, &rig.serverGot}, Writer: tapWriter{s2pW, &rig.serverSent}})
	}()
	cs, err := newTestClient("accept").Connect(ctx, &sdk.IOTransport{
		Reader: tapReader{p2cR, &rig.clientGot}, Writer: tapWriter{c2pW, &rig.clientSent}}, opts)
	if err != nil {
		t.Fatalf("Connect through the proxy: %v", err)
	}
	rig.cs = cs
	return rig
}

// close ends the session the way an MCP client does (closing the server's
// input) and waits for the server and the relay to finish.
func (rig *stdioRig) close(t *testing.T) {
	t.Helper()
	if err := rig.cs.Close(); err != nil {
		t.Logf("client Close: %v", err)
	}
	for name, ch := range map[string]chan error{"server": rig.serverDone, "relay": rig.relayDone} {
		select {
		case err := <-ch:
			if err != nil && name == "relay" {
				t.Errorf("Relay = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not finish after the client closed", name)
		}
	}
}

func TestStdioRelayRecordsEachCall(t *testing.T) {
	rec := &memRecorder{}
	p, err := NewStdio(testConfig(rec))
	if err != nil {
		t.Fatal(err)
	}
	rig := startStdioRig(t, p, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	ctx := context.Background()
	if _, err := rig.cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("ListTools: %v", err)
	}
	call := func(name string, args any) (*sdk.CallToolResult, error) {
		return rig.cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
	}
	if res, err := call("echo", map[string]any{"msg": "hi"}); err != nil || res.IsError {
		t.Fatalf("echo = %v, %v", res, err)
	}
	if res, err := call("fail", map[string]any{}); err != nil || !res.IsError {
		t.Fatalf("fail = %v, %v; want isError", res, err)
	}
	if _, err := call("nope", map[string]any{}); err == nil {
		t.Fatal("calling an unknown tool succeeded")
	}
	if res, err := call("ask", map[string]any{"question": "deploy?"}); err != nil || res.IsError {
		t.Fatalf("ask = %v, %v", res, err)
	}
	if _, err := rig.cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "file:///readme.md"}); err != nil {
		t.Fatalf("ReadResource: %v", err)
	}
	if _, err := rig.cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "greet", Arguments: map[string]string{"who": "bob"}}); err != nil {
		t.Fatalf("GetPrompt: %v", err)
	}
	rig.close(t)

	if got, want := rig.serverGot.bytes(), rig.clientSent.bytes(); !bytes.Equal(got, want) {
		t.Errorf("the server received\n%s\nthe client sent\n%s", got, want)
	}
	if got, want := rig.clientGot.bytes(), rig.serverSent.bytes(); !bytes.Equal(got, want) {
		t.Errorf("the client received\n%s\nthe server sent\n%s", got, want)
	}

	init := rec.call(t, "initialize", "")
	md := mcpMeta(t, init)
	if md.Client == nil || md.Client.Name != "test-agent" || md.Client.Version != "0.9.1" {
		t.Errorf("initialize client = %+v, want test-agent 0.9.1", md.Client)
	}
	if md.Server != "test-server" || md.Transport != "stdio" || init.Result != agenttrail.ResultSuccess {
		t.Errorf("initialize server, transport, result = %q, %q, %q", md.Server, md.Transport, init.Result)
	}
	if init.ActorID != "agent-test" || init.ActorType != agenttrail.ActorAgent || init.Org != "acme" || init.Project != "payments" {
		t.Errorf("initialize actor = %s %s %s/%s, want agent agent-test acme/payments", init.ActorType, init.ActorID, init.Org, init.Project)
	}
	if init.ResourceType != ResourceServer || init.ResourceID != "test-server" {
		t.Errorf("initialize resource = %s/%s, want mcp_server/test-server", init.ResourceType, init.ResourceID)
	}
	if e := rec.call(t, "tools/list", ""); e.Result != agenttrail.ResultSuccess {
		t.Errorf("tools/list result = %s", e.Result)
	}

	echo := rec.call(t, "tools/call", "echo")
	md = mcpMeta(t, echo)
	if echo.Result != agenttrail.ResultSuccess || echo.ResourceType != ResourceTool || md.Tool != "echo" {
		t.Errorf("echo = %s %s/%s tool %q", echo.Result, echo.ResourceType, echo.ResourceID, md.Tool)
	}
	if md.IsError == nil || *md.IsError || md.ContentPreview != "echo: hi" || string(md.Arguments) != `{"msg":"hi"}` {
		t.Errorf("echo metadata = %s", echo.Metadata)
	}
	if md.Server != "test-server" || md.Client == nil || echo.DurationMS < 0 {
		t.Errorf("echo server %q client %v duration %v", md.Server, md.Client, echo.DurationMS)
	}

	fail := rec.call(t, "tools/call", "fail")
	if md := mcpMeta(t, fail); fail.Result != agenttrail.ResultFailure || md.IsError == nil || !*md.IsError || md.ContentPreview != "disk full" {
		t.Errorf("fail = %s %s", fail.Result, fail.Metadata)
	}
	nope := rec.call(t, "tools/call", "nope")
	if md := mcpMeta(t, nope); nope.Result != agenttrail.ResultError || md.Error == nil || md.Error.Code != -32602 || !strings.Contains(md.Error.Message, "nope") {
		t.Errorf("nope = %s %s", nope.Result, nope.Metadata)
	}

	elicit := rec.call(t, "elicitation/create", "")
	md = mcpMeta(t, elicit)
	if elicit.ActorType != agenttrail.ActorSystem || elicit.ActorID != "mcp-server:test-server" || elicit.Org != "acme" {
		t.Errorf("elicitation actor = %s %s org %q", elicit.ActorType, elicit.ActorID, elicit.Org)
	}
	if md.Direction != DirectionServerToClient || md.Agent != "agent-test" || elicit.Result != agenttrail.ResultSuccess {
		t.Errorf("elicitation = %s %s", elicit.Result, elicit.Metadata)
	}
	if ask := rec.call(t, "tools/call", "ask"); mcpMeta(t, ask).ContentPreview != "user chose accept" {
		t.Errorf("ask = %s", ask.Metadata)
	}

	read := rec.call(t, "resources/read", "file:///readme.md")
	if read.ResourceType != ResourceResource || mcpMeta(t, read).ContentPreview != "# Read me" {
		t.Errorf("resources/read = %s/%s %s", read.ResourceType, read.ResourceID, read.Metadata)
	}
	prompt := rec.call(t, "prompts/get", "greet")
	if md := mcpMeta(t, prompt); prompt.ResourceType != ResourcePrompt || md.ContentPreview != "hello bob" || string(md.Arguments) != `{"who":"bob"}` {
		t.Errorf("prompts/get = %s/%s %s", prompt.ResourceType, prompt.ResourceID, prompt.Metadata)
	}

	all := rec.All()
	for _, e := range all {
		checkValid(t, e)
		if e.Source != agenttrail.SourceMCP {
			t.Errorf("event %s source = %q", e.Action, e.Source)
		}
		if strings.HasPrefix(e.Action, "notifications/") || e.Action == "ping" {
			t.Errorf("recorded %s, which is not a request", e.Action)
		}
	}
	// initialize, tools/list, 4 tools/call, elicitation, resources/read, prompts/get
	if len(all) != 9 {
		t.Errorf("recorded %d events, want 9:\n%s", len(all), dump(all))
	}
}

// The SDK's default handshake is the SEP-2575 server/discover; client and
// server identify themselves in _meta instead of initialize.
func TestStdioDiscoverHandshake(t *testing.T) {
	rec := &memRecorder{}
	p, err := NewStdio(testConfig(rec))
	if err != nil {
		t.Fatal(err)
	}
	rig := startStdioRig(t, p, nil)
	if _, err := rig.cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "x"}}); err != nil {
		t.Fatalf("CallTool: %v", err)
	}
	rig.close(t)
	for _, method := range []string{"server/discover", "tools/call"} {
		e := rec.call(t, method, "")
		md := mcpMeta(t, e)
		if md.Server != "test-server" || md.Client == nil || md.Client.Name != "test-agent" || e.Result != agenttrail.ResultSuccess {
			t.Errorf("%s = %s server %q client %+v", method, e.Result, md.Server, md.Client)
		}
	}
}

func TestStdioCancelledRequest(t *testing.T) {
	rec := &memRecorder{}
	p, err := NewStdio(testConfig(rec))
	if err != nil {
		t.Fatal(err)
	}
	rig := startStdioRig(t, p, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := rig.cs.CallTool(ctx, &sdk.CallToolParams{Name: "slow", Arguments: map[string]any{}}); err == nil {
		t.Fatal("slow call returned before being cancelled")
	}
	e := rec.call(t, "tools/call", "slow")
	if md := mcpMeta(t, e); e.Result != agenttrail.ResultError || !md.Cancelled {
		t.Errorf("cancelled call = %s %s, want error, cancelled", e.Result, e.Metadata)
	}
	rig.close(t)
}

// serverCommand runs this test binary as the MCP server, the way the proxy
// runs any server command.
func serverCommand(stderr io.Writer) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envTestServer+"=1")
	cmd.Stderr = stderr
	return cmd
}

type runResult struct {
	code int
	err  error
}

// startRun runs Stdio.Run on a server subprocess and connects an SDK client
// to it.
func startRun(t *testing.T, p *Stdio, stderr io.Writer, sigs chan os.Signal) (*sdk.ClientSession, chan runResult) {
	t.Helper()
	c2pR, c2pW := io.Pipe()
	p2cR, p2cW := io.Pipe()
	t.Cleanup(func() { c2pW.Close(); p2cR.Close() })
	done := make(chan runResult, 1)
	go func() {
		code, err := p.Run(context.Background(), serverCommand(stderr), c2pR, p2cW, sigs)
		p2cW.Close()
		done <- runResult{code, err}
	}()
	cs, err := newTestClient("accept").Connect(context.Background(), &sdk.IOTransport{Reader: p2cR, Writer: c2pW}, nil)
	if err != nil {
		t.Fatalf("Connect through Run: %v", err)
	}
	return cs, done
}

func waitRun(t *testing.T, done chan runResult) runResult {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v", r.err)
		}
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
		return runResult{}
	}
}

func TestStdioRunSubprocess(t *testing.T) {
	t.Run("client closes", func(t *testing.T) {
		rec := &memRecorder{}
		p, _ := NewStdio(testConfig(rec))
		var stderr syncBuffer
		cs, done := startRun(t, p, &stderr, nil)
		if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"msg": "sub"}}); err != nil {
			t.Fatalf("CallTool: %v", err)
		}
		cs.Close()
		if r := waitRun(t, done); r.code != 0 {
			t.Errorf("exit code = %d, want 0", r.code)
		}
		if !strings.Contains(stderr.String(), "test server: starting") {
			t.Errorf("the server's stderr was not passed through: %q", stderr.String())
		}
		if e := rec.call(t, "tools/call", "echo"); mcpMeta(t, e).ContentPreview != "echo: sub" {
			t.Errorf("echo = %s", e.Metadata)
		}
	})
	t.Run("server dies mid-call", func(t *testing.T) {
		rec := &memRecorder{}
		p, _ := NewStdio(testConfig(rec))
		cs, done := startRun(t, p, io.Discard, nil)
		defer cs.Close()
		if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 3}}); err == nil {
			t.Error("a call that killed the server succeeded")
		}
		if r := waitRun(t, done); r.code != 3 {
			t.Errorf("exit code = %d, want the server's 3", r.code)
		}
		e := rec.call(t, "tools/call", "crash")
		if e.Result != agenttrail.ResultError || !strings.Contains(e.Description, "server") {
			t.Errorf("crash = %s %q, want error naming the server", e.Result, e.Description)
		}
	})
	t.Run("signal forwarded", func(t *testing.T) {
		rec := &memRecorder{}
		p, _ := NewStdio(testConfig(rec))
		sigs := make(chan os.Signal, 1)
		cs, done := startRun(t, p, io.Discard, sigs)
		defer cs.Close()
		sigs <- syscall.SIGTERM
		if r := waitRun(t, done); r.code != 128+int(syscall.SIGTERM) {
			t.Errorf("exit code = %d, want %d (killed by SIGTERM)", r.code, 128+int(syscall.SIGTERM))
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A line that is not JSON is relayed all the same.
func TestStdioRelaysWhatItCannotParse(t *testing.T) {
	rec := &memRecorder{}
	p, _ := NewStdio(testConfig(rec))
	in := "not json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}\nno newline at end"
	toServer := &syncBuffer{}
	var toClient bytes.Buffer
	// The response is written once the request has been relayed.
	pr, pw := io.Pipe()
	go func() {
		for !strings.Contains(toServer.String(), "no newline") {
			time.Sleep(time.Millisecond)
		}
		io.WriteString(pw, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`+"\n")
		pw.Close()
	}()
	if err := p.Relay(strings.NewReader(in), &toClient, nopCloser{toServer}, pr); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	if got := toServer.String(); got != in {
		t.Errorf("server got %q, want %q", got, in)
	}
	if e := rec.call(t, "tools/call", "x"); e.Result != agenttrail.ResultSuccess {
		t.Errorf("tools/call x = %s", e.Result)
	}
	var m map[string]any
	if err := json.Unmarshal(toClient.Bytes(), &m); err != nil {
		t.Errorf("client got %q: %v", toClient.String(), err)
	}
}

// TestStdioRelayClientHungUp: a server's late answer (to a call the client
// cancelled) written after the client closed its end ends the session
// cleanly; it is not a relay failure.
func TestStdioRelayClientHungUp(t *testing.T) {
	rec := &memRecorder{}
	p, _ := NewStdio(testConfig(rec))
	toClientR, toClientW := io.Pipe()
	toClientR.Close()
	late := `{"jsonrpc":"2.0","id":1,"error":{"code":-32800,"message":"cancelled"}}` + "\n"
	if err := p.Relay(strings.NewReader(""), toClientW, nopCloser{io.Discard}, strings.NewReader(late)); err != nil {
		t.Fatalf("Relay after the client hung up = %v, want nil", err)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
