package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail/capture/sandbox"
)

// runProxyDocker runs the Docker Engine API proxy:
//
//	agenttrail proxy docker --listen unix:///PATH/docker.sock|tcp://127.0.0.1:PORT
//	                        [--upstream unix:///var/run/docker.sock] [capture flags]
//
// Agents set DOCKER_HOST to --listen; every container lifecycle call, exec
// and docker cp is recorded as a sandbox event, and everything else is
// relayed unchanged. On a unix socket the kernel says which user connects:
// --identities keys of the form "uid:N" map it to an actor, so agents
// running as their own users are told apart.
func runProxyDocker(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy docker", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-docker")
	listen := fs.String("listen", "", "where agents connect, in DOCKER_HOST form: unix:///path/docker.sock or tcp://127.0.0.1:PORT (required)")
	upstream := fs.String("upstream", "unix:///var/run/docker.sock", "the Docker Engine API: unix:///path or tcp://host:port")
	socketMode := fs.String("socket-mode", "0660", "permissions of a --listen unix socket (octal)")
	remember := fs.Int("remember", 4096, "containers and exec instances remembered for their image, name and command")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *listen == "" {
		fmt.Fprintln(fs.Output(), "--listen is required")
		return errUsage
	}
	ln, err := sandbox.ParseEndpoint(*listen)
	if err != nil {
		fmt.Fprintf(fs.Output(), "--listen: %v\n", err)
		return errUsage
	}
	up, err := sandbox.ParseEndpoint(*upstream)
	if err != nil {
		fmt.Fprintf(fs.Output(), "--upstream: %v\n", err)
		return errUsage
	}
	if ln == up {
		fmt.Fprintln(fs.Output(), "--listen and --upstream are the same endpoint")
		return errUsage
	}
	mode, err := strconv.ParseUint(*socketMode, 8, 32)
	if err != nil || mode > 0o777 {
		fmt.Fprintf(fs.Output(), "--socket-mode: want octal permissions such as 0660, not %q\n", *socketMode)
		return errUsage
	}

	l, err := listenEndpoint(ln, os.FileMode(mode))
	if err != nil {
		return err
	}
	deps, err := cf.openBound(env, l)
	if err != nil {
		return err
	}
	defer deps.closeLogged("docker proxy")
	p, err := sandbox.NewDockerProxy(sandbox.DockerConfig{
		Upstream: up, Recorder: deps.Recorder, Identities: deps.Identities, Redactor: deps.Redactor,
		MaxRemembered: *remember, Logger: deps.Logger,
	})
	if err != nil {
		l.Close()
		return err
	}
	// Shutdown waits for calls in flight; attach and exec streams are not
	// among them (they left the server when hijacked) and p.Close ends them.
	defer p.Close()
	srv := &http.Server{Handler: p, ConnContext: p.ConnContext}
	fmt.Fprintf(env.Stderr, "agenttrail proxy docker: %s → %s\n  export DOCKER_HOST=%s\n", ln, up, ln)
	return serveCapture(ctx, deps.Logger, 10*time.Second, listening{srv, l})
}

// listenEndpoint listens on e. A unix socket left behind by a proxy that
// died is replaced; one that still answers is in use and left alone.
func listenEndpoint(e sandbox.Endpoint, mode os.FileMode) (net.Listener, error) {
	if e.Network == "unix" {
		if fi, err := os.Lstat(e.Address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			if c, err := net.DialTimeout("unix", e.Address, time.Second); err == nil {
				c.Close()
				return nil, fmt.Errorf("listen %s: in use by another process", e)
			}
			os.Remove(e.Address)
		}
	}
	l, err := net.Listen(e.Network, e.Address)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if e.Network == "unix" {
		if err := os.Chmod(e.Address, mode); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen %s: %w", e, err)
		}
	}
	return l, nil
}
