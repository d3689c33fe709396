package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/wire"
)

// upstreamSeen is a fake upstream that keeps the traceparent of every
// request it serves.
type upstreamSeen struct {
	mu   sync.Mutex
	seen []string
	next http.Handler
}

func (u *upstreamSeen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Get("Traceparent"))
	u.mu.Unlock()
	u.next.ServeHTTP(w, r)
}

func (u *upstreamSeen) traceparents() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

func startUpstream(t *testing.T, h http.HandlerFunc) (*upstreamSeen, string) {
	t.Helper()
	u := &upstreamSeen{next: h}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return u, srv.URL
}

// startCapture runs `agenttrail <args>` recording into p and waits until it
// listens on addr.
func startCapture(t *testing.T, p *process, addr string, args ...string) {
	t.Helper()
	args = append(args, "--listen", addr, "--server", p.url, "--token", p.token, "--heartbeat", "0", "--spool", t.TempDir())
	cmd := exec.Command(binary, args...)
	stderr := &syncWriter{w: &bytes.Buffer{}}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("agenttrail %s is not listening on %s: %v\n%s", strings.Join(args[:2], " "), addr, err, stderr.w)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traceContext carries the tracer's context on every request a client
// sends, as OpenTelemetry's HTTP instrumentation does.
type traceContext struct{ next http.RoundTripper }

func (t traceContext) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}).Inject(r.Context(), propagation.HeaderCarrier(r.Header))
	return t.next.RoundTrip(r)
}

// TestFollowOneTask is the acceptance test of following one task across
// surfaces: a program with an OpenTelemetry tracer opens a root span and,
// under it, makes an LLM call through `proxy llm` with the official OpenAI
// client, runs `agenttrail exec -- sh -c 'curl …'` through `proxy egress`,
// and lists pods with client-go through `proxy kube`; its root span goes to
// the trail over OTLP. GET /v1/events?trace_id= returns every event of the
// task, each a child of the right span, and each upstream received a
// traceparent naming the span recorded for its call.
func TestFollowOneTask(t *testing.T) {
	p := startServe(t, freeAddr(t), t.TempDir())

	llmUp, llmURL := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"delete pod web"},"finish_reason":"stop"}],`+
			`"usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150}}`)
	})
	webUp, webURL := startUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	kubeUp, kubeURL := startUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
			Items: []corev1.Pod{{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}}}})
	})

	llmAddr, egressAddr, kubeAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	startCapture(t, p, llmAddr, "proxy", "llm", "--upstream", llmURL, "--actor-id", "agent-ops")
	startCapture(t, p, egressAddr, "proxy", "egress", "--allow-private", "--actor-id", "agent-ops")
	startCapture(t, p, kubeAddr, "proxy", "kube", "--upstream", kubeURL, "--cluster", "test", "--upstream-token", "cluster-sa-token", "--plain-http", "--allow-unmapped", "--actor-id", "agent-ops")

	// The agent program: a tracer whose spans go to the trail over OTLP.
	ctx := context.Background()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(p.url+"/v1/otlp/v1/traces"),
		otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + p.token}))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithResource(resource.NewSchemaless(
		attribute.String("service.name", "ops-agent"), attribute.String("gen_ai.agent.id", "agent-ops"))))
	ctx, root := tp.Tracer("ops-agent").Start(ctx, "invoke_agent clean up")
	// The session travels as W3C baggage, as an agent's tracing sets it.
	member, _ := baggage.NewMember("agenttrail.session_id", "task-7")
	bag, _ := baggage.New(member)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	traced := &http.Client{Transport: traceContext{http.DefaultTransport}}

	ai := openai.NewClient(option.WithBaseURL("http://"+llmAddr+"/v1/"), option.WithAPIKey("sk-test"),
		option.WithHTTPClient(traced), option.WithMaxRetries(0))
	if _, err := ai.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("what should I clean up?")},
	}); err != nil {
		t.Fatalf("chat through proxy llm: %v", err)
	}

	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	sh := exec.Command(binary, "exec", "--server", p.url, "--token", p.token, "--heartbeat", "0", "--spool", t.TempDir(), "--actor-id", "agent-ops", "--",
		"sh", "-c", `curl -sS --max-time 15 -x http://`+egressAddr+` -H "traceparent: $TRACEPARENT" -H "X-Agenttrail-Session-Id: $AGENTTRAIL_SESSION_ID" `+webURL+`/hello`)
	sh.Env = append(os.Environ(), "TRACEPARENT="+carrier.Get("traceparent"), "AGENTTRAIL_SESSION_ID=task-7")
	if out, err := sh.CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("agenttrail exec -- curl: %v\n%s", err, out)
	}

	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + kubeAddr, BearerToken: "agent-token", QPS: -1,
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper { return traceContext{rt} }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list pods through proxy kube: %v", err)
	}
	root.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("export the root span: %v", err)
	}

	traceID := root.SpanContext().TraceID().String()
	events := waitTrace(t, p, traceID, 5)
	bySource := map[string]agenttrail.Event{}
	for _, e := range events {
		bySource[e.Source] = e
	}
	rootSpan := root.SpanContext().SpanID().String()
	for _, c := range []struct {
		source, parent string
		seen           *upstreamSeen
	}{
		{"otel", "", nil},
		{agenttrail.SourceLLM, rootSpan, llmUp},
		{agenttrail.SourceShell, rootSpan, nil},
		{agenttrail.SourceEgress, bySource[agenttrail.SourceShell].SpanID, webUp},
		{agenttrail.SourceKube, rootSpan, kubeUp},
	} {
		e, ok := bySource[c.source]
		switch {
		case !ok:
			t.Errorf("no %s event in trace %s", c.source, traceID)
			continue
		case e.ParentSpanID != c.parent || e.SpanID == "":
			t.Errorf("%s event: span %q parent %q, want a span whose parent is %q", c.source, e.SpanID, e.ParentSpanID, c.parent)
		case c.source != "otel" && e.SessionID != "task-7":
			t.Errorf("%s event: session %q, want task-7", c.source, e.SessionID)
		}
		if c.seen != nil {
			if got, want := c.seen.traceparents(), "00-"+traceID+"-"+e.SpanID+"-01"; len(got) != 1 || got[0] != want {
				t.Errorf("%s upstream got traceparent %q, want [%s]", c.source, got, want)
			}
		}
	}
	if e := bySource["otel"]; e.SpanID != rootSpan {
		t.Errorf("root event span %s, want %s", e.SpanID, rootSpan)
	}

	// agenttrail trace prints the task as a tree: the root, its three
	// children, and the egress call under the exec that made it.
	out, err := exec.Command(binary, "trace", "--server", p.url, "--token", p.token, traceID).CombinedOutput()
	if err != nil {
		t.Fatalf("agenttrail trace: %v\n%s", err, out)
	}
	t.Logf("agenttrail trace %s:\n%s", traceID, out)
	var tree []string
	for _, l := range strings.Split(string(out), "\n") {
		for _, want := range []string{"otel  invoke_agent", "llm-proxy  chat.completions", "shell  shell_exec", "forward-proxy  GET", "k8s-proxy  list"} {
			if strings.Contains(l, want) {
				_, rest, _ := strings.Cut(l, "  ") // after the time column
				tree = append(tree, strings.TrimSpace(rest[:strings.Index(rest, want)]))
			}
		}
	}
	if want := []string{"", "├─", "├─", "│  └─", "└─"}; strings.Join(tree, "|") != strings.Join(want, "|") {
		t.Errorf("agenttrail trace drew %q, want %q:\n%s", tree, want, out)
	}
}

// waitTrace polls GET /v1/events?trace_id=…&sort=time until it returns n
// events, failing with what it has after 30 s.
func waitTrace(t *testing.T, p *process, traceID string, n int) []agenttrail.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, p.url+"/v1/events?"+url.Values{"trace_id": {traceID}, "sort": {"time"}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page wire.Page
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/events?trace_id=: %d %s", resp.StatusCode, b)
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Events) >= n || time.Now().After(deadline) {
			if len(page.Events) != n {
				t.Fatalf("trace %s has %d events, want %d: %s", traceID, len(page.Events), n, b)
			}
			return page.Events
		}
		time.Sleep(100 * time.Millisecond)
	}
}
