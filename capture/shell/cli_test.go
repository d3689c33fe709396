package shell

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// buildAgenttrail builds the agenttrail binary into a temporary directory.
func buildAgenttrail(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "agenttrail")
	cmd := exec.Command(goTool, "build", "-o", bin, "github.com/agenttrail/agenttrail/cmd/agenttrail")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cliRun is one run of the binary.
type cliRun struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runCLI runs the binary with args and the given environment additions.
func runCLI(t *testing.T, bin string, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cliEnv(t), env...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err := cmd.Run()
	r := cliRun{stdout: out.String(), stderr: errOut.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return r
}

// cliEnv is a clean environment: no AGENTTRAIL_ variables of the machine
// but the test server's token, and a home of the test's own so no default
// spool is shared.
func cliEnv(t *testing.T) []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "XDG_CACHE_HOME=" + t.TempDir(),
		"AGENTTRAIL_TOKEN=" + servertest.Token}
}

// storedShell waits until the store holds n shell events matching f and
// returns them in commit order.
func storedShell(t *testing.T, srv *servertest.Server, n int, f agenttrail.Filter) []agenttrail.Event {
	t.Helper()
	f.Source = []string{agenttrail.SourceShell}
	return capturetest.WaitEvents(t, srv.Store, f, n)
}

// TestExecBinary runs the built `agenttrail exec` against a real server.
func TestExecBinary(t *testing.T) {
	bin := buildAgenttrail(t)
	srv := servertest.Start(t)
	base := []string{"exec", "--server", srv.URL}

	t.Run("exit code and output", func(t *testing.T) {
		args := append(base, "--spool", t.TempDir(), "--actor-id", "agent-exit", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		r := runCLI(t, bin, nil, args...)
		if r.code != 3 || r.stdout != "out\n" || r.stderr != "err\n" {
			t.Fatalf("exec = exit %d, stdout %q, stderr %q; want 3, the command's own output only", r.code, r.stdout, r.stderr)
		}
		e := storedShell(t, srv, 1, agenttrail.Filter{ActorID: []string{"agent-exit"}})[0]
		m := shellMeta(t, e)
		if e.Result != agenttrail.ResultFailure || m.ExitCode != 3 || m.Stdout != "out\n" || m.Stderr != "err\n" || e.Action != ActionExec {
			t.Errorf("stored %s, exit %d, stdout %q, stderr %q", e.Result, m.ExitCode, m.Stdout, m.Stderr)
		}
		if e.ResourceID != "sh -c 'echo out; echo err >&2; exit 3'" {
			t.Errorf("resource_id = %q", e.ResourceID)
		}
	})

	t.Run("success", func(t *testing.T) {
		r := runCLI(t, bin, []string{"AGENTTRAIL_ACTOR_ID=agent-true"}, append(base, "--spool", t.TempDir(), "--", "true")...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exec true = exit %d, stderr %q", r.code, r.stderr)
		}
		if e := storedShell(t, srv, 1, agenttrail.Filter{ActorID: []string{"agent-true"}})[0]; e.Result != agenttrail.ResultSuccess {
			t.Errorf("stored result %s, want success", e.Result)
		}
		// A wrapper that lives as long as one command sends no heartbeat.
		page, err := srv.Store.Query(context.Background(), agenttrail.Query{Filter: agenttrail.Filter{Source: []string{agenttrail.SourceAgent}}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 0 {
			t.Errorf("stored %d heartbeats from exec, want none", len(page.Events))
		}
	})

	t.Run("command not found", func(t *testing.T) {
		r := runCLI(t, bin, nil, append(base, "--spool", t.TempDir(), "--actor-id", "agent-missing", "--", "agenttrail-no-such-command-xyz", "-v")...)
		if r.code != 127 || !strings.Contains(r.stderr, "agenttrail-no-such-command-xyz") {
			t.Fatalf("exec missing = exit %d, stderr %q; want 127 and the reason", r.code, r.stderr)
		}
		e := storedShell(t, srv, 1, agenttrail.Filter{ActorID: []string{"agent-missing"}})[0]
		if e.Result != agenttrail.ResultError || shellMeta(t, e).ExitCode != 127 {
			t.Errorf("stored %s, exit %d; want error, 127", e.Result, shellMeta(t, e).ExitCode)
		}
	})

	t.Run("secrets in command lines", func(t *testing.T) {
		mysql := script(t, "mysql", "exit 0")
		runs := [][]string{
			{mysql, "--password=hunter2", "-u", "root"},
			{mysql, "-u", "root", "-phunter2"},
			{"curl", "-sS", "-u", "user:hunter2", "http://127.0.0.1:1/"},
			{"sh", "-c", "export TOKEN=hunter2; true"},
		}
		for _, argv := range runs {
			runCLI(t, bin, nil, append(append(base, "--spool", t.TempDir(), "--actor-id", "agent-secrets", "--"), argv...)...)
		}
		for _, e := range storedShell(t, srv, len(runs), agenttrail.Filter{ActorID: []string{"agent-secrets"}}) {
			if b, _ := json.Marshal(e); strings.Contains(string(b), "hunter2") {
				t.Errorf("the password reached the store: %s", b)
			}
		}
	})

	t.Run("signal forwarded", func(t *testing.T) {
		cmd := exec.Command(bin, append(base, "--spool", t.TempDir(), "--actor-id", "agent-signal", "--", "sh", "-c", "echo $$; exec sleep 30")...)
		cmd.Env = cliEnv(t)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			cmd.Process.Kill()
			t.Fatalf("read the child's pid: %v", err)
		}
		child, _ := strconv.Atoi(strings.TrimSpace(line))
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("agenttrail exec still running 20 s after SIGTERM")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 143 {
			t.Errorf("exec after SIGTERM: %v, want exit status 143", err)
		}
		if child <= 0 || syscall.Kill(child, 0) != syscall.ESRCH {
			syscall.Kill(child, syscall.SIGKILL)
			t.Errorf("the child %d outlived the wrapper", child)
		}
		e := storedShell(t, srv, 1, agenttrail.Filter{ActorID: []string{"agent-signal"}})[0]
		if m := shellMeta(t, e); m.ExitCode != 143 || m.Signal != "SIGTERM" || e.Result != agenttrail.ResultFailure {
			t.Errorf("stored exit %d, signal %q, %s; want 143, SIGTERM, failure", m.ExitCode, m.Signal, e.Result)
		}
	})

	t.Run("concurrent runs share a spool", func(t *testing.T) {
		spool := t.TempDir()
		results := make(chan cliRun, 3)
		for i := 0; i < 3; i++ {
			go func() {
				results <- runCLI(t, bin, nil, append(base, "--spool", spool, "--actor-id", "agent-parallel", "--", "sleep", "0.5")...)
			}()
		}
		for i := 0; i < 3; i++ {
			if r := <-results; r.code != 0 {
				t.Errorf("parallel exec = exit %d: %s", r.code, r.stderr)
			}
		}
		storedShell(t, srv, 3, agenttrail.Filter{ActorID: []string{"agent-parallel"}})
	})
}

// TestExecBinaryServerDown checks a command runs and exits with its own
// code while the audit server is down, and its event arrives once the
// server is back.
func TestExecBinaryServerDown(t *testing.T) {
	bin := buildAgenttrail(t)
	addr := capturetest.FreeAddr(t)
	spool := t.TempDir()
	args := []string{"exec", "--server", "http://" + addr, "--spool", spool, "--actor-id", "agent-offline", "--"}

	r := runCLI(t, bin, nil, append(args, "sh", "-c", "echo offline; exit 5")...)
	if r.code != 5 || r.stdout != "offline\n" {
		t.Fatalf("exec with the server down = exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r.took > 8*time.Second {
		t.Errorf("exec with the server down took %v", r.took)
	}

	srv := servertest.StartAt(t, addr, t.TempDir())
	if r := runCLI(t, bin, nil, append(args, "true")...); r.code != 0 {
		t.Fatalf("exec with the server up = exit %d: %s", r.code, r.stderr)
	}
	ev := storedShell(t, srv, 2, agenttrail.Filter{ActorID: []string{"agent-offline"}})
	var codes []int
	for _, e := range ev {
		codes = append(codes, shellMeta(t, e).ExitCode)
	}
	if !(codes[0] == 5 && codes[1] == 0 || codes[0] == 0 && codes[1] == 5) {
		t.Errorf("stored exit codes %v, want the offline run's 5 and the online run's 0", codes)
	}
}
