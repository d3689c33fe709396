package mcp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/agenttrail/agenttrail/capture"
)

// Grace periods of Stdio.Run.
const (
	// stopGrace is how long a server has to exit after SIGTERM (sent when
	// Run's ctx ends) before it is killed.
	stopGrace = 5 * time.Second
	// drainGrace is how long the server's output may stay open after the
	// server exited (a grandchild holding it) before the relay stops.
	drainGrace = 2 * time.Second
)

// Stdio relays the stdio transport of MCP between an agent and a server,
// unchanged, and records the traffic. One Stdio serves one session: build
// it with NewStdio and call Run (or Relay) once.
type Stdio struct {
	obs   *observer
	sess  *session
	agent capture.Actor
}

// NewStdio returns a Stdio that records through cfg. It fails when cfg lacks
// its Recorder or Identities.
func NewStdio(cfg Config) (*Stdio, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	o := newObserver(cfg, "stdio")
	return &Stdio{obs: o, sess: o.session(""), agent: cfg.Identities.Resolve("", nil)}, nil
}

// Relay copies newline-delimited JSON-RPC from the client (clientIn) to the
// server (serverIn) and from the server (serverOut) to the client
// (clientOut), line by line and byte for byte, observing a copy of each
// line. When clientIn ends, serverIn is closed: that is how an MCP client
// asks a stdio server to exit. Relay returns when serverOut ends, recording
// the requests still unanswered as errors; the copy from clientIn may still
// be blocked in a Read until clientIn returns. The error is the first
// failure to read serverOut or to write clientOut, nil at a clean end. A
// client that closed its end (a late answer to a cancelled call written
// after the client hung up) is a clean end: the session is over.
func (p *Stdio) Relay(clientIn io.Reader, clientOut io.Writer, serverIn io.WriteCloser, serverOut io.Reader) error {
	go func() {
		err := p.copyLines(serverIn, clientIn, false)
		if err != nil && !isClosed(err) {
			p.obs.cfg.Logger.Warn("mcp proxy: relay to server stopped", "err", err)
		}
		_ = serverIn.Close()
	}()
	err := p.copyLines(clientOut, serverOut, true)
	p.obs.end(p.sess, "the server closed its output")
	if isClosed(err) {
		return nil
	}
	return err
}

// copyLines relays lines from r to w, observing each before it is written
// so a request is pending before its response can exist.
func (p *Stdio) copyLines(w io.Writer, r io.Reader, fromServer bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			p.obs.observe(p.sess, fromServer, line, p.agent, 0, capture.Span{})
			if _, werr := w.Write(line); werr != nil {
				return fmt.Errorf("relay: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
	}
}

// readLine returns the next line including its newline (or the final bytes
// without one). Its result is valid until the next call when the line fit
// in the buffer.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	buf := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
	}
	return buf, err
}

// Run starts cmd as the MCP server, relays stdin and stdout to and from it
// with Relay, forwards every signal received on sigs to it, waits for it to
// exit and returns its exit code: the server's own, or 128 plus the signal
// that killed it. cmd's Stdin and Stdout must be unset; its Stderr is the
// caller's (set it to os.Stderr to pass the server's log through). When ctx
// ends the server gets SIGTERM, then SIGKILL after a grace period; pass a
// context that signals do not cancel when sigs forwards them. The error is
// about starting or waiting for the server, not its exit status.
func (p *Stdio) Run(ctx context.Context, cmd *exec.Cmd, stdin io.Reader, stdout io.Writer, sigs <-chan os.Signal) (int, error) {
	if cmd.Stdin != nil || cmd.Stdout != nil {
		return 0, errors.New("mcp proxy: cmd must not have Stdin or Stdout set")
	}
	// os.Pipe rather than cmd.StdinPipe/StdoutPipe: Wait may then run while
	// the relay still reads, and a server that exits is seen at once.
	inR, inW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("mcp proxy: pipe: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return 0, fmt.Errorf("mcp proxy: pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return 0, fmt.Errorf("mcp proxy: start server: %w", err)
	}

	relayed := make(chan error, 1)
	go func() { relayed <- p.Relay(stdin, stdout, inW, outR) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	var waitErr error
	var stopping <-chan time.Time
	done := ctx.Done()
wait:
	for {
		select {
		case sig := <-sigs:
			_ = cmd.Process.Signal(sig)
		case <-done:
			done = nil
			_ = cmd.Process.Signal(syscall.SIGTERM)
			stopping = time.After(stopGrace)
		case <-stopping:
			_ = cmd.Process.Kill()
		case waitErr = <-exited:
			break wait
		}
	}
	select {
	case <-relayed:
	case <-time.After(drainGrace):
		outR.Close() // a grandchild holds the server's output open
		<-relayed
	}
	outR.Close()
	inW.Close()

	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return 0, fmt.Errorf("mcp proxy: wait for server: %w", waitErr)
	}
	return exitCode(cmd.ProcessState), nil
}

// exitCode follows the shell: a signalled process exits with 128 + signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// isClosed reports the errors of writing to a server that is gone.
func isClosed(err error) bool {
	return errors.Is(err, os.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrClosedPipe)
}
