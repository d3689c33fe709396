package capturetest

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds one run of a command-line tool.
const commandTimeout = 20 * time.Second

// Command runs the program name (curl, docker: the official tool an agent
// would use) with args, stdin, and only the environment env, so nothing of
// the machine's proxy variables or configuration applies. It returns what
// the program wrote and its exit code, and fails the test when the program
// is not installed or cannot be started. The program is killed after 20 s.
func Command(t testing.TB, env []string, stdin, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed for this test: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", name, err)
	}
	return out.String(), errb.String(), code
}
