package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRevokedTokenEndsItsLongRequests is finding 4 of the second security
// review: a revoked token's open /v1/stream kept delivering. The attacker
// holds a read token, opens a stream and an export it stops reading (so
// the server is blocked writing to it), and the owner revokes the token
// with the CLI. Both must end, and the token must open nothing new.
func TestRevokedTokenEndsItsLongRequests(t *testing.T) {
	data := t.TempDir()
	p := startServe(t, freeAddr(t), data)
	code, out, errOut := runCmd(t, "token", "create", "--role", "read", "--org", "*", "--name", "leaked", "--data", data)
	if code != 0 {
		t.Fatalf("token create = %d: %s", code, errOut)
	}
	fields := strings.Fields(out)
	token := fields[len(fields)-1]

	// Enough events that an export outgrows the socket buffers.
	var batch bytes.Buffer
	for i := range 10000 {
		fmt.Fprintf(&batch, `{"id":"e-%d","actor_type":"agent","actor_id":"agent-1","source":"shell","action":"shell_exec","result":"success","description":"%s"}`+"\n", i, strings.Repeat("x", 400))
	}
	for range 2 {
		if r := do(t, http.MethodPost, p.url+"/v1/events", p.token, batch.Bytes()); r.StatusCode != http.StatusOK {
			t.Fatalf("POST /v1/events = %d", r.StatusCode)
		}
		batch = *bytes.NewBuffer(bytes.ReplaceAll(batch.Bytes(), []byte(`"id":"e-`), []byte(`"id":"f-`)))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with the token: %v %v", path, resp, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	stream := open("/v1/stream")
	streamEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, stream.Body)
		streamEnded <- err
	}()
	export := open("/v1/export")
	br := bufio.NewReader(export.Body)
	if _, err := br.ReadString('\n'); err != nil { // the export is under way; now it is not read
		t.Fatalf("reading the export: %v", err)
	}

	if code, out, errOut := runCmd(t, "token", "revoke", "leaked", "--data", data); code != 0 {
		t.Fatalf("token revoke = %d: %s%s", code, out, errOut)
	}
	select {
	case <-streamEnded:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked token's stream is open 10s after the revocation")
	}
	exportEnded := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br) // what the socket holds, then the cut
		exportEnded <- err
	}()
	select {
	case err := <-exportEnded:
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("the revoked token's export ended with %v, want it cut short (unexpected EOF)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked token's export is open 10s after the revocation")
	}
	if r := do(t, http.MethodGet, p.url+"/v1/events", token, nil); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/events with the revoked token = %d, want 401", r.StatusCode)
	}
}

// do sends one request with token and returns the answer, its body read.
func do(t *testing.T, method, url, token string, body []byte) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp
}
