package storetest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// The value sets Events draws from, as arrays so that no caller can change
// them. The empty project is included on purpose: it is the "" bucket of
// by=project.
func surfaces() [7]string {
	return [7]string{
		agenttrail.SourceMCP, agenttrail.SourceKube, agenttrail.SourceShell, agenttrail.SourceEgress,
		agenttrail.SourceSandbox, agenttrail.SourceAWS, agenttrail.SourceLLM,
	}
}

func orgs() [2]string     { return [2]string{"acme", "globex"} }
func projects() [4]string { return [4]string{"", "web", "infra", "data"} }
func models() [3]string   { return [3]string{"gpt-4o", "claude-sonnet-4", "gemini-2.5-pro"} }
func actorNames() [6]string {
	return [6]string{"Build Bot", "Ågent Ünïcode", "reviewer", "Deploy-Agent", "データ係", "🤖 helper"}
}

// Events returns n realistic, normalized and validated events of all seven
// capture surfaces, in orgs "acme" and "globex" and projects "", "web",
// "infra" and "data", by a dozen agents "agent-00".. plus a user and a
// system actor, with times uniformly spread over [start, start+span), at
// microsecond precision (what every store keeps). About one event in twenty
// shares the time of the one before it, so sorts must break ties by seq.
// llm-proxy events carry metadata.llm usage; one in five has no known price.
// The same seed always gives the same events, ids included, so a test can
// append them twice to check deduplication. Producers (one per actor) count
// producer_seq without holes in generation order. About two events in three
// belong to one of a few traces and sessions per org (see traced).
func Events(seed int64, n int, start time.Time, span time.Duration) []agenttrail.Event {
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	// The trace context comes from a stream of its own, so the other
	// fields are what they were before events had one.
	tr := tracer{r: rand.New(rand.NewPCG(uint64(seed), 0x7ace)), spans: map[string][]string{}}
	start = start.UTC()
	end := start.Add(span)
	producerSeq := map[string]int64{}
	out := make([]agenttrail.Event, n)
	for i := range out {
		t := start.Add(time.Duration(r.Int64N(int64(span)))).Truncate(time.Microsecond)
		if i > 0 && r.IntN(20) == 0 {
			t = out[i-1].Time
		}
		src, org, proj := surfaces(), orgs(), projects()
		e := event(r, t, src[r.IntN(len(src))])
		e.ID = eventID(r, t)
		e.Org = org[r.IntN(len(org))]
		e.Project = proj[r.IntN(len(proj))]
		e.ProducerID = e.Org + "." + e.ActorID
		producerSeq[e.ProducerID]++
		e.ProducerSeq = producerSeq[e.ProducerID]
		e.ReceivedAt = t.Add(time.Duration(r.IntN(2_000_000)) * time.Microsecond)
		tr.traced(&e)
		if err := e.Validate(end); err != nil {
			panic(fmt.Sprintf("storetest: generated an invalid event: %v", err))
		}
		out[i] = e
	}
	return out
}

// eventID returns a UUIDv7-shaped id for t whose random part comes from r,
// so generated ids are deterministic.
func eventID(r *rand.Rand, t time.Time) string {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		u[i] = byte(ms >> (40 - 8*i))
	}
	for i := 6; i < 16; i++ {
		u[i] = byte(r.UintN(256))
	}
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func event(r *rand.Rand, t time.Time, source string) agenttrail.Event {
	e := agenttrail.Event{
		Time:       t,
		DurationMS: float64(r.IntN(200000)) / 8,
		ActorType:  agenttrail.ActorAgent,
		ActorID:    fmt.Sprintf("agent-%02d", r.IntN(12)),
		Source:     source,
		Result:     agenttrail.ResultSuccess,
	}
	switch x := r.IntN(20); {
	case x == 0:
		e.ActorType, e.ActorID = agenttrail.ActorUser, "alice@example.com"
	case x == 1:
		e.ActorType, e.ActorID = agenttrail.ActorSystem, "scheduler"
	}
	if r.IntN(3) > 0 {
		names := actorNames()
		e.ActorName = names[r.IntN(len(names))]
	}
	switch x := r.IntN(10); {
	case x == 0:
		e.Result = agenttrail.ResultFailure
	case x == 1 && r.IntN(2) == 0:
		e.Result = agenttrail.ResultError
	case x == 2 && r.IntN(2) == 0:
		e.Result = agenttrail.ResultDenied
	}
	var meta map[string]any
	switch source {
	case agenttrail.SourceMCP:
		tool := pick(r, "read_file", "search_code", "create_issue", "run_query")
		server := pick(r, "github", "filesystem", "postgres")
		e.Action, e.ResourceType, e.ResourceID = "tools/call", "mcp_tool", server+"/"+tool
		e.Description = fmt.Sprintf("Called MCP tool %s on %s", tool, server)
		meta = map[string]any{"mcp": map[string]any{"server": server, "tool": tool, "arguments": map[string]any{"path": "/src/main.go", "limit": r.IntN(100)}, "is_error": e.Result != agenttrail.ResultSuccess, "transport": "stdio"}}
	case agenttrail.SourceKube:
		verb := pick(r, "get", "list", "create", "delete", "patch")
		ns := pick(r, "default", "kube-system", "payments")
		res := pick(r, "pods", "secrets", "deployments")
		e.Action = strings.ToUpper(verbMethod(verb)) + " /api/v1/namespaces/" + ns + "/" + res
		e.ResourceType, e.ResourceID = res, ns+"/"+res+"-"+fmt.Sprint(r.IntN(50))
		e.StatusCode = statusFor(r, e.Result)
		e.Description = fmt.Sprintf("Kubernetes %s %s in %s", verb, res, ns)
		meta = map[string]any{"k8s": map[string]any{"cluster": "prod-eu", "verb": verb, "namespace": ns, "resource": res, "user": e.ActorID, "groups": []string{"system:authenticated"}}}
	case agenttrail.SourceShell:
		cmd := pick(r, "git", "ls", "make", "curl", "rm")
		e.Action, e.ResourceType, e.ResourceID = "shell_exec", "command", cmd
		exit := 0
		if e.Result == agenttrail.ResultFailure {
			exit = 1 + r.IntN(127)
		}
		e.Description = fmt.Sprintf("Ran %s (exit %d)", cmd, exit)
		meta = map[string]any{"shell": map[string]any{"command": cmd, "args": []string{"-la", "ünï ☃"}, "cwd": "/work", "exit_code": exit, "stdout": strings.Repeat("ok\n", r.IntN(20)), "stderr": "", "truncated": false}}
	case agenttrail.SourceEgress:
		domain := pick(r, "api.github.com", "pypi.org", "evil.example", "registry.npmjs.org")
		e.Action, e.ResourceType, e.ResourceID = "CONNECT "+domain+":443", "domain", domain
		e.StatusCode = statusFor(r, e.Result)
		e.Description = "Outbound HTTPS to " + domain
		meta = map[string]any{"http": map[string]any{"domain": domain, "method": "CONNECT", "bytes_in": r.IntN(1 << 20), "bytes_out": r.IntN(1 << 16), "tls": true}}
	case agenttrail.SourceSandbox:
		op := pick(r, "create", "start", "stop", "file_read", "file_write")
		e.Action, e.ResourceType, e.ResourceID = "sandbox."+op, "container", fmt.Sprintf("ctr-%04x", r.IntN(1<<16))
		e.Description = "Sandbox " + op
		meta = map[string]any{"sandbox": map[string]any{"container_id": e.ResourceID, "op": op, "path": "/tmp/x", "image": "python:3.12"}}
	case agenttrail.SourceAWS:
		op := pick(r, "s3:GetObject", "s3:PutObject", "iam:ListRoles", "ec2:DescribeInstances")
		e.Action, e.ResourceType, e.ResourceID = op, "arn", "arn:aws:s3:::bucket-"+fmt.Sprint(r.IntN(9))
		e.StatusCode = statusFor(r, e.Result)
		e.Description = "AWS call " + op
		meta = map[string]any{"aws": map[string]any{"service": strings.Split(op, ":")[0], "operation": op, "region": "eu-west-1", "access_key_id": "AKIAEXAMPLE"}}
	case agenttrail.SourceLLM:
		ms := models()
		model := ms[r.IntN(len(ms))]
		e.Action, e.ResourceType, e.ResourceID = "chat.completions", agenttrail.ResourceTypeModel, model
		e.StatusCode = statusFor(r, e.Result)
		e.Description = "LLM call to " + model
		l := map[string]any{
			"provider": pick(r, "openai", "anthropic", "google"), "model": model,
			"input_tokens": r.IntN(20000), "output_tokens": r.IntN(4000),
			"cache_read_tokens": r.IntN(8000), "cache_write_tokens": r.IntN(2000),
			"reasoning_tokens": r.IntN(1000), "stream": r.IntN(2) == 0,
		}
		if r.IntN(5) > 0 {
			l["cost_usd"] = float64(r.IntN(1_000_000)) / 1e5
		}
		meta = map[string]any{"llm": l}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		panic(err)
	}
	e.Metadata = b
	return e
}

// tracer gives generated events trace context: a third of them none, the
// others one of six traces per org, each span a child of an earlier span
// of its trace (or a root, or a child of a span never stored, as when a
// proxy's caller records nothing), and a session of the trace's number
// modulo four, so that sessions span several traces.
type tracer struct {
	r     *rand.Rand
	spans map[string][]string // trace id -> its spans so far
}

func (tr *tracer) traced(e *agenttrail.Event) {
	n := tr.r.IntN(9)
	if n >= 6 {
		return
	}
	e.TraceID = fmt.Sprintf("%s%029x", map[string]string{"acme": "ac3", "globex": "91b"}[e.Org], n+1)
	e.SessionID = fmt.Sprintf("%s task %d", e.Org, n%4)
	spans := tr.spans[e.TraceID]
	e.SpanID = fmt.Sprintf("%016x", tr.r.Uint64()|1)
	switch x := tr.r.IntN(8); {
	case len(spans) > 0 && x < 6:
		e.ParentSpanID = spans[tr.r.IntN(len(spans))]
	case x == 6:
		e.ParentSpanID = fmt.Sprintf("%016x", tr.r.Uint64()|1)
	}
	tr.spans[e.TraceID] = append(spans, e.SpanID)
}

func pick(r *rand.Rand, s ...string) string { return s[r.IntN(len(s))] }

func verbMethod(verb string) string {
	switch verb {
	case "create":
		return "post"
	case "delete":
		return "delete"
	case "patch":
		return "patch"
	}
	return "get"
}

func statusFor(r *rand.Rand, res agenttrail.Result) int {
	switch res {
	case agenttrail.ResultDenied:
		return pickInt(r, 401, 403)
	case agenttrail.ResultFailure:
		return pickInt(r, 404, 409, 422)
	case agenttrail.ResultError:
		return pickInt(r, 502, 503, 504)
	}
	return pickInt(r, 200, 200, 200, 201, 204)
}

func pickInt(r *rand.Rand, n ...int) int { return n[r.IntN(len(n))] }

// Heartbeats returns heartbeat events (source agent, action heartbeat) of
// one agent, one every interval from start, skipping the times for which
// skip returns true. Their producer_seq counts only the heartbeats sent.
func Heartbeats(org, actorID string, start time.Time, interval time.Duration, n int, skip func(i int) bool) []agenttrail.Event {
	var out []agenttrail.Event
	for i := 0; i < n; i++ {
		if skip != nil && skip(i) {
			continue
		}
		t := start.Add(time.Duration(i) * interval).UTC()
		e := agenttrail.Event{
			ID: fmt.Sprintf("hb-%s-%s-%d", org, actorID, i), Time: t, ActorType: agenttrail.ActorAgent,
			ActorID: actorID, Source: agenttrail.SourceAgent, Action: agenttrail.ActionHeartbeat,
			Result: agenttrail.ResultSuccess, Org: org, ProducerID: org + "." + actorID + ".hb",
			ProducerSeq: int64(len(out) + 1), ReceivedAt: t,
		}
		out = append(out, e)
	}
	return out
}
