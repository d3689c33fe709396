package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDockerRun runs `docker run`, which waits on the container and
// attaches to it (a hijacked stream) before starting it: the output comes
// through, and only the create and start are recorded.
func TestDockerRun(t *testing.T) {
	eng := startEngine(t, "unix")
	host, _, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint()})
	out, errOut, code := docker(t, host, "", "run", "--name", "r1", "busybox", "echo")
	if code != 0 || out != "hello from busybox\n" {
		t.Fatalf("docker run: %q, exit %d: %s\nengine saw:\n%s", out, code, errOut, strings.Join(eng.seen(), "\n"))
	}
	events := mem.Wait(t, 2)
	if got := actions(events); len(got) != 2 || !strings.HasPrefix(got[0], "container.create ") || !strings.HasPrefix(got[1], "container.start ") {
		t.Errorf("events = %v, want a create and a start", got)
	}
	seen := strings.Join(eng.seen(), "\n")
	for _, want := range []string{"/attach", "/wait"} {
		if !strings.Contains(seen, want) {
			t.Errorf("the engine never saw %s:\n%s", want, seen)
		}
	}
}

// TestDockerCp records docker cp into and out of a container with the path
// in the container.
func TestDockerCp(t *testing.T) {
	eng := startEngine(t, "unix")
	host, _, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint()})
	work := t.TempDir()
	if err := os.WriteFile(filepath.Join(work, "in.txt"), []byte("payload"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := docker(t, host, "", "create", "--name", "web", "nginx"); code != 0 {
		t.Fatalf("docker create: %s", errOut)
	}
	if _, errOut, code := docker(t, host, "", "cp", filepath.Join(work, "in.txt"), "web:/srv/"); code != 0 {
		t.Fatalf("docker cp in: exit %d: %s", code, errOut)
	}
	if _, errOut, code := docker(t, host, "", "cp", "web:/etc/hostname", filepath.Join(work, "hostname")); code != 0 {
		t.Fatalf("docker cp out: exit %d: %s", code, errOut)
	}
	if b, err := os.ReadFile(filepath.Join(work, "hostname")); err != nil || string(b) != "contents of /etc/hostname\n" {
		t.Errorf("copied out %q, %v", b, err)
	}
	events := mem.Wait(t, 3)
	for i, want := range []struct{ action, path string }{{"container.file_write", "/srv/"}, {"container.file_read", "/etc/hostname"}} {
		e := events[i+1]
		if m := sandboxMeta(t, e); e.Action != want.action || m.Path != want.path || m.Image != "nginx" {
			t.Errorf("event %d = %s path %q image %q, want %s path %q image nginx", i+1, e.Action, m.Path, m.Image, want.action, want.path)
		}
	}
	eng.mu.Lock()
	defer eng.mu.Unlock()
	for _, c := range eng.containers {
		if c.copiedIn < 512 { // a tar archive is at least a header block
			t.Errorf("the engine received %d bytes of archive", c.copiedIn)
		}
	}
}

// TestDockerEventStream relays a stream as it flows: the first line of
// GET /events reaches the client while the stream is still open.
func TestDockerEventStream(t *testing.T) {
	eng := startEngine(t, "tcp")
	host, _, mem := startDockerProxy(t, "tcp", DockerConfig{Upstream: eng.endpoint()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+strings.TrimPrefix(host, "tcp://")+"/v1.47/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(resp.Body).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if !strings.Contains(s, `"Action":"start"`) {
			t.Errorf("first line of the stream = %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first event of an open stream did not come through")
	}
	cancel()
	if n := len(mem.All()); n != 0 {
		t.Errorf("recorded %d events for an event stream, want none", n)
	}
}

// TestDockerCloseEndsStreams: Close ends a hijacked exec stream that is
// still open and waits for it.
func TestDockerCloseEndsStreams(t *testing.T) {
	eng := startEngine(t, "unix")
	host, p, mem := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint()})
	sock := strings.TrimPrefix(host, "unix://")
	if _, errOut, code := docker(t, host, "", "run", "-d", "--name", "c1", "alpine"); code != 0 {
		t.Fatalf("docker run -d: %s", errOut)
	}
	c := unixHTTPClient(t, sock)
	resp, err := c.Post("http://docker/v1.47/containers/c1/exec", "application/json", strings.NewReader(`{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Id string }
	decodeJSON(t, resp, &created)

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"Detach":false,"Tty":false}`
	fmt.Fprintf(conn, "POST /v1.47/exec/%s/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", created.Id, len(body), body)
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, "101") {
		t.Fatalf("exec start answered %q, %v", status, err)
	}
	// The engine's cat waits for stdin that never ends; Close cuts it.
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a stream was open")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := br.ReadByte(); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the client's stream stayed open after Close")
			}
			break
		}
	}
	got := actions(mem.Wait(t, 4))
	if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "container.exec ") }) {
		t.Errorf("events = %v, want the exec start recorded", got)
	}
}
