package kube

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/capturetest"
	"github.com/agenttrail/agenttrail/servertest"
)

// clientset returns a typed clientset that talks to the proxy with token.
func clientset(t testing.TB, proxyURL, token string) *kubernetes.Clientset {
	t.Helper()
	// The fake API server speaks JSON only; client-go would send protobuf.
	cfg := &rest.Config{Host: proxyURL, BearerToken: token, QPS: -1}
	cfg.ContentType = "application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestClientsetEndToEnd drives the proxy with client-go's typed clientset
// in front of a fake API server, recording through the SDK's Recorder into
// a real server on SQLite, and checks the stored events.
func TestClientsetEndToEnd(t *testing.T) {
	ctx := context.Background()
	srv := servertest.Start(t)
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	rec := capturetest.Recorder(t, srv.URL)

	cluster := newFakeCluster()
	up := httptest.NewServer(cluster)
	defer up.Close()
	proxy, _ := startProxy(t, up.URL, Config{Recorder: rec, Cluster: "prod-eu", Logger: logger})
	pods := clientset(t, proxy, agentToken).CoreV1().Pods("default")

	list, err := pods.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "web" {
		t.Fatalf("List = %v, %v; want the pod web", list, err)
	}
	if p, err := pods.Get(ctx, "web", metav1.GetOptions{}); err != nil || p.Spec.Containers[0].Image != "nginx" {
		t.Fatalf("Get(web) = %v, %v", p, err)
	}
	if _, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("Create(job-1): %v", err)
	}
	if err := pods.Delete(ctx, "job-1", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("Delete(job-1): %v", err)
	}
	if _, err := pods.Get(ctx, "job-1", metav1.GetOptions{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Get(job-1) after delete: %v, want not found", err)
	}
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	var types []string
	for ev := range w.ResultChan() {
		types = append(types, string(ev.Type))
	}
	if !slices.Equal(types, []string{"ADDED", "MODIFIED"}) {
		t.Fatalf("watch events = %v, want ADDED, MODIFIED", types)
	}

	for _, a := range cluster.seenAuth() {
		if a != "Bearer "+upstreamToken {
			t.Errorf("upstream saw Authorization %q, want the upstream token", a)
		}
	}

	type want struct {
		action, path, name, resourceID string
		status                         int
		result                         agenttrail.Result
		description                    string
	}
	wants := []want{
		{"list", "/api/v1/namespaces/default/pods", "", "", 200, agenttrail.ResultSuccess, "list pods in namespace default"},
		{"get", "/api/v1/namespaces/default/pods/web", "web", "default/web", 200, agenttrail.ResultSuccess, "get pods web in namespace default"},
		{"create", "/api/v1/namespaces/default/pods", "", "", 201, agenttrail.ResultSuccess, "create pods in namespace default"},
		{"delete", "/api/v1/namespaces/default/pods/job-1", "job-1", "default/job-1", 200, agenttrail.ResultSuccess, "delete pods job-1 in namespace default"},
		{"get", "/api/v1/namespaces/default/pods/job-1", "job-1", "default/job-1", 404, agenttrail.ResultFailure, `get pods job-1 in namespace default: 404 pods "job-1" not found`},
		{"watch", "/api/v1/namespaces/default/pods", "", "", 200, agenttrail.ResultSuccess, "watch pods in namespace default"},
	}
	events := capturetest.WaitEvents(t, srv.Store, agenttrail.Filter{Source: []string{agenttrail.SourceKube}}, len(wants))
	// Each event is recorded when its response has gone out, so a client's
	// next call may be recorded first: order by start.
	slices.SortStableFunc(events, func(a, b agenttrail.Event) int { return a.Time.Compare(b.Time) })
	for i, e := range events {
		w, m := wants[i], k8sMeta(t, e)
		if e.Action != w.action || m.Verb != w.action || m.APIPath != w.path || m.Name != w.name || e.ResourceID != w.resourceID || e.StatusCode != w.status || e.Result != w.result {
			t.Errorf("event %d = %q %s name %q id %q, %d %s; want %q %s name %q id %q, %d %s",
				i, e.Action, m.APIPath, m.Name, e.ResourceID, e.StatusCode, e.Result, w.action, w.path, w.name, w.resourceID, w.status, w.result)
		}
		if e.Description != w.description {
			t.Errorf("event %d description = %q, want %q", i, e.Description, w.description)
		}
		if e.Source != agenttrail.SourceKube || e.ResourceType != "pods" || e.ActorID != "agent-ops" || e.ProducerID == "" {
			t.Errorf("event %d: source %q, resource type %q, actor %q, producer %q", i, e.Source, e.ResourceType, e.ActorID, e.ProducerID)
		}
		if m.Cluster != "prod-eu" || m.Namespace != "default" || m.Resource != "pods" || m.APIVersion != "v1" || m.User != "agent-ops" {
			t.Errorf("event %d metadata = %+v", i, m)
		}
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), agentToken) || strings.Contains(string(b), upstreamToken) {
			t.Errorf("event %d holds a token: %s", i, b)
		}
	}
	watch := events[len(events)-1]
	if min := float64(2 * watchPause / time.Millisecond); watch.DurationMS < min || !k8sMeta(t, watch).LongRunning {
		t.Errorf("watch event: duration %.1f ms (want ≥ %.0f), long running %v", watch.DurationMS, min, k8sMeta(t, watch).LongRunning)
	}
}
