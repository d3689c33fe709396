package sandbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// runWatcher runs a Watcher for cfg (Recorder defaults to a memRecorder)
// and returns a stop function that ends it and waits until it has flushed.
func runWatcher(t testing.TB, cfg WatchConfig) (*memRecorder, func()) {
	t.Helper()
	mem := &memRecorder{}
	if cfg.Recorder == nil {
		cfg.Recorder = mem
	}
	if cfg.Logger == nil {
		cfg.Logger = discardLogger()
	}
	w, err := NewWatcher(cfg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	return mem, stop
}

// fileOp is the gist of a file event, for comparing.
type fileOp struct {
	action, path, newPath string
	dir                   bool
}

func (f fileOp) String() string {
	s := f.action + " " + f.path
	if f.newPath != "" {
		s += " → " + f.newPath
	}
	if f.dir {
		s += "/"
	}
	return s
}

func fileOps(t testing.TB, events []agenttrail.Event) []fileOp {
	t.Helper()
	var ops []fileOp
	for _, e := range events {
		m := sandboxMeta(t, e)
		ops = append(ops, fileOp{e.Action, e.ResourceID, m.NewPath, m.Dir})
	}
	return ops
}

// TestWatchCoalescesWrites writes a new file and an existing one 100 times
// each in about 200 ms: each is one event, let out by the window, with the
// writes counted.
func TestWatchCoalescesWrites(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.log")
	if err := os.WriteFile(old, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mem, stop := runWatcher(t, WatchConfig{Dir: dir, ContainerID: "c0ffee", Actor: capture.Actor{ID: "agent-1"}})

	fresh, err := os.Create(filepath.Join(dir, "new.log"))
	if err != nil {
		t.Fatal(err)
	}
	existing, err := os.OpenFile(old, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 100 {
		fmt.Fprintf(fresh, "line %d\n", i)
		fmt.Fprintf(existing, "line %d\n", i)
		time.Sleep(2 * time.Millisecond)
	}
	fresh.Close()
	existing.Close()
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Logf("the writes took %v, longer than the window: the machine is slow", d)
	}
	events := mem.Wait(t, 2) // let out by the window, not by stopping
	stop()
	events = mem.All()
	if len(events) != 2 {
		t.Fatalf("recorded %d events, want 2: %v", len(events), fileOps(t, events))
	}
	slices.SortFunc(events, func(a, b agenttrail.Event) int { return strings.Compare(a.ResourceID, b.ResourceID) })
	for i, want := range []fileOp{{OpFileCreate, "new.log", "", false}, {OpFileWrite, "old.log", "", false}} {
		e, m := events[i], sandboxMeta(t, events[i])
		if got := fileOps(t, events[i:i+1])[0]; got != want {
			t.Errorf("event %d = %v, want %v", i, got, want)
		}
		// The kernel merges identical notifications nobody has read yet,
		// so the count is of notifications: at least one, at most a write
		// each.
		if m.Writes < 1 || m.Writes > 100 {
			t.Errorf("%s: writes = %d, want 1 to 100", e.ResourceID, m.Writes)
		}
		if e.Source != agenttrail.SourceSandbox || e.ResourceType != "file" || e.Result != agenttrail.ResultSuccess ||
			e.ActorID != "agent-1" || m.ContainerID != "c0ffee" || m.Op != e.Action || m.Path != e.ResourceID {
			t.Errorf("event %d = %+v, metadata %+v", i, e, m)
		}
		if e.DurationMS <= 0 && m.Writes > 1 {
			t.Errorf("%s: duration %v ms, want the span of the burst", e.ResourceID, e.DurationMS)
		}
	}
}

// TestWatchOps creates, renames and removes files and directories in a
// recursively watched tree: each operation is one event, new and renamed
// directories are watched at their new paths, and a rename out of the tree
// says so.
func TestWatchOps(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	mem, stop := runWatcher(t, WatchConfig{Dir: dir, Recursive: true, Window: 100 * time.Millisecond, Name: "box-1"})
	p := func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each phase waits for the last one's events: what happens inside a
	// new directory before its watch is in place is seen only by the scan
	// of what is still there.
	must(os.WriteFile(p("a.txt"), []byte("a"), 0o644))
	must(os.Mkdir(p("sub"), 0o755))
	must(os.MkdirAll(p("x/y/z"), 0o755))
	must(os.WriteFile(p("x/y/z/f"), []byte("f"), 0o644))
	mem.Wait(t, 6)
	must(os.WriteFile(p("sub/b.txt"), []byte("b"), 0o644))
	must(os.Rename(p("a.txt"), p("sub/c.txt")))
	must(os.Remove(p("sub/b.txt")))
	must(os.Rename(p("sub"), p("sub2")))
	mem.Wait(t, 10) // the directory's rename is recorded once its new path is watched
	must(os.WriteFile(p("sub2/d.txt"), []byte("d"), 0o644))
	must(os.Rename(p("sub2/c.txt"), filepath.Join(outside, "c.txt")))
	must(os.Remove(p("x/y/z/f")))

	want := []fileOp{
		{OpFileCreate, "a.txt", "", false},
		{OpFileCreate, "sub", "", true},
		{OpFileCreate, "sub/b.txt", "", false},
		{OpFileRename, "a.txt", "sub/c.txt", false},
		{OpFileDelete, "sub/b.txt", "", false},
		{OpFileCreate, "x", "", true},
		{OpFileCreate, "x/y", "", true},
		{OpFileCreate, "x/y/z", "", true},
		{OpFileCreate, "x/y/z/f", "", false},
		{OpFileRename, "sub", "sub2", true},
		{OpFileCreate, "sub2/d.txt", "", false},
		{OpFileRename, "sub2/c.txt", "", false},
		{OpFileDelete, "x/y/z/f", "", false},
	}
	mem.Wait(t, len(want))
	stop()
	got := fileOps(t, mem.All())
	// Creates wait out their window, so only the order per path is fixed.
	for _, path := range []string{"a.txt", "sub/b.txt", "x/y/z/f"} {
		var seq []string
		for _, op := range got {
			if op.path == path {
				seq = append(seq, op.action)
			}
		}
		if len(seq) != 2 || seq[0] != OpFileCreate {
			t.Errorf("events for %s: %v, want the create first", path, seq)
		}
	}
	sortOps := func(ops []fileOp) []fileOp {
		ops = slices.Clone(ops)
		slices.SortFunc(ops, func(a, b fileOp) int { return strings.Compare(a.String(), b.String()) })
		return ops
	}
	if g, w := sortOps(got), sortOps(want); !slices.Equal(g, w) {
		t.Errorf("events:\n got %v\nwant %v", g, w)
	}
	for _, e := range mem.All() {
		m := sandboxMeta(t, e)
		if m.Name != "box-1" || e.ActorID != "anonymous" {
			t.Errorf("%s %s: sandbox name %q, actor %q", e.Action, e.ResourceID, m.Name, e.ActorID)
		}
		if e.Action == OpFileRename && m.NewPath == "" && e.Description == "" {
			t.Errorf("rename out of the tree has no description")
		}
	}
}

// TestWatchNotRecursive records only the watched directory's own entries.
func TestWatchNotRecursive(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	mem, stop := runWatcher(t, WatchConfig{Dir: dir, Window: 50 * time.Millisecond})
	os.WriteFile(filepath.Join(dir, "deep", "hidden.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "top.txt"), []byte("x"), 0o644)
	os.Remove(filepath.Join(dir, "top.txt"))
	mem.Wait(t, 2)
	stop()
	got := fileOps(t, mem.All())
	want := []fileOp{{OpFileCreate, "top.txt", "", false}, {OpFileDelete, "top.txt", "", false}}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

// TestWatchRedactsPaths scrubs secrets that end up in file names.
func TestWatchRedactsPaths(t *testing.T) {
	dir := t.TempDir()
	mem, stop := runWatcher(t, WatchConfig{Dir: dir, Window: 50 * time.Millisecond})
	const secret = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
	if err := os.WriteFile(filepath.Join(dir, "token-"+secret), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mem.Wait(t, 1)
	stop()
	e := mem.All()[0]
	if strings.Contains(string(e.Metadata), secret) || strings.Contains(e.ResourceID, secret) {
		t.Errorf("event holds the secret: %s %s", e.ResourceID, e.Metadata)
	}
}

func TestNewWatcherErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	for _, cfg := range []WatchConfig{
		{Dir: t.TempDir()},
		{Dir: file, Recorder: &memRecorder{}},
		{Dir: filepath.Join(t.TempDir(), "missing"), Recorder: &memRecorder{}},
	} {
		if w, err := NewWatcher(cfg); err == nil {
			w.Close()
			t.Errorf("NewWatcher(%+v) succeeded", cfg)
		}
	}
}

// TestWatchRecordsLostEvents: when the kernel's event queue overflows
// (fsnotify reports ErrEventOverflow), the trail records the gap as an
// error event instead of staying silent. Overflowing a real queue takes
// creating some 16k files, too slow here; the report is sent as fsnotify
// sends it.
func TestWatchRecordsLostEvents(t *testing.T) {
	mem := &memRecorder{}
	w, err := NewWatcher(WatchConfig{Dir: t.TempDir(), Recorder: mem, Name: "box", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	w.fs.Errors <- fsnotify.ErrEventOverflow
	e := mem.Wait(t, 1)[0]
	cancel()
	<-done
	if m := sandboxMeta(t, e); e.Action != "file_events_lost" || e.Result != agenttrail.ResultError || e.Description == "" || m.Name != "box" {
		t.Errorf("lost events recorded as %s %s %q (sandbox %q), want file_events_lost error with a reason", e.Action, e.Result, e.Description, m.Name)
	}
}

// TestWatchRemoveTree removes a watched tree at once: each file and
// directory is one delete, and the watches go with them.
func TestWatchRemoveTree(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"a/1", "a/b/2"} {
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(f)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mem := &memRecorder{}
	w, err := NewWatcher(WatchConfig{Dir: dir, Recursive: true, Recorder: mem, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	mem.Wait(t, 4)
	cancel()
	<-done
	got := fileOps(t, mem.All())
	slices.SortFunc(got, func(a, b fileOp) int { return strings.Compare(a.path, b.path) })
	want := []fileOp{
		{OpFileDelete, "a", "", true},
		{OpFileDelete, "a/1", "", false},
		{OpFileDelete, "a/b", "", true},
		{OpFileDelete, "a/b/2", "", false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if len(w.dirs) != 1 || !w.dirs[w.dir] {
		t.Errorf("watched directories after the removal: %v, want only the root", w.dirs)
	}
}

// TestWatchRootSizeMode checks what a file event says beyond the path: the
// sandbox's absolute root, the size after the operation, and a chmod with
// the new mode — but not a touch, which changes attributes and not the mode.
func TestWatchRootSizeMode(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(existing, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mem, stop := runWatcher(t, WatchConfig{Dir: dir, Window: 20 * time.Millisecond})
	if err := os.WriteFile(filepath.Join(dir, "out.txt"), []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	mem.Wait(t, 1)
	if err := os.Chmod(existing, 0o755); err != nil {
		t.Fatal(err)
	}
	mem.Wait(t, 2)
	now := time.Now()
	if err := os.Chtimes(existing, now, now); err != nil { // a touch: no mode change
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "out.txt")); err != nil {
		t.Fatal(err)
	}
	mem.Wait(t, 3)
	stop()
	events := mem.All()
	want := []fileOp{{OpFileCreate, "out.txt", "", false}, {OpFileChmod, "run.sh", "", false}, {OpFileDelete, "out.txt", "", false}}
	if got := fileOps(t, events); !slices.Equal(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for i, e := range events {
		m := sandboxMeta(t, e)
		if m.Root != dir {
			t.Errorf("event %d root = %q, want %q", i, m.Root, dir)
		}
		if !strings.HasSuffix(e.Description, " in "+dir) {
			t.Errorf("event %d description = %q, want the root named", i, e.Description)
		}
	}
	if m := sandboxMeta(t, events[0]); m.Size == nil || *m.Size != 5 {
		t.Errorf("create size = %v, want 5", m.Size)
	}
	if m := sandboxMeta(t, events[1]); m.Mode != "0755" || m.Size == nil || *m.Size != int64(len("#!/bin/sh\n")) {
		t.Errorf("chmod mode %q, size %v; want 0755 and the file's size", m.Mode, m.Size)
	}
	if m := sandboxMeta(t, events[2]); m.Size != nil {
		t.Errorf("delete size = %v, want none", *m.Size)
	}
}
