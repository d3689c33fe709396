package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/client"
)

// runCmd runs the agenttrail command in-process and returns its exit code
// and output.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestTokenCommands(t *testing.T) {
	data := t.TempDir()
	code, out, errOut := runCmd(t, "token", "create", "--role", "read", "--org", "acme", "--name", "ci-reader", "--data", data)
	if code != 0 {
		t.Fatalf("token create = %d: %s", code, errOut)
	}
	fields := strings.Fields(out)
	token := fields[len(fields)-1]
	if !strings.HasPrefix(token, "at_") || len(token) != 84 {
		t.Fatalf("token create printed %q; want the token as the last word", out)
	}
	secret := token[len("at_")+16+1:]
	fi, err := os.Stat(filepath.Join(data, "tokens.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(filepath.Join(data, "tokens.json")); bytes.Contains(b, []byte(secret)) {
		t.Errorf("tokens.json holds the secret")
	}
	if code, _, _ := runCmd(t, "token", "create", "--role", "read", "--org", "acme", "--name", "ci-reader", "--data", data); code == 0 {
		t.Errorf("token create with a taken name succeeded")
	}
	if code, _, _ := runCmd(t, "token", "create", "--role", "owner", "--org", "acme", "--data", data); code == 0 {
		t.Errorf("token create --role owner succeeded")
	}
	if code, _, _ := runCmd(t, "token", "create", "--org", "acme", "--data", data); code != 2 {
		t.Errorf("token create without --role = %d, want 2", code)
	}

	code, out, _ = runCmd(t, "token", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "ci-reader") || !strings.Contains(out, "acme") || !strings.Contains(out, "read") {
		t.Errorf("token list = %d:\n%s\nwant the ci-reader token", code, out)
	}
	if strings.Contains(out, secret) || strings.Contains(out, token) {
		t.Errorf("token list prints the secret:\n%s", out)
	}

	if code, out, errOut := runCmd(t, "token", "revoke", "ci-reader", "--data", data); code != 0 || !strings.Contains(out, "revoked") {
		t.Fatalf("token revoke = %d: %s%s", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "token", "revoke", "ci-reader", "--data", data); code != 1 {
		t.Errorf("revoking a revoked token = %d, want 1", code)
	}
	if _, out, _ := runCmd(t, "token", "list", "--data", data); strings.Contains(out, "ci-reader") {
		t.Errorf("token list shows a revoked token:\n%s", out)
	}
	if _, out, _ := runCmd(t, "token", "list", "--all", "--data", data); !strings.Contains(out, "ci-reader") || !strings.Contains(out, "revoked") {
		t.Errorf("token list --all lacks the revoked token:\n%s", out)
	}
}

// TestServeRefusesPlaintextOnTheNetwork checks the transport guard: a
// listen address other hosts can reach needs TLS or an explicit opt-out.
// It fails before listening.
func TestServeRefusesPlaintextOnTheNetwork(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		code, _, errOut := runCmd(t, "serve", "--addr", addr, "--data", t.TempDir())
		if code != 1 || !strings.Contains(errOut, "--allow-plaintext") {
			t.Errorf("serve --addr %s = %d, %q; want an error naming --allow-plaintext", addr, code, errOut)
		}
	}
	if code, _, errOut := runCmd(t, "serve", "--tls-cert", "x.pem", "--data", t.TempDir()); code != 1 || !strings.Contains(errOut, "--tls-key") {
		t.Errorf("serve --tls-cert without --tls-key = %d, %q", code, errOut)
	}
}

// TestTokenLifecycleAgainstServe creates and revokes tokens with the real
// binary while `agenttrail serve` runs: the server picks them up, the
// first admin token is private, and the log says where it is, not what.
func TestTokenLifecycleAgainstServe(t *testing.T) {
	addr, data := freeAddr(t), t.TempDir()
	p := startServe(t, addr, data)
	fi, err := os.Stat(filepath.Join(data, "admin.token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	sw := p.cmd.Stderr.(*syncWriter)
	sw.mu.Lock()
	log := sw.w.String()
	sw.mu.Unlock()
	if strings.Contains(log, p.token) || !strings.Contains(log, "admin.token") {
		t.Errorf("serve log shows the admin token or not where it is:\n%s", log)
	}

	run := func(args ...string) (string, error) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "AGENTTRAIL_TOKEN=", "AGENTTRAIL_SERVER="+p.url)
		cmd.Dir = t.TempDir() // no ./agenttrail-data here: tokens come from flags
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("token", "create", "--role", "read", "--org", "default", "--name", "reader", "--data", data)
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, out)
	}
	fields := strings.Fields(out)
	token := fields[len(fields)-1]
	if out, err := run("query", "--since", "1h", "--token", token); err != nil {
		t.Fatalf("query with a token created while serve runs: %v\n%s", err, out)
	}
	if out, err := run("query", "--since", "1h"); err == nil {
		t.Errorf("query without a token succeeded:\n%s", out)
	}
	if out, err := run("query", "--since", "1h", "--data", data); err != nil {
		t.Errorf("query with --data (admin.token): %v\n%s", err, out)
	}
	if out, err := run("token", "revoke", "reader", "--data", data); err != nil {
		t.Fatalf("token revoke: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := run("query", "--since", "1h", "--token", token)
		if err != nil && strings.Contains(out, "401") || strings.Contains(strings.ToLower(out), "unauthorized") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query with a revoked token still answers 10s later: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServeRedactFlag runs the server serve's flags describe and records
// an event through it: what is stored is redacted with the patterns of
// --redact besides the built-in ones and the agenttrail token pattern.
func TestServeRedactFlag(t *testing.T) {
	patterns := filepath.Join(t.TempDir(), "redact.json")
	if err := os.WriteFile(patterns, []byte(`[{"kind": "ticket", "regexp": "TCK-[0-9]{6}"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := &Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }}
	cfg, err := serveFlags([]string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--redact", patterns}, env)
	if err != nil {
		t.Fatal(err)
	}
	m, err := app.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- m.Run(ctx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	token, err := os.ReadFile(filepath.Join(cfg.DataDir, app.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(m.URL(), client.WithToken(strings.TrimSpace(string(token))))
	defer c.CloseIdleConnections()
	in := "ticket TCK-123456 by " + strings.TrimSpace(string(token)) + " with ghp_" + "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5"
	e := agenttrail.Event{ID: "redact-1", ActorType: agenttrail.ActorUser, ActorID: "u", Source: "shell", Action: "x", Result: agenttrail.ResultSuccess, Description: in}
	if _, err := c.Ingest(t.Context(), []agenttrail.Event{e}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Store().Get(t.Context(), "redact-1", agenttrail.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := "ticket [REDACTED:ticket] by [REDACTED:agenttrail_token] with [REDACTED:github_token]"
	if got.Description != want {
		t.Errorf("stored description %q, want %q", got.Description, want)
	}
}
