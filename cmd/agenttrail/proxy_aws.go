package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/agenttrail/agenttrail/capture/aws"
)

// runProxyAWS runs the AWS API proxy:
//
//	agenttrail proxy aws --credentials FILE [--listen ADDR] [--upstream URL] [capture flags]
//
// Agents set AWS_ENDPOINT_URL=http://ADDR (and path-style S3 addressing)
// and hold only the proxy-issued keys of --credentials; the proxy checks
// their signatures, signs again with the real keys those map to, and sends
// each call to https://{service}.{region}.amazonaws.com, or to --upstream.
func runProxyAWS(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy aws", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-aws")
	listen := fs.String("listen", "127.0.0.1:7340", "address to serve the proxy on")
	credentials := fs.String("credentials", "", `JSON file of proxy-issued keys (required): {"<access key id>": {"secret_access_key": "...", "actor": {"actor_id": "..."}, "session_tags": {"team": "..."}, "upstream": {"access_key_id": "...", "secret_access_key": "...", "session_token": "..."}}}`)
	upstream := fs.String("upstream", "", "send every call here instead of the regional AWS endpoint (a VPC endpoint or an emulator)")
	maxSkew := fs.Duration("max-clock-skew", 15*time.Minute, "how far a request's signing time may be from the proxy's clock")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *credentials == "" {
		fmt.Fprintln(fs.Output(), "--credentials is required")
		return errUsage
	}
	creds, err := aws.LoadCredentials(*credentials)
	if err != nil {
		return fmt.Errorf("--credentials: %w", err)
	}
	cfg := aws.Config{Credentials: creds, MaxClockSkew: *maxSkew}
	if *upstream != "" {
		u, err := url.Parse(*upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			fmt.Fprintf(fs.Output(), "--upstream: want an http(s) URL, not %q\n", *upstream)
			return errUsage
		}
		cfg.Upstream = u
	}

	ln, deps, err := cf.listenOpen(env, *listen)
	if err != nil {
		return err
	}
	defer deps.closeLogged("aws proxy")
	cfg.Recorder, cfg.Redactor, cfg.Logger = deps.Recorder, deps.Redactor, deps.Logger
	cfg.Default = cf.defaultActor()
	p, err := aws.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	to := "https://{service}.{region}.amazonaws.com"
	if cfg.Upstream != nil {
		to = cfg.Upstream.Redacted()
	}
	fmt.Fprintf(env.Stderr, "agenttrail proxy aws: http://%s → %s (%d keys)\n", advertised(ln.Addr()), to, len(creds))
	return serveCapture(ctx, deps.Logger, 10*time.Second, listening{&http.Server{Handler: p}, ln})
}
