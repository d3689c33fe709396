package sandbox

import (
	"archive/tar"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// fakeEngine answers the few Docker Engine API calls the docker CLI makes
// for create, start, stop, kill, rm and exec, at API version 1.47. It plays
// the upstream behind the proxy; the client in front is the real CLI.
type fakeEngine struct {
	srv  *httptest.Server
	sock string // the unix socket it listens on, or "" for TCP

	mu         sync.Mutex
	containers map[string]*fakeContainer // by full id
	execs      map[string]*fakeExec
	requests   []string // "METHOD PATH" of every request, in order
	actorSeen  int      // requests that arrived still naming an actor
	lastHeader http.Header
}

type fakeContainer struct {
	id, name, image string
	running         bool
	started, exited chan struct{} // closed when first started, and when its attached output is done
	copiedIn        int64         // bytes of the archives put into it
}

type fakeExec struct {
	id, container string
	cmd           []string
	stdin, tty    bool
	exitCode      int
	ran           bool
}

const fakeAPIVersion = "1.47"

// startEngine serves a fakeEngine on a unix socket in a short temporary
// directory (socket paths are limited to about 100 bytes), or on TCP
// loopback when network is "tcp".
func startEngine(t testing.TB, network string) *fakeEngine {
	t.Helper()
	e := &fakeEngine{containers: map[string]*fakeContainer{}, execs: map[string]*fakeExec{}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	if network == "unix" {
		e.sock = filepath.Join(shortTempDir(t), "engine.sock")
		l, err := net.Listen("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		e.srv.Listener.Close()
		e.srv.Listener = l
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// endpoint is where the engine listens.
func (e *fakeEngine) endpoint() Endpoint {
	if e.sock != "" {
		return Endpoint{Network: "unix", Address: e.sock}
	}
	return Endpoint{Network: "tcp", Address: e.srv.Listener.Addr().String()}
}

// shortTempDir returns a new directory under the system temp dir with a
// short path, removed when the test ends.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sbx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (e *fakeEngine) seen() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.requests...)
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func notFound(w http.ResponseWriter, what, ref string) {
	writeJSON(w, http.StatusNotFound, map[string]string{"message": fmt.Sprintf("No such %s: %s", what, ref)})
}

// lookup finds a container by full id, unambiguous id prefix or name.
func (e *fakeEngine) lookup(ref string) *fakeContainer {
	if c, ok := e.containers[ref]; ok {
		return c
	}
	for _, c := range e.containers {
		if c.name == strings.TrimPrefix(ref, "/") || strings.HasPrefix(c.id, ref) {
			return c
		}
	}
	return nil
}

func (e *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", fakeAPIVersion)
	w.Header().Set("Ostype", "linux")
	e.mu.Lock()
	e.requests = append(e.requests, r.Method+" "+r.URL.Path)
	e.lastHeader = r.Header.Clone()
	if r.Header.Get(capture.HeaderActorID) != "" {
		e.actorSeen++
	}
	e.mu.Unlock()
	path := stripVersion(r.URL.Path)
	seg := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case path == "/_ping":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "OK")
	case path == "/version":
		writeJSON(w, 200, map[string]string{"Version": "27.5.0", "ApiVersion": fakeAPIVersion, "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64"})
	case path == "/containers/create" && r.Method == http.MethodPost:
		e.create(w, r)
	case path == "/events":
		e.events(w, r)
	case seg[0] == "containers" && len(seg) >= 2:
		e.container(w, r, seg)
	case seg[0] == "exec" && len(seg) == 3:
		e.exec(w, r, seg[1], seg[2])
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "page not found"})
	}
}

func (e *fakeEngine) create(w http.ResponseWriter, r *http.Request) {
	var body struct{ Image string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, 400, map[string]string{"message": err.Error()})
		return
	}
	if body.Image == "missing" {
		notFound(w, "image", body.Image)
		return
	}
	c := &fakeContainer{id: newID(), name: r.URL.Query().Get("name"), image: body.Image,
		started: make(chan struct{}), exited: make(chan struct{})}
	e.mu.Lock()
	e.containers[c.id] = c
	e.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"Id": c.id, "Warnings": []string{}})
}

func (e *fakeEngine) container(w http.ResponseWriter, r *http.Request, seg []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.lookup(seg[1])
	if c == nil {
		notFound(w, "container", seg[1])
		return
	}
	if len(seg) == 2 && r.Method == http.MethodDelete {
		delete(e.containers, c.id)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if len(seg) != 3 {
		notFound(w, "route", r.URL.Path)
		return
	}
	switch seg[2] {
	case "json":
		writeJSON(w, 200, map[string]any{
			"Id": c.id, "Name": "/" + c.name, "Image": "sha256:" + newID(),
			"State":  map[string]any{"Status": map[bool]string{true: "running", false: "created"}[c.running], "Running": c.running},
			"Config": map[string]any{"Image": c.image, "Tty": false, "AttachStdout": true},
		})
	case "start", "restart", "unpause":
		if !c.running && seg[2] == "start" {
			select {
			case <-c.started:
			default:
				close(c.started)
			}
		}
		c.running = true
		w.WriteHeader(http.StatusNoContent)
	case "attach":
		e.mu.Unlock()
		defer e.mu.Lock()
		e.attach(w, r, c)
	case "wait":
		e.mu.Unlock()
		defer e.mu.Lock()
		// The Engine sends the headers at once; the CLI starts the
		// container only when they came.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-c.exited:
			io.WriteString(w, `{"StatusCode":0}`+"\n")
		case <-r.Context().Done():
		}
	case "archive":
		e.archive(w, r, c)
	case "stop", "kill", "pause":
		c.running = false
		w.WriteHeader(http.StatusNoContent)
	case "exec":
		var body struct {
			Cmd         []string
			AttachStdin bool
			Tty         bool
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, 400, map[string]string{"message": err.Error()})
			return
		}
		if !c.running {
			writeJSON(w, http.StatusConflict, map[string]string{"message": "container " + c.id + " is not running"})
			return
		}
		x := &fakeExec{id: newID(), container: c.id, cmd: body.Cmd, stdin: body.AttachStdin, tty: body.Tty}
		e.execs[x.id] = x
		writeJSON(w, http.StatusCreated, map[string]string{"Id": x.id})
	default:
		notFound(w, "route", r.URL.Path)
	}
}

func (e *fakeEngine) exec(w http.ResponseWriter, r *http.Request, id, verb string) {
	e.mu.Lock()
	x := e.execs[id]
	e.mu.Unlock()
	if x == nil {
		notFound(w, "exec instance", id)
		return
	}
	switch verb {
	case "json":
		e.mu.Lock()
		defer e.mu.Unlock()
		writeJSON(w, 200, map[string]any{"ID": x.id, "ContainerID": x.container, "Running": false, "ExitCode": x.exitCode, "Pid": 42,
			"ProcessConfig": map[string]any{"entrypoint": x.cmd[0], "arguments": x.cmd[1:], "tty": x.tty}})
	case "start":
		var body struct{ Detach bool }
		json.NewDecoder(r.Body).Decode(&body)
		e.mu.Lock()
		x.ran = true
		e.mu.Unlock()
		if body.Detach {
			w.WriteHeader(http.StatusOK)
			return
		}
		e.stream(w, r, x)
	default:
		notFound(w, "route", r.URL.Path)
	}
}

// stream plays an attached exec: it takes over the connection, reads stdin
// to its end when the exec attached it, and writes "ran: CMD" and what it
// read as one stdout frame of the multiplexed stream.
func (e *fakeEngine) stream(w http.ResponseWriter, r *http.Request, x *fakeExec) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	upgrade := r.Header.Get("Upgrade") != ""
	if upgrade {
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	} else {
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n")
	}
	buf.Flush()
	out := "ran: " + strings.Join(x.cmd, " ") + "\n"
	if x.stdin {
		in, _ := io.ReadAll(buf.Reader)
		out += string(in)
	}
	writeFrame(conn, out)
}

// attach plays `docker run`'s attach: once the container starts it writes
// "hello from CMD" as one stdout frame and ends, and the container exits.
func (e *fakeEngine) attach(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	buf.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	buf.Flush()
	select {
	case <-c.started:
	case <-time.After(10 * time.Second):
		return
	}
	writeFrame(conn, "hello from "+c.image+"\n")
	close(c.exited)
}

func writeFrame(w io.Writer, out string) {
	frame := make([]byte, 8, 8+len(out))
	frame[0] = 1 // stdout
	binary.BigEndian.PutUint32(frame[4:], uint32(len(out)))
	w.Write(append(frame, out...))
}

// archive plays docker cp: every path is a directory to stat and to put
// into, and reading a path gives a tar of one file named after it.
func (e *fakeEngine) archive(w http.ResponseWriter, r *http.Request, c *fakeContainer) {
	p := r.URL.Query().Get("path")
	stat := func(name string, size int64, mode fs.FileMode) {
		b, _ := json.Marshal(map[string]any{"name": name, "size": size, "mode": mode, "mtime": time.Now().Format(time.RFC3339), "linkTarget": ""})
		w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	}
	switch r.Method {
	case http.MethodHead:
		stat(filepath.Base(p), 4096, fs.ModeDir|0o755)
	case http.MethodPut:
		n, _ := io.Copy(io.Discard, r.Body)
		c.copiedIn += n
	case http.MethodGet:
		body := "contents of " + p + "\n"
		stat(filepath.Base(p), int64(len(body)), 0o644)
		w.Header().Set("Content-Type", "application/x-tar")
		tw := tar.NewWriter(w)
		tw.WriteHeader(&tar.Header{Name: filepath.Base(p), Mode: 0o644, Size: int64(len(body)), ModTime: time.Now()})
		io.WriteString(tw, body)
		tw.Close()
	}
}

// events streams one event line at once, then holds the stream open until
// the client leaves.
func (e *fakeEngine) events(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"Type":"container","Action":"start"}`+"\n")
	http.NewResponseController(w).Flush()
	<-r.Context().Done()
}
