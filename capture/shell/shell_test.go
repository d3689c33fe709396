package shell

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

var agent = capture.Actor{ID: "agent-7", Name: "build agent", Org: "acme", Project: "ci"}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		argv   []string
		code   int
		result agenttrail.Result
	}{
		{[]string{"true"}, 0, agenttrail.ResultSuccess},
		{[]string{"false"}, 1, agenttrail.ResultFailure},
		{[]string{"sh", "-c", "exit 42"}, 42, agenttrail.ResultFailure},
	}
	for _, tt := range tests {
		rec := &memRecorder{}
		res, err := Run(context.Background(), rec, agent, exec.Command(tt.argv[0], tt.argv[1:]...), Options{})
		if err != nil {
			t.Fatalf("Run(%v): %v", tt.argv, err)
		}
		e := rec.only(t)
		m := shellMeta(t, e)
		if res.ExitCode != tt.code || m.ExitCode != tt.code || e.Result != tt.result {
			t.Errorf("Run(%v) = exit %d (event %d, %s), want %d, %s", tt.argv, res.ExitCode, m.ExitCode, e.Result, tt.code, tt.result)
		}
		if e.Source != agenttrail.SourceShell || e.Action != ActionExec || e.ResourceType != ResourceCommand || e.ResourceID != commandLine(tt.argv) {
			t.Errorf("event source %q, action %q, resource %q %q", e.Source, e.Action, e.ResourceType, e.ResourceID)
		}
		if e.ActorID != "agent-7" || e.ActorName != "build agent" || e.Org != "acme" || e.Project != "ci" {
			t.Errorf("actor = %q %q %q %q", e.ActorID, e.ActorName, e.Org, e.Project)
		}
		wd, _ := os.Getwd()
		if m.Command != tt.argv[0] || len(m.Args) != len(tt.argv)-1 || m.Cwd != wd {
			t.Errorf("metadata = %+v", m)
		}
		if e.DurationMS <= 0 || e.Time.IsZero() || res.Event.ResourceID != e.ResourceID {
			t.Errorf("duration %v, time %v, result event %q", e.DurationMS, e.Time, res.Event.ResourceID)
		}
		e.ID = agenttrail.NewID(time.Now()) // the SDK assigns it when it sends
		if err := e.Validate(time.Now()); err != nil {
			t.Errorf("recorded event is not valid: %v", err)
		}
	}
}

func TestRunCapturesAndPassesThroughOutput(t *testing.T) {
	rec := &memRecorder{}
	var out, errOut syncBuffer
	cmd := exec.Command("sh", "-c", "echo out; echo err >&2; exit 3")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	dir := t.TempDir()
	cmd.Dir = dir
	res, err := Run(context.Background(), rec, agent, cmd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errOut.String() != "err\n" {
		t.Errorf("passed through %q, %q; want out, err", out.String(), errOut.String())
	}
	e := rec.only(t)
	m := shellMeta(t, e)
	if m.Stdout != "out\n" || m.Stderr != "err\n" || m.Truncated || m.ExitCode != 3 || m.Cwd != dir || !m.Captured {
		t.Errorf("metadata = %+v", m)
	}
	if d := e.Description; !regexp.MustCompile(`^exit 3 after \d+(\.\d)? m?s: sh -c 'echo out; echo err >&2; exit 3'$`).MatchString(d) {
		t.Errorf("description = %q, want exit 3 after the duration and the command", d)
	}
	if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
		t.Errorf("result output %q, %q", res.Stdout, res.Stderr)
	}
}

func TestRunCapsOutput(t *testing.T) {
	rec := &memRecorder{}
	var out syncBuffer
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 100 ]; do printf 0123456789; i=$((i+1)); done")
	cmd.Stdout = &out
	res, err := Run(context.Background(), rec, agent, cmd, Options{MaxOutput: 64})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.String()) != 1000 {
		t.Errorf("passed through %d bytes, want all 1000: the cap is for the record only", len(out.String()))
	}
	m := shellMeta(t, rec.only(t))
	if len(m.Stdout) != 64 || !m.Truncated || m.StdoutBytes != 1000 || !res.Truncated {
		t.Errorf("recorded %d bytes of %d, truncated %v; want 64 of 1000, truncated", len(m.Stdout), m.StdoutBytes, m.Truncated)
	}
}

func TestRunDefaultCap(t *testing.T) {
	rec := &memRecorder{}
	cmd := exec.Command("sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x")
	if _, err := Run(context.Background(), rec, agent, cmd, Options{}); err != nil {
		t.Fatal(err)
	}
	if m := shellMeta(t, rec.only(t)); len(m.Stdout) != DefaultMaxOutput || !m.Truncated || m.StdoutBytes != 100000 {
		t.Errorf("recorded %d of %d bytes, truncated %v; want %d", len(m.Stdout), m.StdoutBytes, m.Truncated, DefaultMaxOutput)
	}
}

// TestRunLivePassthrough checks output reaches the caller while the command
// still runs, and the caller's stdin reaches the command.
func TestRunLivePassthrough(t *testing.T) {
	rec := &memRecorder{}
	pr, pw := io.Pipe()
	inR, inW := io.Pipe()
	cmd := exec.Command("sh", "-c", "echo first; read line; echo got $line")
	cmd.Stdout, cmd.Stdin = pw, inR
	x, err := Start(context.Background(), rec, agent, cmd, Options{})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	readDone := make(chan error, 1)
	go func() { _, err := io.ReadFull(pr, buf); readDone <- err }()
	select {
	case err := <-readDone:
		if err != nil || string(buf) != "first\n" {
			t.Fatalf("read %q, %v", buf, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no output while the command runs")
	}
	if n := len(rec.All()); n != 0 {
		t.Fatalf("%d events before the command ended", n)
	}
	go io.Copy(io.Discard, pr)
	io.WriteString(inW, "line2\n")
	inW.Close() // Wait waits for a non-file stdin to reach EOF
	res, err := x.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "first\ngot line2\n" {
		t.Errorf("captured %q", res.Stdout)
	}
}

func TestRunNoCapture(t *testing.T) {
	rec := &memRecorder{}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("sh", "-c", "echo hi")
	cmd.Stdout = f
	if _, err := Run(context.Background(), rec, agent, cmd, Options{NoCapture: true}); err != nil {
		t.Fatal(err)
	}
	if cmd.Stdout != f {
		t.Error("NoCapture replaced cmd.Stdout")
	}
	b, _ := os.ReadFile(f.Name())
	if m := shellMeta(t, rec.only(t)); string(b) != "hi\n" || m.Stdout != "" || m.Captured {
		t.Errorf("file %q, metadata %+v", b, m)
	}
}

func TestRunStartFailures(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  *exec.Cmd
		code int
	}{
		{"not found", exec.Command("agenttrail-no-such-command-xyz", "--flag"), 127},
		{"no such path", exec.Command("/nonexistent/bin/tool"), 127},
		{"not executable", exec.Command(notExec), 126},
		{"bad directory", func() *exec.Cmd { c := exec.Command("true"); c.Dir = "/nonexistent-dir"; return c }(), 127},
	}
	for _, tt := range tests {
		rec := &memRecorder{}
		res, err := Run(context.Background(), rec, agent, tt.cmd, Options{})
		var se *StartError
		if !errors.As(err, &se) || se.ExitCode() != tt.code || res == nil || res.ExitCode != tt.code {
			t.Errorf("%s: Run = %+v, %v; want a StartError with code %d", tt.name, res, err, tt.code)
			continue
		}
		e := rec.only(t)
		m := shellMeta(t, e)
		if e.Result != agenttrail.ResultError || m.ExitCode != tt.code || !strings.Contains(e.Description, "cannot start") {
			t.Errorf("%s: event result %s, exit %d, description %q", tt.name, e.Result, m.ExitCode, e.Description)
		}
		if m.Command != tt.cmd.Args[0] {
			t.Errorf("%s: command = %q, want %q", tt.name, m.Command, tt.cmd.Args[0])
		}
	}
}

func TestSignalKillsCommand(t *testing.T) {
	rec := &memRecorder{}
	x, err := Start(context.Background(), rec, agent, exec.Command("sleep", "30"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := x.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res, err := x.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("sleep outlived SIGTERM")
	}
	m := shellMeta(t, rec.only(t))
	if res.ExitCode != 143 || res.Signal != syscall.SIGTERM || m.ExitCode != 143 || m.Signal != "SIGTERM" {
		t.Errorf("exit %d (signal %v), event exit %d signal %q; want 143, SIGTERM", res.ExitCode, res.Signal, m.ExitCode, m.Signal)
	}
	if err := x.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
}

func TestStartTwice(t *testing.T) {
	cmd := exec.Command("true")
	if _, err := Run(context.Background(), &memRecorder{}, agent, cmd, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), &memRecorder{}, agent, cmd, Options{}); err == nil {
		t.Error("running a command twice = nil error")
	}
}
