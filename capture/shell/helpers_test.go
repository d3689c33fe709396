package shell

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// memRecorder keeps the events it is given, for tests to inspect.
type memRecorder struct{ capturetest.Events }

// only returns the one event recorded, failing the test otherwise.
func (m *memRecorder) only(t *testing.T) agenttrail.Event {
	t.Helper()
	ev := m.All()
	if len(ev) != 1 {
		t.Fatalf("%d events recorded, want 1", len(ev))
	}
	return ev[0]
}

// shellMeta decodes metadata.shell of e.
func shellMeta(t *testing.T, e agenttrail.Event) Metadata {
	t.Helper()
	var m struct {
		Shell *Metadata `json:"shell"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil || m.Shell == nil {
		t.Fatalf("metadata %s: no shell object (%v)", e.Metadata, err)
	}
	return *m.Shell
}

// script writes an executable shell script named name into a new
// directory and returns its path.
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
