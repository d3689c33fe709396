package egress

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/agenttrail/agenttrail"
)

// countingUpstream is a plain HTTP server that counts the connections it
// accepts, to prove a refused request never reached it.
func countingUpstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	return countingUpstreamAt(t, "127.0.0.1:0")
}

// countingUpstreamAt is countingUpstream listening on addr.
func countingUpstreamAt(t *testing.T, addr string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("reached"))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestDeniedByRule(t *testing.T) {
	up, conns := countingUpstream(t)
	p := port(t, up)
	res := newFakeResolver(map[string]string{"api.evil.test": "127.0.0.1", "other.test": "127.0.0.1", "good.test": "127.0.0.1"})
	proxy, rec := startProxy(t, Config{
		Resolver: res,
		Policy:   Policy{Allow: []string{"good.test", "*.evil.test"}, Deny: []string{"*.evil.test"}},
	})
	tests := []struct {
		args       []string
		action     string
		host, rule string
	}{
		{[]string{"https://api.evil.test:" + p + "/"}, "CONNECT api.evil.test:" + p, "api.evil.test", "deny:*.evil.test"},
		{[]string{"http://api.evil.test:" + p + "/x"}, "GET http://api.evil.test:" + p + "/x", "api.evil.test", "deny:*.evil.test"},
		{[]string{"https://other.test:" + p + "/"}, "CONNECT other.test:" + p, "other.test", RuleNotAllowed},
		{[]string{"-X", "DELETE", "http://other.test:" + p + "/y"}, "DELETE http://other.test:" + p + "/y", "other.test", RuleNotAllowed},
	}
	for i, tt := range tests {
		out, _, code := curl(t, append([]string{"-x", proxy, "-o", "/dev/null", "-w", statusFormat(tt.action)}, tt.args...)...)
		if out != "403" || (code == 0 && strings.HasPrefix(tt.action, "CONNECT")) {
			t.Errorf("%s: status %s, curl exit %d; want 403 and a failed tunnel", tt.action, out, code)
		}
		e := rec.Wait(t, i+1)[i]
		m := httpMeta(t, e)
		if e.Action != tt.action || e.ResourceID != tt.host {
			t.Errorf("event action, resource = %q, %q; want %q, %q", e.Action, e.ResourceID, tt.action, tt.host)
		}
		if e.Result != agenttrail.ResultDenied || e.StatusCode != http.StatusForbidden || m.Rule != tt.rule {
			t.Errorf("%s: result %s, status %d, rule %q; want denied, 403, %q", tt.action, e.Result, e.StatusCode, m.Rule, tt.rule)
		}
		if !strings.Contains(e.Description, tt.rule) {
			t.Errorf("%s: description %q does not name the rule", tt.action, e.Description)
		}
	}
	if n := res.count("api.evil.test"); n != 0 {
		t.Errorf("a name denied by a name rule was resolved %d times, want never", n)
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("upstream accepted %d connections, want none", n)
	}

	// The allowed name still works, through the same proxy.
	out, errOut, code := curl(t, "-x", proxy, "http://good.test:"+p+"/")
	if code != 0 || out != "reached" {
		t.Fatalf("allowed request: %q, exit %d (%s)", out, code, errOut)
	}
}

// TestPrivateDeniedByDefault checks that, with no policy at all, loopback
// destinations are refused whether named by address, in IPv6 or
// IPv4-mapped form, or by a name that resolves to them.
func TestPrivateDeniedByDefault(t *testing.T) {
	up, conns := countingUpstream(t)
	p := port(t, up)
	proxy, rec := startProxy(t, Config{}) // the system resolver, the default policy
	targets := []struct{ url, host string }{
		{"https://127.0.0.1:" + p + "/", "127.0.0.1"},
		{"http://127.0.0.1:" + p + "/", "127.0.0.1"},
		{"https://localhost:" + p + "/", "localhost"},
		{"http://localhost:" + p + "/", "localhost"},
		{"http://LocalHost.:" + p + "/", "localhost"},
		{"https://[::1]:" + p + "/", "::1"},
		{"https://[::ffff:127.0.0.1]:" + p + "/", "::ffff:127.0.0.1"},
		{"http://127.1.2.3:" + p + "/", "127.1.2.3"},
		{"http://0.0.0.0:" + p + "/", "0.0.0.0"},
	}
	for i, tt := range targets {
		e := refused(t, proxy, rec, i, tt.url)
		if e.StatusCode != http.StatusForbidden || e.Result != agenttrail.ResultDenied || httpMeta(t, e).Rule != RulePrivate || e.ResourceID != tt.host {
			t.Errorf("%s: status %d, result %s, rule %q, resource %q; want 403, denied, %q, %q",
				tt.url, e.StatusCode, e.Result, httpMeta(t, e).Rule, e.ResourceID, RulePrivate, tt.host)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("upstream accepted %d connections, want none", n)
	}
}

// TestDenyUnspecifiedAddress checks that with AllowPrivate and a deny list
// naming the loopback addresses, asking for an unspecified address (which
// the kernel connects to loopback), in any of its forms or through a name
// resolving to it, is refused by the deny rule for the address it would
// reach — and that without the deny list the same request does reach the
// local service, so the refusals are the rule's doing.
func TestDenyUnspecifiedAddress(t *testing.T) {
	up4, conns4 := countingUpstream(t)
	p := port(t, up4)
	_, conns6 := countingUpstreamAt(t, "[::1]:"+p)
	res := newFakeResolver(map[string]string{"zero.test": "0.0.0.0", "zero6.test": "::"})
	deny := []string{"127.0.0.1", "::1", "localhost"}
	proxy, rec := startProxy(t, Config{Resolver: res, Policy: Policy{AllowPrivate: true, Deny: deny}})
	tests := []struct{ url, rule string }{
		{"https://0.0.0.0:" + p + "/", "deny:127.0.0.1"},
		{"http://0.0.0.0:" + p + "/", "deny:127.0.0.1"},
		{"https://[::]:" + p + "/", "deny:::1"},
		{"http://[::]:" + p + "/", "deny:::1"},
		{"https://[::ffff:0.0.0.0]:" + p + "/", "deny:127.0.0.1"},
		{"http://[::ffff:0.0.0.0]:" + p + "/", "deny:127.0.0.1"},
		{"http://[0:0:0:0:0:0:0:0]:" + p + "/", "deny:::1"},
		{"https://zero.test:" + p + "/", "deny:127.0.0.1"},
		{"http://zero6.test:" + p + "/", "deny:::1"},
	}
	for i, tt := range tests {
		e := refused(t, proxy, rec, i, tt.url)
		if m := httpMeta(t, e); e.Result != agenttrail.ResultDenied || m.Rule != tt.rule {
			t.Errorf("%s: result %s, rule %q; want denied, %q", tt.url, e.Result, m.Rule, tt.rule)
		}
	}
	if n4, n6 := conns4.Load(), conns6.Load(); n4 != 0 || n6 != 0 {
		t.Fatalf("the local services accepted %d (IPv4) and %d (IPv6) connections, want none", n4, n6)
	}

	// The control: allowed, 0.0.0.0 and [::] do reach the loopback
	// services, and the event names the address actually dialled.
	open, orec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	for i, tt := range []struct{ url, addr string }{
		{"http://0.0.0.0:" + p + "/", "127.0.0.1:" + p},
		{"http://[::]:" + p + "/", "[::1]:" + p},
	} {
		if out, errOut, code := curl(t, "-x", open, tt.url); code != 0 || out != "reached" {
			t.Fatalf("%s without a deny list: %q, exit %d (%s)", tt.url, out, code, errOut)
		}
		if m := httpMeta(t, orec.Wait(t, i+1)[i]); m.Address != tt.addr {
			t.Errorf("%s: address = %q, want %q", tt.url, m.Address, tt.addr)
		}
	}
}

// TestExplicitAllowReachesPrivate checks the documented exception: an
// explicit allow pattern for a private destination lets it through.
func TestExplicitAllowReachesPrivate(t *testing.T) {
	up, _ := countingUpstream(t)
	p := port(t, up)
	for _, allow := range []string{"localhost", "127.0.0.0/8"} {
		proxy, rec := startProxy(t, Config{Policy: Policy{Allow: []string{allow}}})
		out, errOut, code := curl(t, "-x", proxy, "http://localhost:"+p+"/")
		if code != 0 || out != "reached" {
			t.Fatalf("allow %s: %q, exit %d (%s)", allow, out, code, errOut)
		}
		if e := rec.Wait(t, 1)[0]; e.Result != agenttrail.ResultSuccess || e.StatusCode != 200 {
			t.Errorf("allow %s: result %s, status %d", allow, e.Result, e.StatusCode)
		}
	}
}

// TestResolvedOnce checks the name is looked up once per request and the
// address the policy saw is the one dialled.
func TestResolvedOnce(t *testing.T) {
	up, _ := countingUpstream(t)
	p := port(t, up)
	res := newFakeResolver(map[string]string{"rebind.test": "127.0.0.1"})
	proxy, rec := startProxy(t, Config{Resolver: res, Policy: Policy{Allow: []string{"rebind.test"}}})
	for i := 0; i < 2; i++ {
		if out, errOut, code := curl(t, "-x", proxy, "http://rebind.test:"+p+"/"); out != "reached" {
			t.Fatalf("%q, exit %d (%s)", out, code, errOut)
		}
	}
	if n := res.count("rebind.test"); n != 2 {
		t.Errorf("rebind.test resolved %d times for 2 requests, want 2", n)
	}
	for _, e := range rec.Wait(t, 2) {
		if m := httpMeta(t, e); m.Address != "127.0.0.1:"+p {
			t.Errorf("address = %q, want 127.0.0.1:%s", m.Address, p)
		}
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res := newFakeResolver(nil)
	proxy, rec := startProxy(t, Config{Resolver: res, Policy: Policy{AllowPrivate: true}})
	tests := []struct{ url, action string }{
		{"https://" + closed + "/", "CONNECT " + closed},
		{"http://" + closed + "/a", "GET http://" + closed + "/a"},
		{"https://nxdomain.test/", "CONNECT nxdomain.test:443"},
		{"http://nxdomain.test/b", "GET http://nxdomain.test/b"},
	}
	for i, tt := range tests {
		out, _, _ := curl(t, "-x", proxy, "-o", "/dev/null", "-w", statusFormat(tt.url), tt.url)
		if out != "502" {
			t.Errorf("%s: status %s, want 502", tt.url, out)
		}
		e := rec.Wait(t, i+1)[i]
		if e.Action != tt.action || e.Result != agenttrail.ResultError || e.StatusCode != http.StatusBadGateway || e.Description == "" {
			t.Errorf("event %q: result %s, status %d, description %q; want %q, error, 502, a reason",
				e.Action, e.Result, e.StatusCode, e.Description, tt.action)
		}
	}
}

// refused fetches url with curl through proxy, wants the proxy's 403, and
// returns the event recorded for it, the i-th.
func refused(t *testing.T, proxy string, rec *memRecorder, i int, url string) agenttrail.Event {
	t.Helper()
	out, _, _ := curl(t, "-x", proxy, "-o", "/dev/null", "-w", statusFormat(url), url)
	if out != "403" {
		t.Errorf("%s: status %s, want 403", url, out)
	}
	return rec.Wait(t, i+1)[i]
}

// statusFormat is the curl --write-out format printing the status the proxy
// answered: for a tunnel, the answer to CONNECT.
func statusFormat(target string) string {
	if strings.HasPrefix(target, "https") || strings.HasPrefix(target, "CONNECT") {
		return "%{http_connect}"
	}
	return "%{http_code}"
}
