package servertest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Exec runs `agenttrail serve` as a process of its own on a free loopback
// port with a fresh data directory, as it runs in use, for benchmarks
// whose figures must not include the server's garbage collection and
// commits in the measuring process. The binary is built into the test's
// temporary directory (from the build cache after the first time). Store
// and Registry are nil: the store belongs to the other process. The server
// is stopped with SIGTERM, as a service manager stops it, when the test
// ends.
func Exec(t testing.TB) *Server {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "agenttrail")
	if out, err := exec.Command(goTool, "build", "-o", bin, "github.com/agenttrail/agenttrail/cmd/agenttrail").CombinedOutput(); err != nil {
		t.Fatalf("servertest: go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	if err := addToken(dataDir); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("servertest: listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "serve", "--data", dataDir, "--addr", addr, "--rate-limit", "0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("servertest: start server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{URL: "http://" + addr, Addr: addr, DataDir: dataDir, Token: Token}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("servertest: server exited with %v:\n%s", err, logs.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("servertest: server did not stop in 30s:\n%s", logs.String())
		}
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("servertest: server exited with %v:\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("servertest: server not healthy on %s in 30s:\n%s", addr, logs.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}
