// Package shell is the shell capture surface: it runs commands and records
// one shell event per command with its command line, working directory,
// exit code, duration and output, redacted.
//
// The command's standard streams stay live: what the caller set as
// cmd.Stdout and cmd.Stderr still receives every byte as the command writes
// it, and a copy of the first Options.MaxOutput bytes of each is recorded.
// Capturing puts a pipe between the command and those writers, so a command
// whose output is a terminal sees a pipe instead; Options.NoCapture leaves
// the streams alone for interactive programs and records no output.
//
// Agents that run commands in-process call Run (or Start and Wait); the
// `agenttrail exec` command wraps a command line with the same code.
package shell

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Options configure one run. The zero value records with the built-in
// redaction rules and captures 64 KiB of each output stream.
type Options struct {
	// Redactor scrubs the event; nil means the built-in rules
	// (redact.Builtin), built on each run (about 0.2 ms): callers that run
	// many commands build one and reuse it. Credentials in arguments that
	// only command-line conventions reveal (curl -u, mysql -p, --password
	// VALUE) are scrubbed before it runs, whatever it is.
	Redactor *redact.Redactor
	// MaxOutput caps the bytes recorded of each of stdout and stderr
	// (default DefaultMaxOutput); the command's output itself is never cut.
	MaxOutput int
	// NoCapture leaves cmd.Stdout and cmd.Stderr as they are, so a terminal
	// stays a terminal; the event then records no output.
	NoCapture bool
	// Logger logs what cannot be recorded; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Result is how a command ended.
type Result struct {
	// ExitCode is the command's exit status; 128+N when signal N killed it;
	// 127 when it was not found and 126 when it could not be executed, as
	// a shell reports them.
	ExitCode int
	// Signal is the signal that killed the command, or nil.
	Signal os.Signal
	// Stdout and Stderr are the captured output, capped at MaxOutput and
	// not redacted (the event holds the redacted copy).
	Stdout, Stderr []byte
	// Truncated reports that some output was beyond the cap.
	Truncated bool
	// Duration is how long the command ran.
	Duration time.Duration
	// Event is the event recorded, redacted.
	Event agenttrail.Event
}

// StartError is returned when a command cannot be started: not found, not
// executable, or a bad working directory. The failure is recorded as an
// event with result error.
type StartError struct {
	Err error
	// Code is the exit code a shell would report: 127 or 126.
	Code int
	// Event is the event recorded, redacted.
	Event agenttrail.Event
}

func (e *StartError) Error() string { return "start: " + e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// ExitCode returns Code.
func (e *StartError) ExitCode() int { return e.Code }

// Execution is a started command. Wait for it once; Signal may be called
// from any goroutine until then.
type Execution struct {
	cmd            *exec.Cmd
	rec            *capture.Redacting
	ctx            context.Context
	actor          capture.Actor
	span           capture.Span
	opts           Options
	argv           []string // redacted
	cwd, host      string
	start          time.Time
	stdout, stderr *capBuffer
}

// Run starts cmd, waits for it and records it through rec as actor. It
// returns an error only when the command could not be started (a
// *StartError, with a Result whose ExitCode says why) or its output could
// not be relayed; a non-zero exit is a Result, not an error. ctx is passed
// to rec.Record; the command's lifetime is cmd's own (build it with
// exec.CommandContext to bind it to a context).
func Run(ctx context.Context, rec capture.Recorder, actor capture.Actor, cmd *exec.Cmd, opts Options) (*Result, error) {
	x, err := Start(ctx, rec, actor, cmd, opts)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return &Result{ExitCode: se.Code, Event: se.Event}, err
		}
		return nil, err
	}
	return x.Wait()
}

// Start starts cmd as Run does, without waiting for it. When the command
// cannot be started it records the failure and returns a *StartError.
//
// The event's trace comes from the command's environment (cmd.Env, or this
// process's when nil): TRACEPARENT and TRACESTATE name its parent span and
// AGENTTRAIL_SESSION_ID its session; a missing or malformed TRACEPARENT
// starts a new trace. The command runs with TRACEPARENT naming the span
// recorded for it.
func Start(ctx context.Context, rec capture.Recorder, actor capture.Actor, cmd *exec.Cmd, opts Options) (*Execution, error) {
	if cmd.Process != nil {
		return nil, errors.New("shell: command already started")
	}
	if rec == nil {
		return nil, errors.New("shell: a recorder is required")
	}
	if opts.MaxOutput <= 0 {
		opts.MaxOutput = DefaultMaxOutput
	}
	defaults.Logger(&opts.Logger)
	defaults.Clock(&opts.Now)
	argv := cmd.Args
	if len(argv) == 0 {
		argv = []string{cmd.Path}
	}
	x := &Execution{cmd: cmd, rec: capture.NewRedacting(rec, opts.Redactor), ctx: ctx, actor: actor, opts: opts, argv: redactArgs(argv), cwd: cmd.Dir}
	if x.cwd == "" {
		x.cwd, _ = os.Getwd()
	}
	x.host, _ = os.Hostname()
	// The trace context travels in the environment (the OpenTelemetry
	// convention): the command's own TRACEPARENT is its parent, and the
	// command gets one naming the span recorded for it.
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	x.span = capture.SpanFromEnv(func(k string) string { return lookupEnv(env, k) })
	cmd.Env = x.span.Environ(env)
	if !opts.NoCapture {
		x.stdout, x.stderr = newCapBuffer(opts.MaxOutput), newCapBuffer(opts.MaxOutput)
		cmd.Stdout, cmd.Stderr = tee(cmd.Stdout, x.stdout), tee(cmd.Stderr, x.stderr)
	}
	x.start = opts.Now()
	if err := cmd.Start(); err != nil {
		se := &StartError{Err: err, Code: startExitCode(err)}
		se.Event = x.record(ctx, opts.Now(), agenttrail.ResultError, Metadata{ExitCode: se.Code, Captured: !opts.NoCapture}, "cannot start: "+err.Error())
		return nil, se
	}
	return x, nil
}

// startExitCode maps a start failure to the status a shell reports: 126
// for a file that exists but cannot be executed, 127 otherwise.
func startExitCode(err error) int {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.ENOEXEC) || errors.Is(err, syscall.EISDIR) {
		return 126
	}
	return 127
}

// Signal sends sig to the command. It is safe to call concurrently with
// Wait; after the command has exited it returns os.ErrProcessDone.
func (x *Execution) Signal(sig os.Signal) error {
	return x.cmd.Process.Signal(sig)
}

// Pid returns the command's process id.
func (x *Execution) Pid() int { return x.cmd.Process.Pid }

// Wait waits for the command to exit and for its output to be relayed,
// records the event and returns the Result. A non-zero exit is reported in
// the Result, not as an error; the error is about relaying the output.
func (x *Execution) Wait() (*Result, error) {
	err := x.cmd.Wait()
	end := x.opts.Now()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil // the exit status is in ProcessState
	}
	res := &Result{Duration: end.Sub(x.start)}
	m := Metadata{Captured: x.stdout != nil}
	if x.stdout != nil {
		var out, errOut []byte
		var cut1, cut2 bool
		out, m.StdoutBytes, cut1 = x.stdout.result()
		errOut, m.StderrBytes, cut2 = x.stderr.result()
		res.Stdout, res.Stderr, res.Truncated = out, errOut, cut1 || cut2
		m.Stdout, m.Stderr, m.Truncated = string(out), string(errOut), res.Truncated
	}
	res.ExitCode = x.cmd.ProcessState.ExitCode()
	desc := ""
	if ws, ok := x.cmd.ProcessState.Sys().(interface {
		Signaled() bool
		Signal() syscall.Signal
	}); ok && ws.Signaled() {
		res.Signal = ws.Signal()
		res.ExitCode = 128 + int(ws.Signal())
		m.Signal = signalName(ws.Signal())
		desc = "killed by " + m.Signal
	}
	m.ExitCode = res.ExitCode
	result := agenttrail.ResultSuccess
	if res.ExitCode != 0 {
		result = agenttrail.ResultFailure
	}
	if err != nil {
		desc = "output not fully relayed: " + err.Error()
	}
	res.Event = x.record(x.ctx, end, result, m, desc)
	return res, err
}

// lookupEnv returns the value of the last k=… entry of env, as the process
// started with env would see it (os/exec keeps the last duplicate).
func lookupEnv(env []string, k string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], k+"="); ok {
			return v
		}
	}
	return ""
}
