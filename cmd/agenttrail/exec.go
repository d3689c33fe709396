package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"syscall"

	"github.com/agenttrail/agenttrail/capture/shell"
)

// runExec runs a command and records it as one shell event:
//
//	agenttrail exec [--max-output BYTES] [--no-capture] [capture flags] -- CMD ARGS…
//
// The command's streams pass through live; SIGINT, SIGTERM, SIGHUP and
// SIGQUIT are forwarded to it; agenttrail exits with its exit code (128+N
// when signal N killed it, 127 or 126 when it could not be started, as a
// shell does). The event is sent before agenttrail exits, or spooled when
// the server does not answer within a few seconds.
func runExec(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("exec", env)
	var cf captureFlags
	cf.register(fs, env, "exec")
	// A wrapper that lives as long as one command heartbeats only when
	// asked: a heartbeat and a stop around every command would triple the
	// events. Its producer is its spool slot's, so an event a killed run
	// lost shows as a sequence gap when the slot's next run records.
	cf.heartbeat, fs.Lookup("heartbeat").DefValue = 0, "0s"
	maxOutput := fs.Int("max-output", shell.DefaultMaxOutput, "bytes of each of stdout and stderr to record (the command's own output is never cut)")
	noCapture := fs.Bool("no-capture", false, "leave the terminal to the command, for interactive programs; no output is recorded")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(fs.Output(), "usage: agenttrail exec [flags] -- CMD ARGS...")
		return errUsage
	}

	actor := cf.defaultActor()
	if actor.ID == "" {
		actor.ID = userName()
	}
	deps, err := cf.open(env)
	if err != nil {
		return err
	}
	flush := func() {
		if err := deps.Close(); err != nil {
			deps.Logger.Warn("exec: flush events", "err", err)
		}
	}

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = env.Stdin, env.Stdout, env.Stderr
	// Signals are caught before the command starts so none is lost in
	// between; the context is not tied to the command, whose end is its own.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	opts := shell.Options{Redactor: deps.Redactor, MaxOutput: *maxOutput, NoCapture: *noCapture, Logger: deps.Logger}
	x, err := shell.Start(context.WithoutCancel(ctx), deps.Recorder, actor, cmd, opts)
	if err != nil {
		var se *shell.StartError
		if !errors.As(err, &se) {
			flush()
			return err
		}
		if errors.Is(se.Err, exec.ErrNotFound) {
			fmt.Fprintf(env.Stderr, "agenttrail exec: %s: command not found\n", argv[0])
		} else {
			fmt.Fprintf(env.Stderr, "agenttrail exec: %v\n", se.Err)
		}
		flush()
		return exitStatus(se.Code)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				_ = x.Signal(sig) // fails only once the command has exited
			case <-done:
				return
			}
		}
	}()
	res, err := x.Wait()
	close(done)
	flush()
	if err != nil {
		fmt.Fprintf(env.Stderr, "agenttrail exec: %v\n", err)
	}
	if res.ExitCode != 0 {
		return exitStatus(res.ExitCode)
	}
	return nil
}

// exitStatus is a wrapped command's exit status, which agenttrail exits
// with in silence.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the code the process should exit with.
func (e exitStatus) ExitCode() int { return int(e) }

// userName names the user running the command, the actor when none is
// configured.
func userName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if n := os.Getenv("USER"); n != "" {
		return n
	}
	return "unknown"
}
