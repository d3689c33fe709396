package mcp

import (
	"bytes"
	"encoding/json"
	"errors"

	"go.opentelemetry.io/otel/propagation"

	"github.com/agenttrail/agenttrail/capture"
)

// message is the part of one JSON-RPC 2.0 message the observer reads. The
// relayed bytes are never re-encoded from it.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

// RPCError is the JSON-RPC error object a request was answered with,
// recorded under metadata.mcp.error.
type RPCError struct {
	Code    int64  `json:"code"`
	Message string `json:"message"`
}

// idKey returns the message's id as a map key: its JSON text, so the number
// 1 and the string "1" stay distinct as JSON-RPC requires. A null or absent
// id yields "".
func (m *message) idKey() string {
	id := bytes.TrimSpace(m.ID)
	if len(id) == 0 || bytes.Equal(id, []byte("null")) {
		return ""
	}
	return string(id)
}

// isRequest reports a call that expects a response.
func (m *message) isRequest() bool { return m.Method != "" && m.idKey() != "" }

// isNotification reports a method without an id.
func (m *message) isNotification() bool { return m.Method != "" && m.idKey() == "" }

// isResponse reports a result or error for an earlier request.
func (m *message) isResponse() bool {
	return m.Method == "" && m.idKey() != "" && (m.Result != nil || m.Error != nil)
}

// parseMessages decodes one JSON-RPC message or a batch (a JSON array of
// them).
func parseMessages(b []byte) ([]message, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, errors.New("empty message")
	}
	if b[0] == '[' {
		var batch []message
		if err := json.Unmarshal(b, &batch); err != nil {
			return nil, err
		}
		return batch, nil
	}
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return []message{m}, nil
}

// Implementation is the name and version a client or server reports of
// itself (clientInfo, serverInfo), recorded under metadata.mcp.client.
type Implementation struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// The SEP-2575 _meta keys through which 2026 clients and servers identify
// themselves on every message instead of in initialize.
const (
	metaClientInfo = "io.modelcontextprotocol/clientInfo"
	metaServerInfo = "io.modelcontextprotocol/serverInfo"
)

// requestParams is what the observer reads of a request's params.
type requestParams struct {
	Name       string                     `json:"name"`      // tools/call, prompts/get
	URI        string                     `json:"uri"`       // resources/read, resources/(un)subscribe
	Arguments  json.RawMessage            `json:"arguments"` // tools/call, prompts/get
	ClientInfo *Implementation            `json:"clientInfo"`
	RequestID  json.RawMessage            `json:"requestId"` // notifications/cancelled
	Reason     string                     `json:"reason"`    // notifications/cancelled
	Meta       map[string]json.RawMessage `json:"_meta"`
}

// parseParams decodes params leniently: params the observer cannot read
// yield the zero value, and the message is still relayed and recorded.
func parseParams(raw json.RawMessage) requestParams {
	var p requestParams
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	if p.ClientInfo == nil {
		p.ClientInfo = metaImplementation(p.Meta, metaClientInfo)
	}
	return p
}

// callSpan returns the span of one request: a child of the traceparent the
// HTTP request carried (reqSpan) when that was valid, else of the MCP
// convention's params._meta.traceparent (and tracestate), which is all a
// stdio message can carry, else the root of a new trace. A malformed
// traceparent in either place is ignored.
func callSpan(meta map[string]json.RawMessage, reqSpan capture.Span) capture.Span {
	if reqSpan.ParentSpanID.IsValid() {
		return reqSpan
	}
	var tp, ts string
	_ = json.Unmarshal(meta["traceparent"], &tp)
	_ = json.Unmarshal(meta["tracestate"], &ts)
	if tp == "" && reqSpan.TraceID.IsValid() {
		return reqSpan
	}
	s := capture.NewSpan(propagation.MapCarrier{"traceparent": tp, "tracestate": ts})
	s.SessionID = reqSpan.SessionID
	return s
}

// metaImplementation decodes an Implementation from _meta[key].
func metaImplementation(meta map[string]json.RawMessage, key string) *Implementation {
	raw, ok := meta[key]
	if !ok {
		return nil
	}
	var impl Implementation
	if json.Unmarshal(raw, &impl) != nil || impl.Name == "" {
		return nil
	}
	return &impl
}
