package mcp

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/agenttrail/agenttrail"
)

// Resource types of MCP events.
const (
	ResourceTool     = "mcp_tool"
	ResourcePrompt   = "mcp_prompt"
	ResourceResource = "mcp_resource"
	ResourceServer   = "mcp_server"
)

// DirectionServerToClient marks, in metadata.mcp.direction, a request the
// server sent to the client (sampling, elicitation, roots).
const DirectionServerToClient = "server_to_client"

// Metadata is metadata.mcp of an event.
type Metadata struct {
	Server             string          `json:"server,omitempty"`
	Tool               string          `json:"tool,omitempty"`
	Arguments          json.RawMessage `json:"arguments,omitempty"`
	ArgumentsTruncated bool            `json:"arguments_truncated,omitempty"`
	IsError            *bool           `json:"is_error,omitempty"`
	ContentPreview     string          `json:"content_preview,omitempty"`
	Transport          string          `json:"transport"`
	Client             *Implementation `json:"client,omitempty"`
	SessionID          string          `json:"session_id,omitempty"`
	RequestID          json.RawMessage `json:"request_id,omitempty"`
	Direction          string          `json:"direction,omitempty"`
	Agent              string          `json:"agent,omitempty"`
	Error              *RPCError       `json:"error,omitempty"`
	Cancelled          bool            `json:"cancelled,omitempty"`
}

// result is what the observer reads of a response's result.
type result struct {
	IsError           bool            `json:"isError"`
	Action            string          `json:"action"` // elicitation/create
	Content           json.RawMessage `json:"content"`
	Contents          json.RawMessage `json:"contents"`
	Messages          json.RawMessage `json:"messages"`
	StructuredContent json.RawMessage `json:"structuredContent"`
}

// record builds the event of a finished call and hands it to the Recorder.
func (o *observer) record(oc outcome) {
	c := oc.call
	if oc.resp != nil && oc.resp.Error != nil && c.method == methodDiscover {
		return // a legacy server declining SEP-2575; the initialize that follows is recorded
	}
	server := o.cfg.ServerName
	if server == "" && oc.server != nil {
		server = oc.server.Name
	}
	md := Metadata{
		Server:    server,
		Transport: o.transport,
		Client:    oc.client,
		SessionID: oc.sessionID,
		RequestID: c.id,
		Cancelled: oc.cancelled,
	}
	e := agenttrail.Event{
		ID:         agenttrail.NewID(c.start),
		Time:       c.start.UTC(),
		DurationMS: float64(oc.end.Sub(c.start).Microseconds()) / 1000,
		Source:     agenttrail.SourceMCP,
		Action:     c.method,
		Result:     agenttrail.ResultSuccess,
	}
	if o.transport == "http" {
		e.StatusCode = oc.status
	}
	o.setActor(&e, &md, c, server)
	target := o.setResource(&e, &md, c, server)

	var problem string
	switch {
	case oc.unread:
		// Errors are small; a response over MaxBodyBytes is a result.
		problem = fmt.Sprintf("the response was over %d bytes and not inspected", o.cfg.MaxBodyBytes)
	case oc.resp == nil && (oc.status == http.StatusUnauthorized || oc.status == http.StatusForbidden):
		// Refused for want of authorization, by the server or the proxy.
		e.Result, problem = agenttrail.ResultDenied, cmp.Or(oc.reason, http.StatusText(oc.status))
	case oc.resp == nil:
		e.Result, problem = agenttrail.ResultError, oc.reason
	case oc.resp.Error != nil:
		e.Result = agenttrail.ResultError
		md.Error = oc.resp.Error
		problem = fmt.Sprintf("error %d: %s", oc.resp.Error.Code, oc.resp.Error.Message)
	default:
		var r result
		_ = json.Unmarshal(oc.resp.Result, &r)
		md.ContentPreview = o.preview(r)
		if c.method == methodToolsCall {
			isErr := r.IsError
			md.IsError = &isErr
			if isErr {
				e.Result, problem = agenttrail.ResultFailure, "the tool reported an error"
			}
		}
		switch r.Action {
		case "decline": // the user refused: a refusal, not a failure
			e.Result, problem = agenttrail.ResultDenied, "the user chose decline"
		case "cancel":
			e.Result, problem = agenttrail.ResultFailure, "the user chose cancel"
		}
	}
	e.Description = describe(c.method, target, server, problem)
	if err := e.SetMetadata("mcp", md); err != nil {
		o.cfg.Logger.Error("mcp proxy: cannot encode metadata", "method", c.method, "err", err)
		return
	}
	c.span.Apply(&e)
	o.cfg.Recorder.Record(context.Background(), e)
}

// setActor makes the agent the actor of its own requests, and the server
// the actor of the requests it sends to the client.
func (o *observer) setActor(e *agenttrail.Event, md *Metadata, c *call, server string) {
	agent := c.actor
	if agent.ID == "" {
		agent.ID = "unidentified"
	}
	if !c.key.fromServer {
		agent.Apply(e)
		return
	}
	id := "mcp-server"
	if server != "" {
		id += ":" + server
	}
	e.ActorType, e.ActorID = agenttrail.ActorSystem, id
	e.Org, e.Project = agent.Org, agent.Project
	md.Direction, md.Agent = DirectionServerToClient, agent.ID
}

// setResource names what the call touched and returns it for the
// description.
func (o *observer) setResource(e *agenttrail.Event, md *Metadata, c *call, server string) string {
	p := &c.params
	switch c.method {
	case methodToolsCall:
		e.ResourceType, e.ResourceID = ResourceTool, p.Name
		md.Tool = p.Name
		md.Arguments, md.ArgumentsTruncated = o.arguments(p.Arguments)
	case "prompts/get":
		e.ResourceType, e.ResourceID = ResourcePrompt, p.Name
		md.Arguments, md.ArgumentsTruncated = o.arguments(p.Arguments)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		e.ResourceType, e.ResourceID = ResourceResource, p.URI
	default:
		if server != "" && !c.key.fromServer {
			e.ResourceType, e.ResourceID = ResourceServer, server
		}
		return ""
	}
	return e.ResourceID
}

func describe(method, target, server, problem string) string {
	var b strings.Builder
	b.WriteString("MCP ")
	b.WriteString(method)
	if target != "" {
		b.WriteString(" " + target)
	}
	if server != "" {
		b.WriteString(" on " + server)
	}
	if problem != "" {
		b.WriteString(": " + problem)
	}
	return b.String()
}

// preview returns the first text content of a result, redacted, then capped
// at PreviewBytes. It reads a few times more than it keeps before redacting,
// so a secret straddling the cap is still recognised whole.
func (o *observer) preview(r result) string {
	var text string
	var ok bool
	for _, raw := range []json.RawMessage{r.Content, r.Contents, r.Messages} {
		if text, ok = firstText(raw, 0); ok {
			break
		}
	}
	if !ok && len(r.StructuredContent) > 0 {
		text, ok = string(r.StructuredContent), true
	}
	if !ok {
		return ""
	}
	text = o.cfg.Redactor.String(truncate(text, 4*o.cfg.PreviewBytes))
	return truncate(text, o.cfg.PreviewBytes)
}

// firstText finds the first text in MCP content: a content block
// {"type":"text","text":…}, a resource {"uri":…,"text":…}, a prompt message
// {"content":{…}}, or an array of those.
func firstText(raw json.RawMessage, depth int) (string, bool) {
	if len(raw) == 0 || depth > 3 {
		return "", false
	}
	switch raw[0] {
	case '[':
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return "", false
		}
		for _, it := range items {
			if t, ok := firstText(it, depth+1); ok {
				return t, true
			}
		}
	case '{':
		var block struct {
			Text    *string         `json:"text"`
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(raw, &block) != nil {
			return "", false
		}
		if block.Text != nil {
			return *block.Text, true
		}
		return firstText(block.Content, depth+1)
	}
	return "", false
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
