package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/agenttrail/agenttrail/capture/mcp"
)

// runProxyMCP runs the MCP proxy in one of two modes:
//
//	agenttrail proxy mcp [flags] -- SERVER_COMMAND ARGS…      (stdio)
//	agenttrail proxy mcp [flags] --listen ADDR --upstream URL (Streamable HTTP)
//
// In stdio mode the agent starts this command instead of the MCP server;
// stdout carries only the server's JSON-RPC, so everything the proxy says
// goes to stderr, and the proxy exits with the server's exit code.
func runProxyMCP(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy mcp", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-mcp")
	listen := fs.String("listen", "", "serve Streamable HTTP on this address, e.g. 127.0.0.1:7320 (needs --upstream)")
	upstream := fs.String("upstream", "", "URL of the Streamable HTTP MCP server to proxy (needs --listen)")
	serverName := fs.String("server-name", "", "name of the MCP server in events (default: the name the server reports)")
	preview := fs.Int("preview-bytes", mcp.DefaultPreviewBytes, "cap of the recorded content preview")
	timeout := fs.Duration("timeout", mcp.DefaultTimeout, "record a request with no response after this long as an error")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: agenttrail proxy mcp [flags] -- SERVER_COMMAND [ARGS…]")
		fmt.Fprintln(fs.Output(), "       agenttrail proxy mcp [flags] --listen ADDR --upstream URL")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	command := fs.Args()
	httpMode := *listen != "" || *upstream != ""
	switch {
	case httpMode && (*listen == "" || *upstream == ""):
		fmt.Fprintln(fs.Output(), "--listen and --upstream go together")
		return errUsage
	case httpMode && len(command) > 0:
		fmt.Fprintln(fs.Output(), "give either a server command or --listen and --upstream, not both")
		return errUsage
	case !httpMode && len(command) == 0:
		fs.Usage()
		return errUsage
	}

	var ln net.Listener
	if httpMode {
		var err error
		if ln, err = net.Listen("tcp", *listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	var bound []io.Closer
	if ln != nil {
		bound = append(bound, ln)
	}
	deps, err := cf.openBound(env, bound...)
	if err != nil {
		return err
	}
	defer deps.closeLogged("mcp proxy")
	cfg := mcp.Config{
		Recorder: deps.Recorder, Identities: deps.Identities, Redactor: deps.Redactor,
		ServerName: *serverName, Logger: deps.Logger, PreviewBytes: *preview, Timeout: *timeout,
		Upstream: *upstream,
	}
	if httpMode {
		return serveMCPProxy(ctx, cfg, ln, env)
	}
	return runMCPStdio(ctx, cfg, command, env)
}

// runMCPStdio runs the server command behind the stdio proxy. Signals are
// forwarded to the server rather than ending the proxy: it exits when the
// server does, with its code.
func runMCPStdio(ctx context.Context, cfg mcp.Config, command []string, env *Env) error {
	p, err := mcp.NewStdio(cfg)
	if err != nil {
		return err
	}
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = env.Stderr
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	code, err := p.Run(context.WithoutCancel(ctx), cmd, env.Stdin, env.Stdout, sigs)
	if err != nil {
		return err
	}
	if code != 0 {
		return mcpServerExit(code)
	}
	return nil
}

// mcpServerExit is the non-zero exit code of the MCP server, which the
// proxy exits with.
type mcpServerExit int

func (e mcpServerExit) Error() string {
	return fmt.Sprintf("the MCP server exited with code %d", int(e))
}

// ExitCode is the code the process should exit with.
func (e mcpServerExit) ExitCode() int { return int(e) }

// serveMCPProxy serves the Streamable HTTP proxy on ln until ctx ends. Event
// streams stay open until the client leaves, so shutdown waits a little and
// then closes them.
func serveMCPProxy(ctx context.Context, cfg mcp.Config, ln net.Listener, env *Env) error {
	p, err := mcp.NewHTTP(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	fmt.Fprintf(env.Stderr, "agenttrail proxy mcp: http://%s → %s\n", ln.Addr(), cfg.Upstream)
	return serveCapture(ctx, cfg.Logger, 3*time.Second, listening{&http.Server{Handler: p}, ln})
}
