package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

func TestUnknownCredentialRefused(t *testing.T) {
	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})

	for _, token := range []string{"stolen-or-guessed", ""} {
		_, err := clientset(t, proxy, token).CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
		if err == nil {
			t.Fatalf("List with token %q: no error, want 401", token)
		}
	}
	// A refused request does not get to name its actor either.
	req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/pods", nil)
	req.Header.Set(capture.HeaderActorID, "agent-ops")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("request naming an actor without a token: %v, %v", resp, err)
	}
	if n := len(cluster.seenAuth()); n != 0 {
		t.Errorf("the upstream saw %d requests from unknown credentials, want 0", n)
	}
	for i, e := range rec.Wait(t, 3) {
		if e.StatusCode != http.StatusUnauthorized || e.Result != agenttrail.ResultDenied || e.ActorID != "default-agent" || e.Action != "list" {
			t.Errorf("event %d = %d %s by %q action %q; want a 401 denied by default-agent, action list", i, e.StatusCode, e.Result, e.ActorID, k8sMeta(t, e).Verb)
		}
	}
}

// TestNewRefusesOpenProxy checks a proxy that maps no token and does not
// say it means to admit everyone is not built: it would hand the cluster
// credential to whoever reaches it.
func TestNewRefusesOpenProxy(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:1")
	for _, ids := range []*capture.Identities{nil, {Default: capture.Actor{ID: "a"}}} {
		if _, err := New(Config{Upstream: u, Cluster: "c", Recorder: &memRecorder{}, Identities: ids}); err == nil {
			t.Errorf("New with identities %+v: no error, want one", ids)
		}
	}
	if _, err := New(Config{Upstream: u, Cluster: "c", Recorder: &memRecorder{}, Identities: &capture.Identities{AllowUnmapped: true}}); err != nil {
		t.Errorf("New with AllowUnmapped: %v", err)
	}
}

func TestAllowUnmapped(t *testing.T) {
	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}, AllowUnmapped: true}
	ids.Add(agentToken, capture.Actor{ID: "agent-ops"})
	proxy, rec := startProxy(t, up.URL, Config{Identities: ids})

	req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/default/pods/web", nil)
	req.Header.Set(capture.HeaderActorID, "agent-7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	if e := rec.Wait(t, 1)[0]; e.ActorID != "agent-7" || e.Result != agenttrail.ResultSuccess {
		t.Errorf("event by %q, %s; want agent-7, success", e.ActorID, e.Result)
	}
}

// impersonators maps agentToken to agent-ops, allowed to impersonate, and
// otherToken to agent-dev, who is not.
func impersonators() *capture.Identities {
	ids := &capture.Identities{Default: capture.Actor{ID: "default-agent"}}
	ids.Add(agentToken, capture.Actor{ID: "agent-ops", Impersonate: true})
	ids.Add(otherToken, capture.Actor{ID: "agent-dev"})
	return ids
}

const otherToken = "agent-proxy-token-2"

func TestImpersonationRecorded(t *testing.T) {
	var gotUser string
	var gotGroups []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotGroups = r.Header.Get("Impersonate-User"), r.Header.Values("Impersonate-Group")
		status(w, http.StatusForbidden, "Forbidden", `nodes is forbidden: User "alice" cannot list resource "nodes"`)
	}))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{Identities: impersonators()})

	req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Impersonate-User", "alice")
	req.Header.Add("Impersonate-Group", "devs")
	req.Header.Add("Impersonate-Group", "oncall")
	req.Header.Set("Impersonate-Extra-Reason", "ticket-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || gotUser != "alice" || !slices.Equal(gotGroups, []string{"devs", "oncall"}) {
		t.Fatalf("status %d, upstream saw user %q groups %v; want 403 and the impersonation forwarded", resp.StatusCode, gotUser, gotGroups)
	}
	e := rec.Wait(t, 1)[0]
	m := k8sMeta(t, e)
	if e.Result != agenttrail.ResultDenied || e.ResourceType != "nodes" || e.ResourceID != "" || m.User != "agent-ops" ||
		m.Impersonate == nil || m.Impersonate.User != "alice" || !slices.Equal(m.Groups, []string{"devs", "oncall"}) ||
		!slices.Equal(m.Impersonate.Extra["reason"], []string{"ticket-42"}) {
		t.Errorf("event %s %s, metadata %+v impersonate %+v", e.Result, e.ResourceType, m, m.Impersonate)
	}
	// The API server's refusal is kept, not just its status.
	const msg = `nodes is forbidden: User "alice" cannot list resource "nodes"`
	if m.Reason != "Forbidden" || m.Message != msg || e.Description != "list nodes: 403 "+msg {
		t.Errorf("reason %q, message %q, description %q; want the upstream's Status", m.Reason, m.Message, e.Description)
	}
}

// TestImpersonationRefused impersonates with client-go as an agent the
// identity map does not allow to: the proxy refuses before the cluster
// sees anything, since the request would act under the proxy's credential.
func TestImpersonationRefused(t *testing.T) {
	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{Identities: impersonators()})

	cfg := &rest.Config{Host: proxy, BearerToken: otherToken, QPS: -1,
		Impersonate: rest.ImpersonationConfig{UserName: "system:admin", Groups: []string{"system:masters"}}}
	cfg.ContentType = "application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Secrets("kube-system").List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("List secrets impersonating system:admin = %v, want forbidden", err)
	}
	// A header spelt in lower case is the same header.
	req, _ := http.NewRequest(http.MethodGet, proxy+"/api/v1/namespaces/kube-system/secrets", nil)
	req.Header.Set("Authorization", "Bearer "+otherToken)
	req.Header["impersonate-user"] = []string{"system:admin"}
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("lower-case Impersonate-User: %v, %v; want 403", resp, err)
	}
	if n := len(cluster.seenAuth()); n != 0 {
		t.Fatalf("the cluster saw %d requests, want none", n)
	}
	for i, e := range rec.Wait(t, 2) {
		m := k8sMeta(t, e)
		if e.Result != agenttrail.ResultDenied || e.StatusCode != http.StatusForbidden || e.ActorID != "agent-dev" ||
			m.Impersonate == nil || m.Impersonate.User != "system:admin" || !strings.Contains(e.Description, "impersonat") {
			t.Errorf("event %d: %s %d by %q, impersonate %+v, description %q; want a 403 denied by agent-dev naming the impersonation",
				i, e.Result, e.StatusCode, e.ActorID, m.Impersonate, e.Description)
		}
	}

	// The same without impersonation goes through.
	if _, err := clientset(t, proxy, otherToken).CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatalf("List pods without impersonation: %v", err)
	}
}

// TestPathNormalised sends paths with dot segments, raw and encoded, as an
// agent probing the proxy would: a path is recorded and forwarded as the
// API server reads it, and one that normalises out of /api and /apis is
// refused.
func TestPathNormalised(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"kind": "SecretList", "apiVersion": "v1", "items": []any{}})
	}))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})

	tests := []struct {
		path, action, resource, apiPath string
		status                          int
	}{
		{"/api/v1/namespaces/default/pods/x/../../secrets", "list", "secrets", "/api/v1/namespaces/default/secrets", 200},
		{"/api/v1/namespaces/default/pods/x/%2e%2e/%2E%2E/secrets", "list", "secrets", "/api/v1/namespaces/default/secrets", 200},
		{"/api//v1/namespaces/default/secrets", "list", "secrets", "/api/v1/namespaces/default/secrets", 200},
		{"/api/v1/namespaces/default/pods/../../../../../version", "get", ResourceDiscovery, "/version", 400},
		{"/api/../..", "get", "", "/", 400},
		{"/apis/%2e%2e/healthz", "get", "", "/healthz", 400},
		{"/api/v1/../../../../etc/passwd", "get", "", "/etc/passwd", 400},
	}
	for i, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, proxy+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+agentToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		e := rec.Wait(t, i+1)[i]
		m := k8sMeta(t, e)
		wantResult := agenttrail.ResultSuccess
		if tt.status != 200 {
			wantResult = agenttrail.ResultDenied
		}
		if e.Action != tt.action || e.ResourceType != tt.resource || m.APIPath != tt.apiPath || e.Result != wantResult {
			t.Errorf("GET %s: event %q %q path %q %s; want %q %q path %q %s", tt.path, e.Action, e.ResourceType, m.APIPath, e.Result, tt.action, tt.resource, tt.apiPath, wantResult)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/secrets", "/api/v1/namespaces/default/secrets"}; !slices.Equal(seen, want) {
		t.Errorf("upstream saw %q, want %q", seen, want)
	}
}

// TestDiscoveryRecorded runs client-go's discovery, as kubectl does before
// each command: every request is recorded with resource_type discovery.
func TestDiscoveryRecorded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/version":
			writeJSON(w, http.StatusOK, map[string]string{"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
		case "/api":
			writeJSON(w, http.StatusOK, metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"}})
		case "/apis":
			writeJSON(w, http.StatusOK, metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}})
		default:
			status(w, http.StatusNotFound, "NotFound", "not here")
		}
	}))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})
	cs := clientset(t, proxy, agentToken)
	if v, err := cs.Discovery().ServerVersion(); err != nil || v.GitVersion != "v1.33.0" {
		t.Fatalf("ServerVersion = %v, %v", v, err)
	}
	if _, err := cs.Discovery().ServerGroups(); err != nil {
		t.Fatalf("ServerGroups: %v", err)
	}
	events := rec.Wait(t, 3)
	paths := map[string]bool{}
	for _, e := range events {
		if e.ResourceType != ResourceDiscovery || e.Action != "get" || e.Result != agenttrail.ResultSuccess {
			t.Errorf("event %q %q %q: want a successful get of type discovery", e.Action, e.ResourceType, e.ResourceID)
		}
		paths[e.ResourceID] = true
	}
	for _, p := range []string{"/version", "/api", "/apis"} {
		if !paths[p] {
			t.Errorf("no discovery event for %s among %v", p, paths)
		}
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	addr := up.URL
	up.Close()
	proxy, rec := startProxy(t, addr, Config{})

	_, err := clientset(t, proxy, agentToken).CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err == nil {
		t.Fatal("Get through a proxy without upstream: no error")
	}
	if e := rec.Wait(t, 1)[0]; e.StatusCode != http.StatusBadGateway || e.Result != agenttrail.ResultError {
		t.Errorf("event %d %s, want 502 error", e.StatusCode, e.Result)
	}
}

// TestKubeconfig serves the proxy over TLS with a self-signed certificate
// and drives it with a clientset loaded from the kubeconfig it writes, as
// kubectl would load it.
func TestKubeconfig(t *testing.T) {
	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	u, _ := url.Parse(up.URL)
	mem := &memRecorder{}
	ids := &capture.Identities{}
	ids.Add(agentToken, capture.Actor{ID: "agent-ops"})
	p, err := New(Config{Upstream: u, Cluster: "prod-eu", UpstreamToken: upstreamToken, Recorder: mem, Identities: ids, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cert, caPEM, err := SelfSignedCert([]string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()

	var buf bytes.Buffer
	if err := WriteKubeconfig(&buf, Kubeconfig{Server: srv.URL, Cluster: "prod-eu", Token: agentToken, CAPEM: caPEM}); err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(buf.Bytes())
	if err != nil {
		t.Fatalf("client-go cannot load the kubeconfig: %v\n%s", err, buf.String())
	}
	cfg.ContentType = "application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{}); err != nil {
		t.Fatalf("Get(web) with the written kubeconfig: %v", err)
	}
	if e := mem.Wait(t, 1)[0]; e.ActorID != "agent-ops" || e.Result != agenttrail.ResultSuccess {
		t.Errorf("event by %q, %s; want agent-ops, success", e.ActorID, e.Result)
	}

	buf.Reset()
	WriteKubeconfig(&buf, Kubeconfig{Server: "https://127.0.0.1:7331", Cluster: `quoted "name"`})
	if cfg, err := clientcmd.RESTConfigFromKubeConfig(buf.Bytes()); err != nil || cfg.BearerToken != TokenPlaceholder {
		t.Errorf("kubeconfig without a token: %v, %+v", err, cfg)
	}
}
