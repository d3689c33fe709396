package llm_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake upstream plays the OpenAI and Anthropic APIs with response and
// stream shapes copied from the providers' API references. The usage numbers
// are per model, so each test knows what the proxy must record.

// usage is what the fake upstream reports for a call, in the provider's own
// terms: for OpenAI, prompt includes cached and cacheWrite, completion
// includes reasoning; for Anthropic the counters are disjoint.
type usage struct {
	prompt, completion, cached, cacheWrite, reasoning int64
}

// snapshotOf is the dated snapshot the API answers with for the model a
// client asks for, as the real APIs do; other models are echoed.
func snapshotOf(model string) string {
	if s, ok := map[string]string{
		"gpt-4o":            "gpt-4o-2024-08-06",
		"gpt-4o-mini":       "gpt-4o-mini-2024-07-18",
		"o4-mini":           "o4-mini-2025-04-16",
		"gpt-4.1":           "gpt-4.1-2025-04-14",
		"claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
		"claude-haiku-4-5":  "claude-haiku-4-5-20251001",
	}[model]; ok {
		return s
	}
	return model
}

// usageOf is the usage the fake upstream reports for a requested model.
func usageOf(model string) usage {
	return map[string]usage{
		"gpt-4o":            {prompt: 1117, completion: 46, cached: 1024},
		"gpt-4o-mini":       {prompt: 19, completion: 10},
		"o4-mini":           {prompt: 2350, completion: 1250, cached: 1920, reasoning: 1024},
		"gpt-4.1":           {prompt: 5036, completion: 87, cached: 4864},
		"claude-sonnet-4-5": {prompt: 25, completion: 15, cached: 4096, cacheWrite: 2048},
		"claude-haiku-4-5":  {prompt: 310, completion: 42, cached: 0, cacheWrite: 1200},
		"mystery-model-7":   {prompt: 100, completion: 20},
	}[model]
}

// upstream is a fake LLM API. Behaviour is chosen by the requested model:
// "rate-limited" answers 429, and "cut" streams a little then drops the
// connection. hold, when set, makes streams wait for it before each event
// after the first.
type upstream struct {
	*httptest.Server
	t    testing.TB
	hold chan struct{}

	mu       sync.Mutex
	requests []seenRequest
}

// seenRequest is a request as the upstream received it.
type seenRequest struct {
	Method, Path string
	Header       http.Header
	Body         map[string]any
}

func newUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{t: t}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

// count returns how many requests the upstream received.
func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.requests)
}

func (u *upstream) last() seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.requests) == 0 {
		u.t.Fatal("the upstream received no request")
	}
	return u.requests[len(u.requests)-1]
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	u.mu.Lock()
	u.requests = append(u.requests, seenRequest{r.Method, r.URL.Path, r.Header.Clone(), body})
	u.mu.Unlock()

	model, _ := body["model"].(string)
	stream, _ := body["stream"].(bool)
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"}]}`)
		return
	case model == "rate-limited":
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "20")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 30000, Requested 1117.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`)
		return
	}
	base := strings.TrimPrefix(model, "cut-")
	snap := snapshotOf(base)
	us := usageOf(base)
	var events []string
	switch r.URL.Path {
	case "/v1/chat/completions":
		if !stream {
			writeJSON(w, chatCompletion(snap, us))
			return
		}
		var includeUsage bool
		if so, ok := body["stream_options"].(map[string]any); ok {
			includeUsage, _ = so["include_usage"].(bool)
		}
		events = chatStream(snap, us, includeUsage)
	case "/v1/responses":
		if !stream {
			writeJSON(w, responseObject(snap, us, "completed"))
			return
		}
		events = responsesStream(snap, us)
	case "/v1/messages":
		if !stream {
			writeJSON(w, anthropicMessage(snap, us))
			return
		}
		events = anthropicStream(snap, us)
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i, ev := range events {
		if strings.HasPrefix(model, "cut-") && i == 3 {
			panic(http.ErrAbortHandler) // drop the connection mid-stream
		}
		if i > 0 && u.hold != nil {
			select {
			case <-u.hold:
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
				return
			}
		}
		if _, err := io.WriteString(w, ev); err != nil {
			return
		}
		rc.Flush()
	}
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

// chatCompletion is a POST /v1/chat/completions response.
func chatCompletion(model string, u usage) string {
	return fmt.Sprintf(`{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": %q,
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The image shows a wooden boardwalk extending through a lush green marshland.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": %d,
    "completion_tokens": %d,
    "total_tokens": %d,
    "prompt_tokens_details": {"cached_tokens": %d, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": %d, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}`, model, u.prompt, u.completion, u.prompt+u.completion, u.cached, u.reasoning)
}

// chatDeltas is the text a stream sends, one chunk each.
func chatDeltas() []string { return []string{"Hello", "! How", " can I", " help", " you today?"} }

// chatStream is a streamed chat completion. Like the real API it adds
// "usage":null to every chunk and a final usage-only chunk only when the
// request asked for usage.
func chatStream(model string, u usage, includeUsage bool) []string {
	const head = `{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":%q,"system_fingerprint":"fp_44709d6fcb","choices":[%s]%s}`
	usageNull := ""
	if includeUsage {
		usageNull = `,"usage":null`
	}
	var events []string
	add := func(choices string) {
		events = append(events, "data: "+fmt.Sprintf(head, model, choices, usageNull)+"\n\n")
	}
	add(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}`)
	for _, d := range chatDeltas() {
		add(fmt.Sprintf(`{"index":0,"delta":{"content":%q},"logprobs":null,"finish_reason":null}`, d))
	}
	add(`{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}`)
	if includeUsage {
		events = append(events, "data: "+fmt.Sprintf(`{"id":"chatcmpl-123","object":"chat.completion.chunk","created":1694268190,"model":%q,"system_fingerprint":"fp_44709d6fcb","choices":[],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":%d,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`,
			model, u.prompt, u.completion, u.prompt+u.completion, u.cached, u.reasoning)+"\n\n")
	}
	return append(events, "data: [DONE]\n\n")
}

// responseObject is a Responses API response in the given status.
func responseObject(model string, u usage, status string) string {
	output, usageJSON := `[]`, `null`
	if status != "in_progress" {
		output = `[{"type":"message","id":"msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b","status":"completed","role":"assistant","content":[{"type":"output_text","text":"In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool.","annotations":[]}]}]`
		usageJSON = fmt.Sprintf(`{"input_tokens":%d,"input_tokens_details":{"cached_tokens":%d},"output_tokens":%d,"output_tokens_details":{"reasoning_tokens":%d},"total_tokens":%d}`,
			u.prompt, u.cached, u.completion, u.reasoning, u.prompt+u.completion)
	}
	return fmt.Sprintf(`{"id":"resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b","object":"response","created_at":1741476542,"status":%q,"error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":%q,"output":%s,"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":null,"summary":null},"store":true,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[],"top_p":1.0,"truncation":"disabled","usage":%s,"user":null,"metadata":{}}`,
		status, model, output, usageJSON)
}

// responsesStream is a streamed Responses API call.
func responsesStream(model string, u usage) []string {
	const item = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
	ev := func(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }
	events := []string{
		ev("response.created", fmt.Sprintf(`{"type":"response.created","sequence_number":0,"response":%s}`, responseObject(model, u, "in_progress"))),
		ev("response.in_progress", fmt.Sprintf(`{"type":"response.in_progress","sequence_number":1,"response":%s}`, responseObject(model, u, "in_progress"))),
		ev("response.output_item.added", `{"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"`+item+`","status":"in_progress","type":"message","role":"assistant","content":[]}}`),
		ev("response.content_part.added", `{"type":"response.content_part.added","sequence_number":3,"item_id":"`+item+`","output_index":0,"content_index":0,"part":{"type":"output_text","annotations":[],"text":""}}`),
	}
	seq := 4
	for _, d := range chatDeltas() {
		events = append(events, ev("response.output_text.delta", fmt.Sprintf(`{"type":"response.output_text.delta","sequence_number":%d,"item_id":%q,"output_index":0,"content_index":0,"delta":%q,"logprobs":[]}`, seq, item, d)))
		seq++
	}
	text := strings.Join(chatDeltas(), "")
	events = append(events,
		ev("response.output_text.done", fmt.Sprintf(`{"type":"response.output_text.done","sequence_number":%d,"item_id":%q,"output_index":0,"content_index":0,"text":%q,"logprobs":[]}`, seq, item, text)),
		ev("response.completed", fmt.Sprintf(`{"type":"response.completed","sequence_number":%d,"response":%s}`, seq+1, responseObject(model, u, "completed"))),
	)
	return events
}

// anthropicMessage is a POST /v1/messages response.
func anthropicMessage(model string, u usage) string {
	return fmt.Sprintf(`{
  "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
  "type": "message",
  "role": "assistant",
  "model": %q,
  "content": [{"type": "text", "text": "Hello! I'm Claude, an AI assistant."}],
  "stop_reason": "end_turn",
  "stop_sequence": null,
  "usage": {
    "input_tokens": %d,
    "cache_creation_input_tokens": %d,
    "cache_read_input_tokens": %d,
    "cache_creation": {"ephemeral_5m_input_tokens": %d, "ephemeral_1h_input_tokens": 0},
    "output_tokens": %d,
    "service_tier": "standard"
  }
}`, model, u.prompt, u.cacheWrite, u.cached, u.cacheWrite, u.completion)
}

// anthropicStream is a streamed message: message_start carries the input
// usage and one output token; message_delta the cumulative output.
func anthropicStream(model string, u usage) []string {
	ev := func(typ, data string) string { return "event: " + typ + "\ndata: " + data + "\n\n" }
	events := []string{
		ev("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","type":"message","role":"assistant","content":[],"model":%q,"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"output_tokens":1}}}`, model, u.prompt, u.cacheWrite, u.cached)),
		ev("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		ev("ping", `{"type": "ping"}`),
	}
	for _, d := range chatDeltas() {
		events = append(events, ev("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, d)))
	}
	return append(events,
		ev("content_block_stop", `{"type":"content_block_stop","index":0}`),
		ev("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":%d}}`, u.completion)),
		ev("message_stop", `{"type":"message_stop"}`),
	)
}
