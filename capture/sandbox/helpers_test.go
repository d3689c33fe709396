package sandbox

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// memRecorder keeps the events it is given, for tests to inspect.
type memRecorder = capturetest.Events

func actions(events []agenttrail.Event) []string {
	var s []string
	for _, e := range events {
		s = append(s, e.Action+" "+e.ResourceID)
	}
	return s
}

// sandboxMeta decodes metadata.sandbox of e.
func sandboxMeta(t testing.TB, e agenttrail.Event) Sandbox {
	t.Helper()
	var m struct {
		Sandbox *Sandbox `json:"sandbox"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil || m.Sandbox == nil {
		t.Fatalf("metadata %s: no sandbox object (%v)", e.Metadata, err)
	}
	return *m.Sandbox
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startDockerProxy serves a DockerProxy for cfg on a unix socket (network
// "unix") or TCP loopback and returns its DOCKER_HOST value.
// cfg.Recorder defaults to a new memRecorder, returned too.
func startDockerProxy(t testing.TB, network string, cfg DockerConfig) (string, *DockerProxy, *memRecorder) {
	t.Helper()
	var mem *memRecorder
	if cfg.Recorder == nil {
		mem = &memRecorder{}
		cfg.Recorder = mem
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	p, err := NewDockerProxy(cfg)
	if err != nil {
		t.Fatalf("NewDockerProxy: %v", err)
	}
	var l net.Listener
	var host string
	if network == "unix" {
		sock := filepath.Join(shortTempDir(t), "proxy.sock")
		l, err = net.Listen("unix", sock)
		host = "unix://" + sock
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			host = "tcp://" + l.Addr().String()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: p, ConnContext: p.ConnContext, ErrorLog: slog.NewLogLogger(discardLogger().Handler(), slog.LevelError)}
	go srv.Serve(l)
	t.Cleanup(func() {
		srv.Close()
		p.Close()
	})
	return host, p, mem
}

// docker runs the docker CLI against host with stdin and returns its
// stdout, stderr and exit code. Its configuration directory is empty, so no
// context, credential helper or plugin of this machine applies.
func docker(t *testing.T, host, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "DOCKER_HOST=" + host,
		"DOCKER_CONFIG=" + filepath.Join(home, ".docker"), "DOCKER_CLI_HINTS=false",
	}
	return capturetest.Command(t, env, stdin, "docker", args...)
}

// unixHTTPClient returns an http.Client that sends every request to the
// unix socket sock.
func unixHTTPClient(t testing.TB, sock string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// decodeJSON decodes resp's body into v and closes it.
func decodeJSON(t testing.TB, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", resp.Request.URL.Path, err)
	}
}
