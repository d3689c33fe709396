package kube

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/capturetest"
)

const (
	upstreamToken = "upstream-sa-token-Xk29"
	agentToken    = "agent-proxy-token-1"
)

// memRecorder keeps the events it is given, for tests to inspect.
type memRecorder = capturetest.Events

// fakeCluster serves enough of the core/v1 pods API for a clientset's list,
// get, create, delete and watch, and refuses any credential but
// upstreamToken. It remembers every Authorization header it saw.
type fakeCluster struct {
	mu    sync.Mutex
	pods  map[string]corev1.Pod // namespace/name
	auths []string
}

func newFakeCluster() *fakeCluster {
	return &fakeCluster{pods: map[string]corev1.Pod{"default/web": pod("default", "web")}}
}

func pod(ns, name string) corev1.Pod {
	return corev1.Pod{
		TypeMeta:   metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "nginx"}}},
	}
}

func (c *fakeCluster) seenAuth() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.auths...)
}

func (c *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.auths = append(c.auths, r.Header.Get("Authorization"))
	c.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+upstreamToken {
		status(w, http.StatusUnauthorized, "Unauthorized", "bad token")
		return
	}
	// /api/v1/namespaces/{ns}/pods[/{name}]
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 5 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
		status(w, http.StatusNotFound, "NotFound", "the server could not find the requested resource")
		return
	}
	ns, name := parts[3], ""
	if len(parts) > 5 {
		name = parts[5]
	}
	switch {
	case r.Method == http.MethodGet && name == "" && r.URL.Query().Get("watch") == "true":
		c.watch(w, ns)
	case r.Method == http.MethodGet && name == "":
		c.mu.Lock()
		list := corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, ListMeta: metav1.ListMeta{ResourceVersion: "5"}}
		for _, p := range c.pods {
			if p.Namespace == ns {
				list.Items = append(list.Items, p)
			}
		}
		c.mu.Unlock()
		writeJSON(w, http.StatusOK, list)
	case r.Method == http.MethodGet:
		c.mu.Lock()
		p, ok := c.pods[ns+"/"+name]
		c.mu.Unlock()
		if !ok {
			status(w, http.StatusNotFound, "NotFound", `pods "`+name+`" not found`)
			return
		}
		writeJSON(w, http.StatusOK, p)
	case r.Method == http.MethodPost && name == "":
		var p corev1.Pod
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		p.Namespace, p.ResourceVersion = ns, "2"
		p.TypeMeta = metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"}
		c.mu.Lock()
		c.pods[ns+"/"+p.Name] = p
		c.mu.Unlock()
		writeJSON(w, http.StatusCreated, p)
	case r.Method == http.MethodDelete && name != "":
		c.mu.Lock()
		_, ok := c.pods[ns+"/"+name]
		delete(c.pods, ns+"/"+name)
		c.mu.Unlock()
		if !ok {
			status(w, http.StatusNotFound, "NotFound", `pods "`+name+`" not found`)
			return
		}
		writeJSON(w, http.StatusOK, metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess})
	default:
		status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "not supported by the fake")
	}
}

// watchPause is how long the fake's watch stays open between its events,
// so its recorded duration is measurable.
const watchPause = 150 * time.Millisecond

// watch streams two events, flushing each, then ends the watch.
func (c *fakeCluster) watch(w http.ResponseWriter, ns string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for i, typ := range []string{"ADDED", "MODIFIED"} {
		p := pod(ns, "watched")
		p.ResourceVersion = string(rune('6' + i))
		raw, _ := json.Marshal(p)
		enc.Encode(metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: raw}})
		w.(http.Flusher).Flush()
		time.Sleep(watchPause)
	}
}

func status(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	writeJSON(w, code, metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// startProxy serves a Proxy for cfg in front of upstream and returns its
// URL. cfg.Recorder defaults to a new memRecorder, returned too.
func startProxy(t testing.TB, upstream string, cfg Config) (string, *memRecorder) {
	t.Helper()
	url, mem, _ := startStoppableProxy(t, upstream, cfg)
	return url, mem
}

// startStoppableProxy is startProxy that also returns stop: it shuts the
// server down and returns once no request is left that could record an
// event. Later calls do nothing.
func startStoppableProxy(t testing.TB, upstream string, cfg Config) (string, *memRecorder, func()) {
	t.Helper()
	var mem *memRecorder
	if cfg.Recorder == nil {
		mem = &memRecorder{}
		cfg.Recorder = mem
	}
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream = u
	if cfg.Cluster == "" {
		cfg.Cluster = "test-cluster"
	}
	if cfg.UpstreamToken == "" {
		cfg.UpstreamToken = upstreamToken
	}
	if cfg.Identities == nil {
		cfg.Identities = &capture.Identities{Default: capture.Actor{ID: "default-agent"}}
		cfg.Identities.Add(agentToken, capture.Actor{ID: "agent-ops", Name: "Ops agent"})
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
			srv.Close() // waits for every request in flight, streams included
			p.Close()
		})
	}
	t.Cleanup(stop)
	return srv.URL, mem, stop
}

// k8sMeta decodes an event's metadata.k8s.
func k8sMeta(t testing.TB, e agenttrail.Event) K8s {
	t.Helper()
	var m struct {
		K8s K8s `json:"k8s"`
	}
	if err := json.Unmarshal(e.Metadata, &m); err != nil {
		t.Fatalf("metadata %s: %v", e.Metadata, err)
	}
	return m.K8s
}
