package capture_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/aws"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/capture/egress"
	"github.com/agenttrail/agenttrail/capture/kube"
	"github.com/agenttrail/agenttrail/capture/llm"
	"github.com/agenttrail/agenttrail/capture/mcp"
	"github.com/agenttrail/agenttrail/capture/sandbox"
	"github.com/agenttrail/agenttrail/capture/shell"
)

// githubToken is a made-up token in GitHub's format, split so that secret
// scanners do not flag this file.
var githubToken = "ghp_" + "R4nd0mT0k3nF0rT3st1ngAbCdEfGhIjKlMn"

// TestEverySurfaceRedactsByDefault drives each of the seven capture
// surfaces, built with no Redactor in its config, through an action that
// carries a secret, and wants every recorded event free of it and marked
// as redacted. Redaction is each surface's default, not an option.
func TestEverySurfaceRedactsByDefault(t *testing.T) {
	for _, s := range []struct {
		name   string
		secret string
		run    func(t *testing.T, rec *capturetest.Events)
	}{
		{"llm", githubToken, recordLLM},
		{"mcp", githubToken, recordMCP},
		{"egress", githubToken, recordEgress},
		{"shell", githubToken, recordShell},
		{"kube", githubToken, recordKube},
		{"aws", githubToken, recordAWS},
		{"sandbox", githubToken, recordSandbox},
	} {
		t.Run(s.name, func(t *testing.T) {
			rec := &capturetest.Events{}
			s.run(t, rec)
			events := rec.Wait(t, 1)
			for i, e := range events {
				b, err := json.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(b), s.secret) {
					t.Errorf("event %d holds the secret: %s", i, b)
				}
				if !strings.Contains(string(b), "[REDACTED:") {
					t.Errorf("event %d has no redaction marker, so the test did not record the secret: %s", i, b)
				}
			}
		})
	}
}

// recordLLM records a chat completion whose prompt holds the secret, with
// bodies recorded.
func recordLLM(t *testing.T, rec *capturetest.Events) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"done"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}`)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	p, err := llm.New(llm.Config{Upstream: u, Recorder: rec, RecordBodies: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"push with ` + githubToken + `"}]}`
	post(t, srv.URL+"/v1/chat/completions", "application/json", body)
}

// recordMCP records a tools/call whose arguments hold the secret.
func recordMCP(t *testing.T, rec *capturetest.Events) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}`)
	}))
	t.Cleanup(up.Close)
	p, err := mcp.NewHTTP(mcp.Config{Recorder: rec, Identities: &capture.Identities{Default: capture.Actor{ID: "agent"}}, Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	post(t, srv.URL, "application/json",
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"git_push","arguments":{"token":"x","remote":"`+githubToken+`"}}}`)
}

// recordEgress sends a request for a URL whose query holds the secret; the
// proxy refuses it (a loopback destination), and records it.
func recordEgress(t *testing.T, rec *capturetest.Events) {
	p, err := egress.New(egress.Config{Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { p.Close() })
	proxy, _ := url.Parse(srv.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	resp, err := c.Get("http://127.0.0.1:9/search?q=" + githubToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// recordShell runs a command whose argument and output hold the secret.
func recordShell(t *testing.T, rec *capturetest.Events) {
	if _, err := shell.Run(t.Context(), rec, capture.Actor{ID: "agent"}, exec.Command("echo", githubToken), shell.Options{}); err != nil {
		t.Fatal(err)
	}
}

// recordKube gets an object whose name is the secret.
func recordKube(t *testing.T, rec *capturetest.Events) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"kind":"ConfigMap","apiVersion":"v1"}`)
	}))
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	p, err := kube.New(kube.Config{Upstream: u, Cluster: "test", Recorder: rec, Identities: &capture.Identities{AllowUnmapped: true}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/api/v1/namespaces/default/configmaps/" + githubToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// recordAWS signs a request for an S3 object whose key holds the secret
// with an AWS access key id the proxy did not issue: it is refused, and
// recorded with the object's ARN redacted.
func recordAWS(t *testing.T, rec *capturetest.Events) {
	up := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(up.Close)
	u, _ := url.Parse(up.URL)
	creds := map[string]aws.Credential{"PXISSUED000000000001": {
		SecretAccessKey: "proxy-issued-secret",
		Actor:           capture.Actor{ID: "agent"},
		Upstream:        aws.UpstreamCredential{AccessKeyID: "PXUPSTREAM0000000001", SecretAccessKey: "upstream-secret"},
	}}
	p, err := aws.New(aws.Config{Credentials: creds, Upstream: u, Recorder: rec})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/reports/"+githubToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(nil)
	key := sdkaws.Credentials{AccessKeyID: "AKIA" + "IOSFODNN7EXAMPLE", SecretAccessKey: "not-a-key-the-proxy-knows"}
	if err := v4.NewSigner().SignHTTP(t.Context(), key, req, hex.EncodeToString(sum[:]), "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// recordSandbox writes a file whose name holds the secret into a watched
// directory.
func recordSandbox(t *testing.T, rec *capturetest.Events) {
	dir := t.TempDir()
	w, err := sandbox.NewWatcher(sandbox.WatchConfig{Dir: dir, Recorder: rec, Window: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	if err := os.WriteFile(filepath.Join(dir, githubToken+".txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func post(t *testing.T, url, contentType, body string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: status %d", url, resp.StatusCode)
	}
}
