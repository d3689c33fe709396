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
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
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
		if e.StatusCode != http.StatusUnauthorized || e.Result != agenttrail.ResultFailure || e.ActorID != "default-agent" || k8sMeta(t, e).Verb != "list" {
			t.Errorf("event %d = %d %s by %q verb %q; want a 401 failure by default-agent, verb list", i, e.StatusCode, e.Result, e.ActorID, k8sMeta(t, e).Verb)
		}
	}
}

func TestAllowUnmapped(t *testing.T) {
	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{AllowUnmapped: true})

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

func TestImpersonationRecorded(t *testing.T) {
	var gotUser string
	var gotGroups []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotGroups = r.Header.Get("Impersonate-User"), r.Header.Values("Impersonate-Group")
		status(w, http.StatusForbidden, "Forbidden", `nodes is forbidden: User "alice" cannot list resource "nodes"`)
	}))
	defer up.Close()
	proxy, rec := startProxy(t, up.URL, Config{})

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
	if e.Result != agenttrail.ResultFailure || e.ResourceType != "nodes" || e.ResourceID != "" || m.User != "agent-ops" ||
		m.Impersonate == nil || m.Impersonate.User != "alice" || !slices.Equal(m.Groups, []string{"devs", "oncall"}) ||
		!slices.Equal(m.Impersonate.Extra["reason"], []string{"ticket-42"}) {
		t.Errorf("event %s %s, metadata %+v impersonate %+v", e.Result, e.ResourceType, m, m.Impersonate)
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
