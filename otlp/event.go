package otlp

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
)

// SourceOTel is the source of what arrives over OTLP and matches no
// capture surface's conventions: its attributes are kept under
// metadata.otel.
const SourceOTel = "otel"

// item is what the mapper reads of one span or log record.
type item struct {
	attrs      attributes
	name       string // the span name, or the log record's event name
	kind       string // span kind ("client", …) or "log"
	scope      string
	start, end time.Time
	failed     bool   // status ERROR, or a log record of severity ERROR or above
	message    string // the status message, or the log record's body when it is text
	body       any    // a log record's body
	trace      string // hex
	span       string
	parent     string
}

// GenAI operations that are a model call (the others, such as invoke_agent
// or execute_tool, are not).
var modelOperations = map[string]bool{
	"chat": true, "text_completion": true, "generate_content": true, "embeddings": true,
}

// event maps it to an event by the semantic conventions its own attributes
// follow (a resource's attributes name the producer, never the kind of
// action). It fails only when the metadata cannot be encoded.
func (m *Mapper) event(it item) (agenttrail.Event, error) {
	a := it.attrs
	e := agenttrail.Event{
		Time:         it.start,
		ActorType:    agenttrail.ActorAgent,
		ActorID:      a.str("gen_ai.agent.id", "service.name"),
		ActorName:    a.str("gen_ai.agent.name"),
		SessionID:    capture.CleanSessionID(a.str("gen_ai.conversation.id", "session.id", capture.BaggageSessionID)),
		TraceID:      it.trace,
		SpanID:       it.span,
		ParentSpanID: it.parent,
		Description:  it.message,
	}
	if e.ActorID == "" {
		e.ActorID = "unknown_service"
	}
	if !it.start.IsZero() && it.end.After(it.start) {
		e.DurationMS = float64(it.end.Sub(it.start).Microseconds()) / 1000
	}
	op := a.str("gen_ai.operation.name")
	var err error
	switch {
	case op == "execute_tool" || a.has("mcp.method.name") || a.has("rpc.method", "rpc.system"):
		err = mcpEvent(&e, a, op)
	case modelOperations[op] || a.has("gen_ai.request.model", "gen_ai.response.model", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
		err = m.llmEvent(&e, a, op)
	case a.has("http.request.method") && (it.kind == "client" || it.kind == "log"):
		err = httpEvent(&e, a)
	case a.has("process.command", "process.command_line", "process.executable.name", "process.exit.code") || it.name == "exec":
		err = shellEvent(&e, a, it.name)
	default:
		err = otelEvent(&e, it)
	}
	if err != nil {
		return e, err
	}
	if e.Result == "" {
		e.Result = agenttrail.ResultSuccess
		if status, ok := a.int("http.response.status_code"); ok && status > 0 && status < 1000 {
			e.StatusCode = int(status)
			e.Result = capture.ResultOf(int(status))
		}
		if it.failed || a.has("error.type") {
			if e.Result == agenttrail.ResultSuccess {
				e.Result = agenttrail.ResultFailure
			}
			if e.Description == "" {
				e.Description = a.str("error.type")
			}
		}
	}
	if e.Description == "" {
		e.Description = fmt.Sprintf("%s %q from %s over OpenTelemetry", it.kindNoun(), it.name, e.ActorID)
	}
	return e, nil
}

func (it item) kindNoun() string {
	if it.kind == "log" {
		return "log record"
	}
	return "span"
}

// llmEvent fills a GenAI model call: metadata.llm with the usage the
// conventions name and its cost from the price table. gen_ai.usage.
// input_tokens includes cached input by the conventions; metadata.llm's
// input_tokens does not, as with the LLM proxy.
func (m *Mapper) llmEvent(e *agenttrail.Event, a attributes, op string) error {
	e.Source = agenttrail.SourceLLM
	model := a.str("gen_ai.response.model", "gen_ai.request.model")
	if op == "" {
		op = "chat"
	}
	e.Action = op
	e.ResourceType, e.ResourceID = agenttrail.ResourceTypeModel, model
	l := agenttrail.LLM{Provider: a.str("gen_ai.provider.name", "gen_ai.system"), Model: model}
	in, _ := a.int("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
	l.OutputTokens, _ = a.int("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
	l.CacheReadTokens, _ = a.int("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
	l.CacheWriteTokens, _ = a.int("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
	l.ReasoningTokens, _ = a.int("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens")
	l.InputTokens = max(in-l.CacheReadTokens-l.CacheWriteTokens, 0)
	usage := a.has("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens")
	if usage && m.prices != nil {
		if _, price, ok := m.prices.Lookup(model); ok {
			cost := price.Cost(l)
			l.CostUSD = &cost
		} else {
			l.CostUnknown = true
		}
	}
	if e.Description == "" {
		e.Description = fmt.Sprintf("%s: %s, %d in / %d out tokens", model, op, in, l.OutputTokens)
	}
	return e.SetMetadata("llm", l)
}

// mcpEvent fills a tool call: an MCP method (mcp.method.name), a GenAI
// execute_tool, or another JSON-RPC or RPC call.
func mcpEvent(e *agenttrail.Event, a attributes, op string) error {
	e.Source = agenttrail.SourceMCP
	tool := a.str("gen_ai.tool.name")
	e.Action = a.str("mcp.method.name", "rpc.method")
	if e.Action == "" {
		e.Action = "tools/call"
	}
	if tool != "" {
		e.ResourceType, e.ResourceID = "mcp_tool", tool
	}
	md := map[string]any{
		"server": a.str("rpc.service", "server.address"),
		"tool":   tool,
	}
	if t := a.str("network.transport", "mcp.transport"); t != "" {
		md["transport"] = t
	}
	if id := a.str("mcp.session.id"); id != "" {
		md["session_id"] = id
	}
	if op == "execute_tool" && a.str("gen_ai.tool.call.id") != "" {
		md["tool_call_id"] = a.str("gen_ai.tool.call.id")
	}
	return e.SetMetadata("mcp", md)
}

// httpEvent fills an outbound HTTP request, as the egress proxy records
// one.
func httpEvent(e *agenttrail.Event, a attributes) error {
	e.Source = agenttrail.SourceEgress
	method := a.str("http.request.method")
	full := a.str("url.full")
	host, path := a.str("server.address"), a.str("url.path")
	port, _ := a.int("server.port")
	if u, err := url.Parse(full); err == nil && u.Host != "" {
		u.User = nil
		full = u.String()
		if host == "" {
			host = u.Hostname()
		}
		if path == "" {
			path = u.RequestURI()
		}
		if p, err := strconv.Atoi(u.Port()); err == nil && port == 0 {
			port = int64(p)
		}
	}
	target := full
	if target == "" {
		target = net.JoinHostPort(host, strconv.FormatInt(port, 10)) + path
	}
	e.Action = method + " " + target
	e.ResourceType, e.ResourceID = "domain", host
	return e.SetMetadata("http", map[string]any{"domain": host, "port": port, "method": method, "path": path})
}

// shellEvent fills a process the agent ran.
func shellEvent(e *agenttrail.Event, a attributes, name string) error {
	e.Source = agenttrail.SourceShell
	e.Action = "shell_exec"
	args := a.strings("process.command_args")
	command := a.str("process.command", "process.executable.name", "process.executable.path")
	if command == "" && len(args) > 0 {
		command = args[0]
	}
	line := a.str("process.command_line")
	if line == "" {
		line = strings.Join(args, " ")
	}
	if line == "" {
		line = command
	}
	if line == "" {
		line = name
	}
	e.ResourceType, e.ResourceID = "command", line
	md := map[string]any{"command": command}
	if len(args) > 1 {
		md["args"] = args[1:]
	}
	if code, ok := a.int("process.exit.code"); ok {
		md["exit_code"] = code
		if code != 0 {
			e.Result = agenttrail.ResultFailure
		} else {
			e.Result = agenttrail.ResultSuccess
		}
		if e.Description == "" {
			e.Description = fmt.Sprintf("exit %d: %s", code, line)
		}
	}
	return e.SetMetadata("shell", md)
}

// otelEvent keeps what matches no surface: the span or log record's name,
// kind, scope, attributes and resource attributes, and a log record's body.
func otelEvent(e *agenttrail.Event, it item) error {
	e.Source = SourceOTel
	e.Action = it.name
	if e.Action == "" {
		e.Action = it.kind
	}
	md := map[string]any{"name": it.name, "kind": it.kind}
	if it.scope != "" {
		md["scope"] = it.scope
	}
	if len(it.attrs.own) > 0 {
		md["attributes"] = it.attrs.own
	}
	if len(it.attrs.res) > 0 {
		md["resource"] = it.attrs.res
	}
	if it.body != nil {
		md["body"] = it.body
	}
	return e.SetMetadata("otel", md)
}
