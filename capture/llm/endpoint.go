package llm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// Provider names an LLM API family.
type Provider string

// The providers the proxy understands. ProviderAuto tells them apart by the
// endpoint and, for other paths, by the Anthropic headers.
const (
	ProviderAuto      Provider = "auto"
	ProviderOpenAI    Provider = "openai"
	ProviderAnthropic Provider = "anthropic"
)

// The actions of the three metered endpoints.
const (
	ActionChatCompletions = "chat.completions"
	ActionResponses       = "responses"
	ActionMessages        = "messages"
)

// endpoint is what the proxy knows about a request's API: its action and
// the meter that reads its usage. A nil meter means "forward unchanged,
// record method and path only".
type endpoint struct {
	action   string
	provider Provider
	meter    meter
}

// classify recognises the metered endpoints by path suffix, so an upstream
// mounted under a prefix (an "/api/v1/chat/completions" gateway) works too.
func classify(r *http.Request, configured Provider) endpoint {
	if r.Method == http.MethodPost {
		p := strings.TrimSuffix(r.URL.Path, "/")
		switch {
		case strings.HasSuffix(p, "/chat/completions") && configured != ProviderAnthropic:
			return endpoint{action: ActionChatCompletions, provider: ProviderOpenAI, meter: chatMeter{}}
		case strings.HasSuffix(p, "/responses") && configured != ProviderAnthropic:
			return endpoint{action: ActionResponses, provider: ProviderOpenAI, meter: responsesMeter{}}
		case strings.HasSuffix(p, "/messages") && configured != ProviderOpenAI:
			return endpoint{action: ActionMessages, provider: ProviderAnthropic, meter: messagesMeter{}}
		}
	}
	prov := configured
	if prov == ProviderAuto || prov == "" {
		prov = ProviderOpenAI
		if r.Header.Get("x-api-key") != "" || r.Header.Get("anthropic-version") != "" {
			prov = ProviderAnthropic
		}
	}
	return endpoint{action: r.Method + " " + r.URL.Path, provider: prov}
}

// requestInfo is what the proxy reads from a metered request body.
type requestInfo struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	// The output caps of Chat Completions (max_tokens, or
	// max_completion_tokens), Responses and Messages: the worst case a
	// budget reserves for.
	MaxTokens           int64 `json:"max_tokens"`
	MaxCompletionTokens int64 `json:"max_completion_tokens"`
	MaxOutputTokens     int64 `json:"max_output_tokens"`
	StreamOptions       *struct {
		IncludeUsage *bool `json:"include_usage"`
	} `json:"stream_options"`
}

// inspectRequest reads the model and stream flag of body. For a streamed
// chat completion that did not ask for usage it returns a body asking for it
// (stream_options.include_usage) and injected = true: OpenAI reports stream
// usage only on request, and the proxy hides the extra chunk again. Bodies
// it cannot parse are forwarded unchanged.
func inspectRequest(action string, body []byte) (info requestInfo, out []byte, injected bool) {
	if err := json.Unmarshal(body, &info); err != nil {
		return requestInfo{}, body, false
	}
	if action != ActionChatCompletions || !info.Stream {
		return info, body, false
	}
	if info.StreamOptions == nil && !bytes.Contains(body, []byte(`"stream_options"`)) {
		// The common case: splice the option in after the opening brace
		// instead of re-encoding a body that may hold megabytes of images.
		i := bytes.IndexByte(body, '{')
		out := make([]byte, 0, len(body)+40)
		out = append(out, body[:i+1]...)
		out = append(out, `"stream_options":{"include_usage":true},`...)
		out = append(out, body[i+1:]...)
		return info, out, true
	}
	if so := info.StreamOptions; so != nil && so.IncludeUsage != nil && *so.IncludeUsage {
		return info, body, false
	}
	var top map[string]json.RawMessage
	var opts map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["stream_options"], &opts) != nil {
		return info, body, false
	}
	if opts == nil {
		opts = map[string]json.RawMessage{}
	}
	opts["include_usage"] = json.RawMessage("true")
	var err error
	if top["stream_options"], err = json.Marshal(opts); err != nil {
		return info, body, false
	}
	if out, err = json.Marshal(top); err != nil {
		return info, body, false
	}
	return info, out, true
}
