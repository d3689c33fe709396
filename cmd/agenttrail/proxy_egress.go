package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail/capture/egress"
)

// runProxyEgress runs the forward proxy:
//
//	agenttrail proxy egress --listen ADDR [--allow PATTERN]... [--deny PATTERN]...
//	                        [--allow-private] [capture flags]
//
// Agents reach the network through it with HTTPS_PROXY=http://ADDR and
// HTTP_PROXY=http://ADDR; every CONNECT tunnel and plain-HTTP request is
// checked against the policy and recorded.
func runProxyEgress(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy egress", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-egress")
	listen := fs.String("listen", "127.0.0.1:3128", "address to serve the proxy on")
	var allow, deny stringsFlag
	fs.Var(&allow, "allow", "destination that may be reached, repeatable: api.github.com, *.github.com (subdomains), *, an IP or a CIDR prefix; when set, nothing else may")
	fs.Var(&deny, "deny", "destination that may not be reached, repeatable, same patterns as --allow; deny wins over allow")
	allowPrivate := fs.Bool("allow-private", false, "let agents reach private, loopback and link-local addresses (refused by default unless an --allow pattern other than * names them)")
	dialTimeout := fs.Duration("dial-timeout", 10*time.Second, "how long to resolve and connect to a destination")
	if err := parse(fs, args); err != nil {
		return err
	}
	ln, deps, err := cf.listenOpen(env, *listen)
	if err != nil {
		return err
	}
	defer deps.closeLogged("egress proxy")
	p, err := egress.New(egress.Config{
		Recorder:    deps.Recorder,
		Identities:  deps.Identities,
		Redactor:    deps.Redactor,
		Policy:      egress.Policy{Allow: allow, Deny: deny, AllowPrivate: *allowPrivate},
		DialTimeout: *dialTimeout,
		Logger:      deps.Logger,
	})
	if err != nil {
		ln.Close()
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	// Plain requests get a moment to finish; tunnels are ended by p.Close,
	// each recorded with what it carried.
	defer p.Close()
	fmt.Fprintf(env.Stderr, "agenttrail proxy egress: http://%s\n", ln.Addr())
	return serveCapture(ctx, deps.Logger, 5*time.Second, listening{&http.Server{Handler: p}, ln})
}
