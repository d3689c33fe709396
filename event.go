// Package agenttrail is the domain of the agenttrail audit trail: the Event
// every surface records, its validation, the Filter and Query people search
// with, the one Error type, and the Store contract that storage backends
// implement. How these travel over HTTP is package wire's; secret
// redaction is package redact's. It imports only the standard library, so
// agents can import the SDK without database drivers.
package agenttrail

import (
	"encoding/json"
	"time"
)

// ActorType says what kind of principal performed an action.
type ActorType string

// The actor types (docs/architecture.md, "The event").
const (
	ActorUser   ActorType = "user"
	ActorAgent  ActorType = "agent"
	ActorSystem ActorType = "system"
)

// Result is the outcome of an action. ResultFailure means the target failed
// the action (a non-zero exit code, a 4xx or 5xx other than authorization);
// ResultDenied means a policy or an authorization check refused it (an
// egress deny rule, an unknown credential, a budget, a 401 or 403);
// ResultError means the surface itself broke (the upstream was unreachable).
type Result string

// The results (docs/architecture.md, "The event").
const (
	ResultSuccess Result = "success"
	ResultFailure Result = "failure"
	ResultDenied  Result = "denied"
	ResultError   Result = "error"
)

// Results lists every valid Result, in the order documentation names them.
var Results = []Result{ResultSuccess, ResultFailure, ResultDenied, ResultError}

// Valid reports whether r is one of Results.
func (r Result) Valid() bool {
	switch r {
	case ResultSuccess, ResultFailure, ResultDenied, ResultError:
		return true
	}
	return false
}

// The well-known sources: the seven capture surfaces, agent lifecycle, and
// the trail's own actions. Other lowercase [a-z0-9-] names are accepted.
const (
	SourceMCP         = "mcp-tool"
	SourceKube        = "k8s-proxy"
	SourceShell       = "shell"
	SourceEgress      = "forward-proxy"
	SourceSandbox     = "sandbox"
	SourceAWS         = "aws-proxy"
	SourceLLM         = "llm-proxy"
	SourceAgent       = "agent"
	SourceAudit       = "audit"
	ActionHeartbeat   = "heartbeat"
	ActionStop        = "stop"
	DefaultOrg        = "default"
	ResourceTypeModel = "model"
)

// Event is one audited action. Its JSON form is the wire format of the HTTP API
// (docs/architecture.md, "The event"): flat, snake_case. Seq and ReceivedAt are
// assigned by the server; values a client sends for them are ignored.
//
// TraceID, SpanID and ParentSpanID are the W3C Trace Context of the action
// (lowercase hex of 32, 16 and 16 digits); SessionID is the agent's task or
// conversation. Together they let one task be followed across surfaces.
//
// Metadata holds surface-specific detail as a raw JSON object; the LLM usage
// under metadata.llm is also available typed through LLM. Validate caches
// that decoding against the Metadata slice it read, so code that changes
// metadata assigns a new slice (SetMetadata and redaction do) rather than
// editing its bytes in place.
type Event struct {
	ID           string          `json:"id,omitempty"`
	Time         time.Time       `json:"time,omitzero"`
	DurationMS   float64         `json:"duration_ms,omitempty"`
	ActorType    ActorType       `json:"actor_type"`
	ActorID      string          `json:"actor_id"`
	ActorName    string          `json:"actor_name,omitempty"`
	Source       string          `json:"source"`
	Action       string          `json:"action"`
	ResourceType string          `json:"resource_type,omitempty"`
	ResourceID   string          `json:"resource_id,omitempty"`
	Result       Result          `json:"result"`
	StatusCode   int             `json:"status_code,omitempty"`
	Description  string          `json:"description,omitempty"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	Org          string          `json:"org,omitempty"`
	Project      string          `json:"project,omitempty"`
	ProducerID   string          `json:"producer_id,omitempty"`
	ProducerSeq  int64           `json:"producer_seq,omitempty"`
	TraceID      string          `json:"trace_id,omitempty"`
	SpanID       string          `json:"span_id,omitempty"`
	ParentSpanID string          `json:"parent_span_id,omitempty"`
	SessionID    string          `json:"session_id,omitempty"`
	Seq          int64           `json:"seq,omitempty"`
	ReceivedAt   time.Time       `json:"received_at,omitzero"`
	// LogIndex is the event's leaf index in its org's Merkle tree (package
	// integrity), set by the store like Seq; nil before the event is
	// stored. The tree proves the index itself, so the leaf does not hold it.
	LogIndex *int64 `json:"log_index,omitempty"`

	// llm is metadata.llm as Validate decoded it (nil for none) from
	// llmOf, the Metadata it read. It holds only while Metadata is still
	// that slice: replacing Metadata makes LLM decode afresh, so nothing
	// that changes metadata needs to know about the cache.
	llm   *LLM
	llmOf []byte
}

// LLM is the usage of one LLM call, stored under metadata.llm. The five token
// counters and CostUSD are first-class: stores keep them as columns so cost is
// aggregated without parsing JSON. CostUSD is nil when the price is unknown;
// a made-up price is never recorded.
//
// InputTokens counts the input tokens billed at the full input price: input
// without cache reads and cache writes. Providers differ: Anthropic reports
// it so; OpenAI's prompt_tokens includes cached tokens, so the proxy records
// prompt_tokens minus cached_tokens here and the cached part as
// CacheReadTokens. Total input = InputTokens + CacheReadTokens +
// CacheWriteTokens.
type LLM struct {
	Provider         string   `json:"provider,omitempty"`
	Model            string   `json:"model,omitempty"`
	InputTokens      int64    `json:"input_tokens,omitempty"`
	OutputTokens     int64    `json:"output_tokens,omitempty"`
	CacheReadTokens  int64    `json:"cache_read_tokens,omitempty"`
	CacheWriteTokens int64    `json:"cache_write_tokens,omitempty"`
	ReasoningTokens  int64    `json:"reasoning_tokens,omitempty"`
	CostUSD          *float64 `json:"cost_usd,omitempty"`
	// CostUnknown is set when usage was reported but no price is known for
	// the model, so CostUSD is absent for that reason and not another.
	CostUnknown bool `json:"cost_unknown,omitempty"`
	Stream      bool `json:"stream,omitempty"`
	Incomplete  bool `json:"incomplete,omitempty"`
	// Estimated is set when the provider reported no usage (or a stream
	// was cut before it did) and the LLM proxy, enforcing budgets,
	// recorded its own high estimate of the tokens instead, so the call's
	// cost still counts against the budgets.
	Estimated bool `json:"estimated,omitempty"`
	// Budget names the budget that refused the call.
	Budget string `json:"budget,omitempty"`
	// BudgetUnchecked is set on a call the proxy let through without a
	// budget check because the trail was unreachable (fail-open).
	BudgetUnchecked bool `json:"budget_unchecked,omitempty"`
}

// Cost returns CostUSD, or 0 when it is unknown.
func (l LLM) Cost() float64 {
	if l.CostUSD == nil {
		return 0
	}
	return *l.CostUSD
}

// LLM returns the event's metadata.llm and whether it has one. An event whose
// metadata.llm does not decode reports none; Validate rejects such events.
// After Validate it decodes nothing. It never changes e, so concurrent calls
// on one event are safe.
func (e *Event) LLM() (LLM, bool) {
	l := e.llm
	if len(e.Metadata) == 0 || !sameSlice(e.llmOf, e.Metadata) {
		var err error
		if l, err = decodeLLM(e.Metadata); err != nil {
			return LLM{}, false
		}
	}
	if l == nil {
		return LLM{}, false
	}
	return *l, true
}

// sameSlice reports whether a and b are the same bytes in memory, not just
// equal ones.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

// SetLLM stores l under metadata.llm, keeping any other metadata keys.
func (e *Event) SetLLM(l LLM) error {
	return e.SetMetadata("llm", l)
}

// SetMetadata stores v under metadata[key], keeping the other keys.
func (e *Event) SetMetadata(key string, v any) error {
	m := map[string]json.RawMessage{}
	if len(e.Metadata) > 0 {
		if err := json.Unmarshal(e.Metadata, &m); err != nil {
			return Invalid("metadata", "must be a JSON object")
		}
		if m == nil { // metadata was JSON null
			m = map[string]json.RawMessage{}
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Invalid("metadata."+key, "cannot encode: %v", err)
	}
	m[key] = b
	if e.Metadata, err = json.Marshal(m); err != nil {
		return Invalid("metadata", "cannot encode: %v", err)
	}
	return nil
}

// DimensionValue returns the event's value for an aggregation dimension; for
// DimModel it is metadata.llm.model ("" when the event is not an LLM call).
func (e *Event) DimensionValue(d Dimension) string {
	switch d {
	case DimSource:
		return e.Source
	case DimActorType:
		return string(e.ActorType)
	case DimActorID:
		return e.ActorID
	case DimResult:
		return string(e.Result)
	case DimAction:
		return e.Action
	case DimResourceType:
		return e.ResourceType
	case DimOrg:
		return e.Org
	case DimProject:
		return e.Project
	case DimModel:
		l, _ := e.LLM()
		return l.Model
	case DimTraceID:
		return e.TraceID
	case DimSessionID:
		return e.SessionID
	}
	return ""
}
