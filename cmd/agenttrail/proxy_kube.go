package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/agenttrail/agenttrail/capture/kube"
)

// runProxyKube runs the Kubernetes API proxy:
//
//	agenttrail proxy kube --cluster NAME (--upstream URL --upstream-token T | --kubeconfig FILE [--context C] | --in-cluster)
//	                      [--listen ADDR] [--tls-cert F --tls-key F | --plain-http]
//	                      [--print-kubeconfig [--agent-token T]] [--allow-unmapped] [capture flags]
//
// Agents point kubectl or client-go at it with the kubeconfig that
// --print-kubeconfig writes to stdout; they present a proxy token mapped in
// --identities and the proxy talks to the cluster with its own credential.
// Without --tls-cert it serves TLS with a fresh self-signed certificate,
// which the printed kubeconfig trusts: kubectl sends no token over plain
// HTTP.
func runProxyKube(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy kube", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-kube")
	listen := fs.String("listen", "127.0.0.1:7443", "address to serve the proxy on")
	cluster := fs.String("cluster", "", "cluster name recorded with every event (required)")
	upstream := fs.String("upstream", "", "API server URL, e.g. https://10.0.0.1:6443 (default: the kubeconfig's server)")
	upstreamToken := fs.String("upstream-token", "", "bearer token the proxy authenticates upstream with (env AGENTTRAIL_KUBE_UPSTREAM_TOKEN)")
	upstreamCA := fs.String("upstream-ca", "", "PEM file of the CA that signed the API server's certificate (default: system roots)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig whose credentials the proxy uses upstream (client certificates, tokens, exec plugins)")
	kubeContext := fs.String("context", "", "context of --kubeconfig (default: its current context)")
	inCluster := fs.Bool("in-cluster", false, "run in a pod: use its service account (re-reading the rotated token) and the cluster's CA")
	tlsCert := fs.String("tls-cert", "", "PEM certificate to serve with (default: a self-signed one made at start)")
	tlsKey := fs.String("tls-key", "", "PEM key of --tls-cert")
	plainHTTP := fs.Bool("plain-http", false, "serve plain HTTP (kubectl will not send tokens; for clients configured in code)")
	printKubeconfig := fs.Bool("print-kubeconfig", false, "write a kubeconfig pointing at the proxy to stdout, then serve")
	agentToken := fs.String("agent-token", "", "proxy token to put in the printed kubeconfig (default: a placeholder)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *upstreamToken == "" {
		*upstreamToken = env.Getenv("AGENTTRAIL_KUBE_UPSTREAM_TOKEN")
	}
	if *cluster == "" {
		fmt.Fprintln(fs.Output(), "--cluster is required")
		return errUsage
	}
	if (*tlsCert == "") != (*tlsKey == "") || (*plainHTTP && *tlsCert != "") {
		fmt.Fprintln(fs.Output(), "--tls-cert and --tls-key go together, and not with --plain-http")
		return errUsage
	}
	cfg := kube.Config{Cluster: *cluster, UpstreamToken: *upstreamToken}
	var err error
	if cfg.Upstream, cfg.Transport, err = kubeUpstream(*upstream, *upstreamCA, *kubeconfig, *kubeContext, *inCluster); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	if *kubeconfig == "" && !*inCluster && *upstreamToken == "" {
		fmt.Fprintln(fs.Output(), "--upstream-token, --kubeconfig or --in-cluster is required: the proxy never forwards the agent's credential")
		return errUsage
	}
	if cf.identities == "" && !cf.allowUnmapped {
		fmt.Fprintln(fs.Output(), "--identities (the proxy tokens agents present) or --allow-unmapped is required")
		return errUsage
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	scheme, caPEM := "http", []byte(nil)
	if !*plainHTTP {
		scheme = "https"
		var cert tls.Certificate
		if *tlsCert != "" {
			if cert, err = tls.LoadX509KeyPair(*tlsCert, *tlsKey); err != nil {
				ln.Close()
				return fmt.Errorf("--tls-cert: %w", err)
			}
			caPEM, _ = os.ReadFile(*tlsCert)
		} else {
			host, _, _ := net.SplitHostPort(*listen)
			if cert, caPEM, err = kube.SelfSignedCert([]string{host, "127.0.0.1", "::1", "localhost"}, time.Now()); err != nil {
				ln.Close()
				return err
			}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12})
	}
	deps, err := cf.openBound(env, ln)
	if err != nil {
		return err
	}
	defer deps.closeLogged("kube proxy")
	cfg.Recorder, cfg.Identities, cfg.Redactor, cfg.Logger = deps.Recorder, deps.Identities, deps.Redactor, deps.Logger
	p, err := kube.New(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	proxyURL := scheme + "://" + advertised(ln.Addr())
	if *printKubeconfig {
		if err := kube.WriteKubeconfig(env.Stdout, kube.Kubeconfig{Server: proxyURL, Cluster: *cluster, Token: *agentToken, CAPEM: caPEM}); err != nil {
			ln.Close()
			return err
		}
	}
	fmt.Fprintf(env.Stderr, "agenttrail proxy kube: %s → %s (cluster %s)\n", proxyURL, cfg.Upstream.Redacted(), *cluster)
	return serveCapture(ctx, deps.Logger, 10*time.Second, listening{&http.Server{Handler: p}, ln})
}

// kubeUpstream is the API server URL and the transport that authenticates
// to it: from a kubeconfig as kubectl reads it, or from --upstream and
// --upstream-ca.
func kubeUpstream(upstream, caFile, kubeconfig, kubeContext string, inCluster bool) (*url.URL, http.RoundTripper, error) {
	var transport http.RoundTripper
	if kubeconfig != "" && inCluster {
		return nil, nil, errors.New("--kubeconfig and --in-cluster exclude each other")
	}
	if kubeconfig != "" || inCluster {
		var rc *rest.Config
		var err error
		if inCluster {
			rc, err = rest.InClusterConfig()
		} else {
			rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
				&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
				&clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
		}
		if err != nil {
			return nil, nil, fmt.Errorf("upstream credentials: %w", err)
		}
		if upstream == "" {
			upstream = rc.Host
		}
		if transport, err = rest.TransportFor(rc); err != nil {
			return nil, nil, fmt.Errorf("upstream credentials: %w", err)
		}
	} else if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--upstream-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--upstream-ca: no PEM certificate in %s", caFile)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		t.MaxIdleConnsPerHost = 64
		transport = t
	}
	if upstream == "" {
		return nil, nil, errors.New("--upstream, --kubeconfig or --in-cluster is required")
	}
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, nil, fmt.Errorf("--upstream: want an http(s) URL, not %q", upstream)
	}
	return u, transport, nil
}

// advertised is the address clients reach a listener on: an unspecified
// host (0.0.0.0, ::) becomes the loopback address.
func advertised(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
}
