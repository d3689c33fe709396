package mcp

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// observeLines feeds lines to a stdio observer: ">" lines come from the
// client, "<" lines from the server.
func observeLines(t *testing.T, cfg Config, lines ...string) []agenttrail.Event {
	t.Helper()
	mem := cfg.Recorder.(*memRecorder)
	newFeed(t, cfg)(lines...)
	return mem.All()
}

// newFeed returns a function that feeds lines, as observeLines does, to
// one stdio observer session, for tests that feed it more than once.
func newFeed(t *testing.T, cfg Config) func(lines ...string) {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	o := newObserver(cfg, "stdio")
	s := o.session("")
	agent := cfg.Identities.Resolve("", nil)
	return func(lines ...string) {
		for _, l := range lines {
			o.observe(s, strings.HasPrefix(l, "<"), []byte(l[1:]), agent, 0, capture.Span{})
		}
	}
}

func TestObserverBatchesAndIDTypes(t *testing.T) {
	rec := &memRecorder{}
	events := observeLines(t, testConfig(rec),
		`>[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},`+
			`{"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"b"}},`+
			`{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`<[{"jsonrpc":"2.0","id":"1","result":{"content":[{"type":"text","text":"B"}]}},`+
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"boom"}}]`,
	)
	if len(events) != 2 {
		t.Fatalf("recorded %d events, want 2:\n%s", len(events), dump(events))
	}
	a, b := rec.call(t, "tools/call", "a"), rec.call(t, "tools/call", "b")
	if a.Result != agenttrail.ResultError || mcpMeta(t, a).Error.Message != "boom" {
		t.Errorf("a (id 1) = %s %s, want the error answered to the number 1", a.Result, a.Metadata)
	}
	if b.Result != agenttrail.ResultSuccess || mcpMeta(t, b).ContentPreview != "B" {
		t.Errorf(`b (id "1") = %s %s, want the result answered to the string "1"`, b.Result, b.Metadata)
	}
}

func TestObserverSkips(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"ping", []string{`>{"jsonrpc":"2.0","id":7,"method":"ping"}`, `<{"jsonrpc":"2.0","id":7,"result":{}}`}},
		{"server ping", []string{`<{"jsonrpc":"2.0","id":7,"method":"ping"}`, `>{"jsonrpc":"2.0","id":7,"result":{}}`}},
		{"declined discover", []string{
			`>{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}`,
			`<{"jsonrpc":"2.0","id":1,"error":{"code":-32004,"message":"unsupported protocol version"}}`}},
		{"notification", []string{`>{"jsonrpc":"2.0","method":"notifications/initialized"}`}},
		{"response without request", []string{`<{"jsonrpc":"2.0","id":3,"result":{}}`}},
		{"not JSON", []string{`>hello`, `<{"jsonrpc":`}},
	} {
		rec := &memRecorder{}
		if events := observeLines(t, testConfig(rec), tc.lines...); len(events) != 0 {
			t.Errorf("%s: recorded %d events, want none:\n%s", tc.name, len(events), dump(events))
		}
	}
}

func TestObserverTimeoutAndReusedID(t *testing.T) {
	rec := &memRecorder{}
	cfg := testConfig(rec)
	cfg.Timeout = 30 * time.Millisecond
	feed := newFeed(t, cfg)
	feed(
		`>{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"first"}}`,
		`>{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"second"}}`,
	)
	first := rec.call(t, "tools/call", "first")
	if first.Result != agenttrail.ResultError || !strings.Contains(first.Description, "reused") {
		t.Errorf("first = %s %q, want an error for the reused id", first.Result, first.Description)
	}
	second := rec.call(t, "tools/call", "second")
	if second.Result != agenttrail.ResultError || !strings.Contains(second.Description, "no response within") {
		t.Errorf("second = %s %q, want a timeout error", second.Result, second.Description)
	}
	if second.DurationMS < 30 {
		t.Errorf("timed out call lasted %v ms, want at least the 30 ms timeout", second.DurationMS)
	}
	// A third call, sent once the second has timed out, times out in turn.
	// The first call's timer, had it not been stopped when its id was
	// reused, was due before the second's, and would have recorded the
	// first call again well before the third times out.
	feed(`>{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"third"}}`)
	rec.call(t, "tools/call", "third")
	if n := len(rec.All()); n != 3 {
		t.Errorf("recorded %d events, want 3:\n%s", n, dump(rec.All()))
	}
}

func TestObserverLargeArgumentsAndPreview(t *testing.T) {
	rec := &memRecorder{}
	cfg := testConfig(rec)
	cfg.ArgumentsBytes, cfg.PreviewBytes = 1024, 100
	secret := "ghp_" + strings.Repeat("A1b2C3d4", 5)
	// The secret sits where plain truncation would cut it in two.
	body := strings.Repeat("x", 57) + " " + secret + strings.Repeat("y", 5000)
	args, _ := json.Marshal(map[string]any{"content": body, "path": "/tmp/a", "n": 3})
	text := strings.Repeat("é", 47) + secret + strings.Repeat("z", 5000)
	res, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}})
	observeLines(t, cfg,
		`>{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write","arguments":`+string(args)+`}}`,
		`<{"jsonrpc":"2.0","id":1,"result":`+string(res)+`}`,
	)
	e := rec.call(t, "tools/call", "write")
	md := mcpMeta(t, e)
	if strings.Contains(string(e.Metadata), "ghp_") || !strings.Contains(string(e.Metadata), "[REDAC") {
		t.Errorf("a fragment of the secret was recorded: %s", e.Metadata)
	}
	if !md.ArgumentsTruncated || len(md.Arguments) > cfg.ArgumentsBytes {
		t.Errorf("arguments = %d bytes, truncated %v; want ≤ %d, truncated", len(md.Arguments), md.ArgumentsTruncated, cfg.ArgumentsBytes)
	}
	var got map[string]any
	if err := json.Unmarshal(md.Arguments, &got); err != nil || got["path"] != "/tmp/a" || got["n"] != 3.0 {
		t.Errorf("shortened arguments = %s (%v), want the small values kept", md.Arguments, err)
	}
	if len(md.ContentPreview) > cfg.PreviewBytes+len("…") || !strings.HasPrefix(md.ContentPreview, "éé") {
		t.Errorf("preview = %d bytes %q, want at most %d", len(md.ContentPreview), md.ContentPreview, cfg.PreviewBytes)
	}
	checkValid(t, e)
}

func TestSSEObserver(t *testing.T) {
	stream := ": comment\r\n" +
		"event: message\r\nid: 1\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n" +
		"data:{\"b\":2}\n\n" +
		"retry: 100\n\n" +
		"data: {\"unterminated\":3}\n"
	var got []string
	// Byte by byte: events split across reads must be reassembled.
	o := newSSEObserver(io.NopCloser(oneByteReader{strings.NewReader(stream)}), 1<<20, func(b []byte) { got = append(got, string(b)) })
	relayed, err := io.ReadAll(o)
	if err != nil || string(relayed) != stream {
		t.Fatalf("relayed %q, %v; want the stream unchanged", relayed, err)
	}
	want := []string{"{\"a\":\n1}", "{\"b\":2}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events = %q, want %q", got, want)
	}

	got = nil
	big := "data: " + strings.Repeat("x", 100) + "\n\ndata: ok\n\n"
	io.ReadAll(newSSEObserver(io.NopCloser(strings.NewReader(big)), 50, func(b []byte) { got = append(got, string(b)) }))
	if len(got) != 1 || got[0] != "ok" {
		t.Errorf("events over the limit: got %q, want only \"ok\"", got)
	}
}

type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}
