package egress

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

// memRecorder keeps the events it is given, for tests to inspect.
type memRecorder = capturetest.Events

// fakeResolver resolves names from a table and counts lookups.
type fakeResolver struct {
	mu      sync.Mutex
	names   map[string][]netip.Addr
	lookups map[string]int
}

func newFakeResolver(names map[string]string) *fakeResolver {
	r := &fakeResolver{names: map[string][]netip.Addr{}, lookups: map[string]int{}}
	for n, a := range names {
		r.names[n] = []netip.Addr{netip.MustParseAddr(a)}
	}
	return r
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups[host]++
	if a, ok := r.names[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[host]
}

// startProxy serves a Proxy for cfg on a loopback listener and returns its
// URL. cfg.Recorder defaults to a new memRecorder, returned too.
func startProxy(t testing.TB, cfg Config) (string, *memRecorder) {
	t.Helper()
	url, mem, _ := startStoppableProxy(t, cfg)
	return url, mem
}

// startStoppableProxy is startProxy that also returns stop: it shuts the
// server down, then the proxy, and returns once no request and no tunnel
// is left that could record an event. Later calls do nothing.
func startStoppableProxy(t testing.TB, cfg Config) (string, *memRecorder, func()) {
	t.Helper()
	var mem *memRecorder
	if cfg.Recorder == nil {
		mem = &memRecorder{}
		cfg.Recorder = mem
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(p)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			srv.Close() // waits for requests, but not for the tunnels they became
			p.Close()   // ends the tunnels and waits for them to be recorded
		})
	}
	t.Cleanup(stop)
	return srv.URL, mem, stop
}

// identities maps the proxy credential "sk-proxy-1" to the actor agent-ci,
// and admits other requests as the header's actor or default-agent.
func identities() *capture.Identities {
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}, AllowUnmapped: true}
	ids.Add("sk-proxy-1", capture.Actor{ID: "agent-ci", Name: "CI agent"})
	return ids
}

// tlsUpstream starts an HTTPS server (its certificate is for example.com and
// 127.0.0.1) answering "hello from upstream" plus what it read, and returns
// it with the path of its certificate in PEM form for curl --cacert.
func tlsUpstream(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "hello from upstream")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv, ca
}

// port returns the port of a test server.
func port(t testing.TB, srv *httptest.Server) string {
	t.Helper()
	_, p, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// curl runs the curl binary with args and returns its stdout, stderr and
// exit code. Its environment holds no proxy variables, so only -x applies.
func curl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	return capturetest.Command(t, env, "", "curl", append([]string{"--silent", "--show-error", "--max-time", "15"}, args...)...)
}

// httpMeta decodes metadata.http of e.
func httpMeta(t testing.TB, e agenttrail.Event) HTTP {
	t.Helper()
	var m struct {
		HTTP *HTTP `json:"http"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil || m.HTTP == nil {
		t.Fatalf("metadata %s: no http object (%v)", e.Metadata, err)
	}
	return *m.HTTP
}

// proxiedClient returns an http.Client that goes through the proxy at
// proxyURL and trusts srv's certificate.
func proxiedClient(t testing.TB, proxyURL string, srv *httptest.Server) *http.Client {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{Proxy: http.ProxyURL(u), ForceAttemptHTTP2: false}
	if srv != nil && srv.TLS != nil {
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	}
	c := &http.Client{Transport: tr, Timeout: 15 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}
