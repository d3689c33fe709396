package egress

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/agenttrail/agenttrail"
)

// seenRequest is what a plain upstream saw of one request.
type seenRequest struct {
	host   string
	uri    string
	header http.Header
	body   string
}

// plainUpstream answers /status/N with status N and anything else with
// "ok:" and the request body, and keeps what it saw.
func plainUpstream(t *testing.T) (*httptest.Server, func() []seenRequest) {
	t.Helper()
	var mu sync.Mutex
	var seen []seenRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, seenRequest{r.Host, r.RequestURI, r.Header.Clone(), string(b)})
		mu.Unlock()
		switch r.URL.Path {
		case "/status/404":
			http.Error(w, "no such thing", http.StatusNotFound)
		case "/status/500":
			http.Error(w, "broken", http.StatusInternalServerError)
		default:
			w.Header().Set("X-Upstream", "yes")
			io.WriteString(w, "ok:"+string(b))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seenRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]seenRequest(nil), seen...)
	}
}

func TestForwardCurl(t *testing.T) {
	up, seen := plainUpstream(t)
	p := port(t, up)
	proxy, rec := startProxy(t, Config{
		Resolver:   newFakeResolver(map[string]string{"example.com": "127.0.0.1"}),
		Identities: identities(),
		Policy:     Policy{AllowPrivate: true},
	})
	out, errOut, code := curl(t, "-x", proxy, "-H", "X-Agenttrail-Actor-Id: agent-7", "-H", "Connection: X-Drop-Me", "-H", "X-Drop-Me: 1",
		"--data-binary", "payload", "http://example.com:"+p+"/items?page=2")
	if code != 0 || out != "ok:payload" {
		t.Fatalf("curl = %q, exit %d (%s)", out, code, errOut)
	}
	req := seen()[0]
	if req.host != "example.com:"+p || req.uri != "/items?page=2" || req.body != "payload" {
		t.Errorf("upstream saw host %q, uri %q, body %q", req.host, req.uri, req.body)
	}
	for _, h := range []string{"X-Agenttrail-Actor-Id", "Proxy-Authorization", "Proxy-Connection", "X-Drop-Me"} {
		if v := req.header.Get(h); v != "" {
			t.Errorf("upstream saw %s: %q, want it removed", h, v)
		}
	}
	e := rec.Wait(t, 1)[0]
	m := httpMeta(t, e)
	if want := "POST http://example.com:" + p + "/items?page=2"; e.Action != want {
		t.Errorf("action = %q, want %q", e.Action, want)
	}
	if e.ActorID != "agent-7" || e.Result != agenttrail.ResultSuccess || e.StatusCode != 200 || e.ResourceID != "example.com" {
		t.Errorf("actor %q, result %s, status %d, resource %q", e.ActorID, e.Result, e.StatusCode, e.ResourceID)
	}
	if m.TLS || m.Method != "POST" || m.Path != "/items?page=2" || m.BytesOut != int64(len("payload")) || m.BytesIn != int64(len("ok:payload")) {
		t.Errorf("metadata.http = %+v", m)
	}
}

// TestForwardProxyAuthConsumed checks Proxy-Authorization picks the actor
// and never reaches the upstream.
func TestForwardProxyAuthConsumed(t *testing.T) {
	up, seen := plainUpstream(t)
	proxy, rec := startProxy(t, Config{Identities: identities(), Policy: Policy{AllowPrivate: true}})
	out, errOut, code := curl(t, "-x", proxy, "--proxy-user", "ci:sk-proxy-1", "-H", "X-Agenttrail-Actor-Id: someone-else", up.URL+"/")
	if code != 0 || out != "ok:" {
		t.Fatalf("curl = %q, exit %d (%s)", out, code, errOut)
	}
	if v := seen()[0].header.Get("Proxy-Authorization"); v != "" {
		t.Errorf("upstream saw Proxy-Authorization %q", v)
	}
	if e := rec.Wait(t, 1)[0]; e.ActorID != "agent-ci" {
		t.Errorf("actor = %q, want agent-ci: a mapped credential wins over the header", e.ActorID)
	}
	// Without a credential or header: the default actor.
	curl(t, "-x", proxy, up.URL+"/")
	if e := rec.Wait(t, 2)[1]; e.ActorID != "default-agent" {
		t.Errorf("actor = %q, want default-agent", e.ActorID)
	}
}

func TestForwardUpstreamStatus(t *testing.T) {
	up, _ := plainUpstream(t)
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	c := proxiedClient(t, proxy, nil)
	for i, code := range []int{404, 500} {
		resp, err := c.Get(up.URL + "/status/" + strconv.Itoa(code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("status = %d, want %d", resp.StatusCode, code)
		}
		e := rec.Wait(t, i+1)[i]
		if e.StatusCode != code || e.Result != agenttrail.ResultFailure {
			t.Errorf("event status %d, result %s; want %d, failure", e.StatusCode, e.Result, code)
		}
	}
}

// TestForwardSecretInQuery checks a password in a proxied URL is redacted
// from the action and the path before the event is recorded.
func TestForwardSecretInQuery(t *testing.T) {
	up, seen := plainUpstream(t)
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	const secret = "hunter2-Zq9"
	target := up.URL + "/login?user=bob&password=" + secret + "&api_key=" + secret + "x"
	if _, errOut, code := curl(t, "-x", proxy, target); code != 0 {
		t.Fatalf("curl exit %d (%s)", code, errOut)
	}
	if got := seen()[0].uri; !strings.Contains(got, secret) {
		t.Fatalf("upstream saw %q: the request itself must be forwarded untouched", got)
	}
	e := rec.Wait(t, 1)[0]
	if strings.Contains(e.Action, secret) || strings.Contains(string(e.Metadata), secret) || strings.Contains(e.Description, secret) {
		t.Errorf("secret reached the event: action %q, metadata %s", e.Action, e.Metadata)
	}
	if !strings.Contains(e.Action, "user=bob") || !strings.Contains(e.Action, "[REDACTED") {
		t.Errorf("action = %q, want the query kept with the secret replaced", e.Action)
	}
}

// TestForwardUserInfoNotRecorded checks user info in the URL is neither
// recorded nor mistaken for the proxy credential.
func TestForwardUserInfoNotRecorded(t *testing.T) {
	up, _ := plainUpstream(t)
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := strings.TrimPrefix(up.URL, "http://")
	io.WriteString(conn, "GET http://bob:s3cret-pw@"+host+"/x HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("response %v, %v", resp, err)
	}
	e := rec.Wait(t, 1)[0]
	if strings.Contains(e.Action, "s3cret") || strings.Contains(string(e.Metadata), "s3cret") {
		t.Errorf("user info recorded: %q %s", e.Action, e.Metadata)
	}
}

func TestNotAProxyRequest(t *testing.T) {
	proxy, rec := startProxy(t, Config{Policy: Policy{AllowPrivate: true}})
	resp, err := http.Get(proxy + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status = %d, want 400", resp.StatusCode)
	}
	if n := rec.Len(); n != 0 {
		t.Errorf("%d events for a request that is not proxied, want none", n)
	}
}

// TestUnknownCredentialRefused checks the rule every proxy with identities
// follows: once credentials are mapped, a request without one of them is
// refused (407, recorded as denied) and never reaches its destination,
// whatever actor it names; with AllowUnmapped it goes through.
func TestUnknownCredentialRefused(t *testing.T) {
	up, conns := countingUpstream(t)
	ids := identities()
	ids.AllowUnmapped = false
	proxy, rec := startProxy(t, Config{Identities: ids, Policy: Policy{AllowPrivate: true}})
	tests := []struct {
		name string
		args []string
	}{
		{"no credential, plain", []string{"-H", "X-Agenttrail-Actor-Id: agent-ci", up.URL + "/"}},
		{"no credential, tunnel", []string{"--proxytunnel", up.URL + "/"}},
		{"wrong credential, plain", []string{"--proxy-user", "ci:guessed", up.URL + "/"}},
		{"wrong credential, tunnel", []string{"--proxy-user", "ci:guessed", "--proxytunnel", up.URL + "/"}},
	}
	for i, tt := range tests {
		format := "%{http_code}"
		if slices.Contains(tt.args, "--proxytunnel") {
			format = "%{http_connect}"
		}
		out, _, _ := curl(t, append([]string{"-x", proxy, "-o", "/dev/null", "-w", format}, tt.args...)...)
		if out != "407" {
			t.Errorf("%s: status %s, want 407", tt.name, out)
		}
		e := rec.Wait(t, i+1)[i]
		if e.Result != agenttrail.ResultDenied || e.StatusCode != 407 || e.ActorID != "default-agent" ||
			httpMeta(t, e).Rule != RuleUnknownCredential || e.ResourceID != "127.0.0.1" {
			t.Errorf("%s: event %s %d by %q rule %q resource %q; want denied 407 by default-agent, rule %s",
				tt.name, e.Result, e.StatusCode, e.ActorID, httpMeta(t, e).Rule, e.ResourceID, RuleUnknownCredential)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the destination accepted %d connections from refused requests", n)
	}
	if out, errOut, code := curl(t, "-x", proxy, "--proxy-user", "ci:sk-proxy-1", up.URL+"/"); code != 0 || out != "reached" {
		t.Fatalf("mapped credential: %q, exit %d (%s)", out, code, errOut)
	}
}
