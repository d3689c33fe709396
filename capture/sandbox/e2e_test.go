package sandbox

import (
	"cmp"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// sandboxEvents selects the events of this surface in the store, and of
// the resources named, if any.
func sandboxEvents(resources ...string) agenttrail.Filter {
	return agenttrail.Filter{Source: []string{agenttrail.SourceSandbox}, ResourceID: resources}
}

// TestDockerEndToEnd runs the docker CLI through the proxy with the SDK's
// Recorder in front of a real server on SQLite. The server is down for the
// first calls: the containers are managed regardless, and every call is
// stored once the server is back, secrets redacted.
func TestDockerEndToEnd(t *testing.T) {
	addr := capturetest.FreeAddr(t)
	rec := capturetest.Recorder(t, "http://"+addr)
	eng := startEngine(t, "unix")
	ids := &capture.Identities{Default: capture.Actor{ID: "agent-docker", Project: "sandboxes"}}
	host, _, _ := startDockerProxy(t, "unix", DockerConfig{Upstream: eng.endpoint(), Recorder: rec, Identities: ids})
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := docker(t, host, stdin, args...)
		if code != 0 {
			t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	const secret = "sk-proj-Zq9xY8wV7uT6sR5qP4oN3mL2"

	id := strings.TrimSpace(run("", "create", "--name", "job", "python:3.13", "python", "-m", "http.server"))
	run("", "start", "job")
	srv := servertest.StartAt(t, addr, t.TempDir())
	if out := run("", "exec", "job", "env", "OPENAI_API_KEY="+secret, "python", "train.py"); !strings.HasPrefix(out, "ran: env OPENAI_API_KEY=") {
		t.Errorf("docker exec output = %q", out)
	}
	run("", "kill", "job")
	run("", "rm", "job")
	if _, _, code := docker(t, host, "", "start", "job"); code == 0 {
		t.Error("docker start of a removed container succeeded")
	}

	wants := []struct {
		action string
		status int
		result agenttrail.Result
	}{
		{"container.create", 201, agenttrail.ResultSuccess},
		{"container.start", 204, agenttrail.ResultSuccess},
		{"container.exec_create", 201, agenttrail.ResultSuccess},
		{"container.exec", 101, agenttrail.ResultSuccess},
		{"container.kill", 204, agenttrail.ResultSuccess},
		{"container.remove", 204, agenttrail.ResultSuccess},
		{"container.start", 404, agenttrail.ResultFailure},
	}
	// Events spooled while the server was down may be stored after later
	// ones: the producer's sequence is the order they happened in.
	events := capturetest.WaitEvents(t, srv.Store, sandboxEvents(), len(wants))
	slices.SortFunc(events, func(a, b agenttrail.Event) int { return cmp.Compare(a.ProducerSeq, b.ProducerSeq) })
	for i, e := range events {
		w := wants[i]
		if e.Action != w.action || e.StatusCode != w.status || e.Result != w.result {
			t.Errorf("event %d = %s %d %s, want %s %d %s", i, e.Action, e.StatusCode, e.Result, w.action, w.status, w.result)
		}
		if e.ActorID != "agent-docker" || e.Project != "sandboxes" || e.ProducerID == "" || e.ResourceType != "container" {
			t.Errorf("event %d: actor %q, project %q, producer %q, resource type %q", i, e.ActorID, e.Project, e.ProducerID, e.ResourceType)
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), secret) {
			t.Errorf("event %d holds the secret: %s", i, b)
		}
	}
	for i, e := range events[:6] {
		if m := sandboxMeta(t, e); e.ResourceID != id || m.Image != "python:3.13" {
			t.Errorf("event %d: resource %q, image %q; want %s, python:3.13", i, e.ResourceID, m.Image, id)
		}
	}
	if m := sandboxMeta(t, events[3]); !strings.HasPrefix(m.Command, "env OPENAI_API_KEY=[REDACTED") || !strings.HasSuffix(m.Command, "python train.py") {
		t.Errorf("exec command = %q, want the key redacted", m.Command)
	}
	if m := sandboxMeta(t, events[4]); m.Signal != "SIGKILL" {
		t.Errorf("kill signal = %q, want SIGKILL", m.Signal)
	}
	if e := events[6]; e.ResourceID != "job" || e.Description != "No such container: job" {
		t.Errorf("failed start: resource %q, description %q", e.ResourceID, e.Description)
	}
	// Filtering by the container finds its whole history.
	capturetest.WaitEvents(t, srv.Store, sandboxEvents(id), 6)
}

// TestWatchEndToEnd records file operations through the SDK's Recorder
// into a real server: a burst of 100 writes in about 200 ms is stored as
// one event.
func TestWatchEndToEnd(t *testing.T) {
	srv := servertest.Start(t)
	rec := capturetest.Recorder(t, srv.URL)
	dir, outside := t.TempDir(), t.TempDir()
	_, stop := runWatcher(t, WatchConfig{
		Dir: dir, Recursive: true, ContainerID: "0123456789ab", Recorder: rec,
		Actor: capture.Actor{ID: "agent-files", Type: agenttrail.ActorAgent},
	})
	f, err := os.Create(filepath.Join(dir, "out.csv"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		f.WriteString(strings.Repeat("x", i) + "\n")
		time.Sleep(2 * time.Millisecond)
	}
	f.Close()
	first := capturetest.WaitEvents(t, srv.Store, sandboxEvents(), 1)[0]
	if err := os.Rename(filepath.Join(dir, "out.csv"), filepath.Join(dir, "final.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "final.csv"), filepath.Join(outside, "final.csv")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tmp"), nil, 0o644)
	os.Remove(filepath.Join(dir, "tmp"))
	events := capturetest.WaitEvents(t, srv.Store, sandboxEvents(), 5)
	stop()

	if m := sandboxMeta(t, first); first.Action != OpFileCreate || first.ResourceID != "out.csv" || m.Writes < 1 || m.Writes > 100 {
		t.Errorf("the burst was stored as %s %s with %d writes, want one file_create of out.csv", first.Action, first.ResourceID, m.Writes)
	}
	want := []fileOp{
		{OpFileCreate, "out.csv", "", false},
		{OpFileRename, "out.csv", "final.csv", false},
		{OpFileCreate, "tmp", "", false},
		{OpFileDelete, "tmp", "", false},
		{OpFileRename, "final.csv", "", false},
	}
	// The rename out of the tree waits for a create that never comes, so
	// it may be stored before or after tmp's events.
	got := fileOps(t, events)
	byName := func(a, b fileOp) int { return strings.Compare(a.String(), b.String()) }
	slices.SortFunc(got[1:], byName)
	slices.SortFunc(want[1:], byName)
	if !slices.Equal(got, want) {
		t.Errorf("stored events = %v, want %v", got, want)
	}
	for _, e := range events {
		if m := sandboxMeta(t, e); e.ActorID != "agent-files" || m.ContainerID != "0123456789ab" || e.ResourceType != "file" {
			t.Errorf("%s %s: actor %q, container %q, resource type %q", e.Action, e.ResourceID, e.ActorID, m.ContainerID, e.ResourceType)
		}
	}
}
