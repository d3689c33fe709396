package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
)

// traffic generates realistic agent activity across the seven surfaces: the
// demo sends it to a server, the benchmark fills a store with it. It is
// deterministic for a seed and not safe for concurrent use.
type traffic struct {
	rnd    *rand.Rand
	actors []demoActor
}

type demoActor struct {
	typ      agenttrail.ActorType
	id, name string
	org      string
	project  string
	sources  []string // the surfaces this actor uses, weighted by repetition
}

func newTraffic(seed uint64) *traffic {
	return &traffic{
		rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		actors: []demoActor{
			{agenttrail.ActorAgent, "agent-claude-ci", "Claude Code (CI)", "acme", "payments",
				[]string{"llm-proxy", "llm-proxy", "mcp-tool", "shell", "shell", "forward-proxy", "sandbox"}},
			{agenttrail.ActorAgent, "agent-sre-copilot", "SRE copilot", "acme", "infra",
				[]string{"llm-proxy", "k8s-proxy", "k8s-proxy", "k8s-proxy", "aws-proxy", "shell", "mcp-tool"}},
			{agenttrail.ActorAgent, "agent-data-analyst", "Data analyst", "acme", "analytics",
				[]string{"llm-proxy", "llm-proxy", "aws-proxy", "aws-proxy", "mcp-tool", "sandbox"}},
			{agenttrail.ActorAgent, "agent-support", "Support agent", "globex", "helpdesk",
				[]string{"llm-proxy", "llm-proxy", "mcp-tool", "mcp-tool", "forward-proxy"}},
			{agenttrail.ActorAgent, "agent-release-bot", "Release bot", "globex", "platform",
				[]string{"shell", "shell", "k8s-proxy", "forward-proxy", "sandbox", "llm-proxy"}},
			{agenttrail.ActorUser, "alice@acme.example", "Alice Martin", "acme", "infra",
				[]string{"k8s-proxy", "aws-proxy", "shell"}},
			// Only the server records source "audit"; a system actor of the
			// demo is a job.
			{agenttrail.ActorSystem, "backup-job", "Nightly backup", "acme", "infra",
				[]string{"shell", "aws-proxy"}},
		},
	}
}

func (g *traffic) pick(s []string) string { return s[g.rnd.IntN(len(s))] }

// event returns one event at t. Roughly 90% succeed, 7% fail, 3% error.
func (g *traffic) event(t time.Time) agenttrail.Event {
	a := g.actors[g.rnd.IntN(len(g.actors))]
	if a.typ == agenttrail.ActorSystem && g.rnd.IntN(20) != 0 {
		a = g.actors[g.rnd.IntN(len(g.actors)-1)] // system events are rare
	}
	e := agenttrail.Event{
		ID:        agenttrail.NewID(t),
		Time:      t.UTC(),
		ActorType: a.typ, ActorID: a.id, ActorName: a.name,
		Org: a.org, Project: a.project,
		Source: g.pick(a.sources), Result: agenttrail.ResultSuccess,
	}
	r := g.rnd.IntN(100)
	failed, broke := r >= 90 && r < 97, r >= 97
	meta := map[string]any{}
	switch e.Source {
	case "llm-proxy":
		g.llm(&e, meta, failed, broke)
	case "mcp-tool":
		server, tool := g.pick([]string{"github", "github", "jira", "postgres", "filesystem"}), ""
		switch server {
		case "github":
			tool = g.pick([]string{"create_issue", "list_pull_requests", "get_file_contents", "create_pull_request"})
		case "jira":
			tool = g.pick([]string{"search_issues", "transition_issue"})
		case "postgres":
			tool = g.pick([]string{"query", "list_tables"})
		default:
			tool = g.pick([]string{"read_file", "write_file", "list_directory"})
		}
		e.Action, e.ResourceType, e.ResourceID = "tools/call", "mcp_tool", server+"."+tool
		e.DurationMS = float64(20 + g.rnd.IntN(900))
		meta["mcp"] = map[string]any{"server": server, "tool": tool, "is_error": failed, "transport": "stdio",
			"arguments": map[string]any{"repo": "acme/payments-api"}}
		e.Description = fmt.Sprintf("called %s on MCP server %s", tool, server)
	case "shell":
		cmd := g.pick([]string{"git status", "go test ./...", "make build", "kubectl get pods -n payments", "terraform plan", "ls -la", "npm ci"})
		exit := 0
		if failed {
			exit = 1 + g.rnd.IntN(2)
		}
		e.Action, e.ResourceType, e.ResourceID = "shell_exec", "command", cmd
		e.DurationMS = float64(5 + g.rnd.IntN(30000))
		meta["shell"] = map[string]any{"command": cmd, "cwd": "/workspace/payments-api", "exit_code": exit}
		e.Description = fmt.Sprintf("ran %q, exit code %d", cmd, exit)
	case "forward-proxy":
		host := g.pick([]string{"api.github.com", "registry.npmjs.org", "proxy.golang.org", "pypi.org", "hooks.slack.com", "pastebin.com"})
		e.Action, e.ResourceType, e.ResourceID = "CONNECT "+host+":443", "domain", host
		e.DurationMS = float64(50 + g.rnd.IntN(3000))
		in, out := g.rnd.IntN(500000), g.rnd.IntN(20000)
		e.StatusCode = 200
		e.Description = fmt.Sprintf("TLS tunnel to %s:443: %d B out, %d B in", host, out, in)
		if host == "pastebin.com" || failed {
			e.Result, e.StatusCode = agenttrail.ResultDenied, 403
			e.Description = "CONNECT " + host + ":443 refused by egress rule deny:*.pastebin.com"
			in, out = 0, 0
		}
		meta["http"] = map[string]any{"domain": host, "port": 443, "method": "CONNECT", "bytes_in": in, "bytes_out": out, "tunnel": e.StatusCode == 200, "tls": e.StatusCode == 200}
	case "k8s-proxy":
		ns := g.pick([]string{"default", "payments", "kube-system", "monitoring"})
		res := g.pick([]string{"pods", "deployments", "secrets", "configmaps", "services"})
		verb, path, id, name := "list", fmt.Sprintf("/api/v1/namespaces/%s/%s", ns, res), "", ""
		if res == "deployments" {
			path = fmt.Sprintf("/apis/apps/v1/namespaces/%s/%s", ns, res)
		}
		if g.rnd.IntN(5) == 0 {
			name = fmt.Sprintf("%s-%04x", res[:len(res)-1], g.rnd.IntN(0xffff))
			verb, path, id = "delete", path+"/"+name, ns+"/"+name
		}
		e.Action, e.ResourceType, e.ResourceID = verb, res, id
		e.StatusCode = 200
		e.Description = strings.TrimSpace(fmt.Sprintf("%s %s %s", verb, res, name)) + " in namespace " + ns
		k8s := map[string]any{"cluster": "prod-eu-1", "verb": verb, "api_path": path, "namespace": ns, "resource": res, "name": name, "user": a.id}
		if failed {
			msg := fmt.Sprintf("%s is forbidden: User \"system:serviceaccount:agents:%s\" cannot %s resource \"%s\" in API group \"\" in the namespace \"%s\"", res, a.id, verb, res, ns)
			e.Result, e.StatusCode = agenttrail.ResultDenied, 403
			e.Description += ": 403 " + msg
			k8s["reason"], k8s["message"] = "Forbidden", msg
		}
		meta["k8s"] = k8s
	case "aws-proxy":
		op := g.pick([]string{"s3:GetObject", "s3:PutObject", "s3:ListObjectsV2", "dynamodb:Query", "sts:GetCallerIdentity", "iam:CreateAccessKey"})
		e.Action = op
		e.ResourceType, e.ResourceID = awsDemoResource(op)
		e.StatusCode = 200
		e.Description = op + " " + e.ResourceID
		if failed || op == "iam:CreateAccessKey" {
			e.Result, e.StatusCode = agenttrail.ResultDenied, 403
			e.Description += ": AccessDenied"
		}
		service, operation, _ := strings.Cut(op, ":")
		meta["aws"] = map[string]any{"service": service, "operation": operation, "region": "eu-west-1", "access_key_id": "AKIAAGENTTRAILDEMO01"}
	case "sandbox":
		op := g.pick([]string{"create", "start", "stop", "remove", "file_write", "file_read"})
		e.Action, e.ResourceType, e.ResourceID = "container."+op, "container", fmt.Sprintf("sbx-%06x", g.rnd.IntN(0xffffff))
		meta["sandbox"] = map[string]any{"container_id": e.ResourceID, "op": op, "image": "python:3.12-slim"}
	}
	if broke && e.Result == agenttrail.ResultSuccess {
		e.Result, e.StatusCode, e.Description = agenttrail.ResultError, 502, "upstream unreachable"
	} else if failed && e.Result == agenttrail.ResultSuccess {
		e.Result = agenttrail.ResultFailure
	}
	if len(meta) > 0 {
		e.Metadata, _ = json.Marshal(meta)
	}
	return e
}

// demoPrices are per-million-token prices (input, output, cache read, cache
// write) for the demo's models, so demo cost figures look like real ones.
var demoPrices = map[string][4]float64{
	"gpt-4.1":           {2.00, 8.00, 0.50, 0},
	"gpt-4.1-mini":      {0.40, 1.60, 0.10, 0},
	"claude-sonnet-4-5": {3.00, 15.00, 0.30, 3.75},
	"claude-haiku-4-5":  {1.00, 5.00, 0.10, 1.25},
}

func (g *traffic) llm(e *agenttrail.Event, meta map[string]any, failed, broke bool) {
	model := g.pick([]string{"gpt-4.1", "gpt-4.1-mini", "claude-sonnet-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"})
	provider, action := "openai", "chat.completions"
	if strings.HasPrefix(model, "claude") {
		provider, action = "anthropic", "messages"
	}
	e.Action, e.ResourceType, e.ResourceID = action, agenttrail.ResourceTypeModel, model
	e.DurationMS = float64(300 + g.rnd.IntN(20000))
	e.StatusCode = 200
	if failed {
		e.StatusCode = 429
		return
	}
	if broke {
		return
	}
	in, out := 500+g.rnd.Int64N(30000), 50+g.rnd.Int64N(4000)
	cacheRead, cacheWrite := g.rnd.Int64N(in), int64(0)
	if provider == "anthropic" && g.rnd.IntN(4) == 0 {
		cacheWrite = g.rnd.Int64N(4000)
	}
	p := demoPrices[model]
	cost := (float64(in-cacheRead)*p[0] + float64(out)*p[1] + float64(cacheRead)*p[2] + float64(cacheWrite)*p[3]) / 1e6
	meta["llm"] = agenttrail.LLM{Provider: provider, Model: model, InputTokens: in, OutputTokens: out,
		CacheReadTokens: cacheRead, CacheWriteTokens: cacheWrite, CostUSD: &cost, Stream: g.rnd.IntN(2) == 0}
}

// awsDemoResource is the resource an AWS operation of the demo acts on, in
// the shape the AWS proxy records: each service's own resource type.
func awsDemoResource(op string) (typ, id string) {
	switch op {
	case "s3:GetObject", "s3:PutObject":
		return "s3:object", "arn:aws:s3:::acme-data-lake/reports/2026/q4.parquet"
	case "s3:ListObjectsV2":
		return "s3:bucket", "arn:aws:s3:::acme-data-lake"
	case "dynamodb:Query":
		return "dynamodb:table", "arn:aws:dynamodb:eu-west-1:123456789012:table/orders"
	case "sts:GetCallerIdentity":
		return "sts:account", "123456789012"
	case "iam:CreateAccessKey":
		return "iam:user", "arn:aws:iam::123456789012:user/deploy-bot"
	}
	return "aws", ""
}
