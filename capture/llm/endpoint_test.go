package llm

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"
)

func TestInspectRequest(t *testing.T) {
	for _, tc := range []struct {
		name, action, body string
		injected           bool
		wantOpts           map[string]any // stream_options forwarded; nil: none
	}{
		{"no options", ActionChatCompletions, `{"model":"gpt-4o","stream":true,"messages":[]}`, true, map[string]any{"include_usage": true}},
		{"null options", ActionChatCompletions, `{"model":"gpt-4o","stream":true,"stream_options":null}`, true, map[string]any{"include_usage": true}},
		{"other option kept", ActionChatCompletions, `{"model":"gpt-4o","stream":true,"stream_options":{"include_obfuscation":false}}`, true, map[string]any{"include_usage": true, "include_obfuscation": false}},
		{"usage off", ActionChatCompletions, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":false}}`, true, map[string]any{"include_usage": true}},
		{"usage asked", ActionChatCompletions, `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}`, false, map[string]any{"include_usage": true}},
		{"not streamed", ActionChatCompletions, `{"model":"gpt-4o","messages":[]}`, false, nil},
		{"responses", ActionResponses, `{"model":"gpt-4o","stream":true}`, false, nil},
		{"not JSON", ActionChatCompletions, `model=gpt-4o`, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, out, injected := inspectRequest(tc.action, []byte(tc.body))
			if injected != tc.injected {
				t.Errorf("injected = %v, want %v", injected, tc.injected)
			}
			if !injected && string(out) != tc.body {
				t.Errorf("body changed to %s without injecting", out)
			}
			var m map[string]any
			if json.Unmarshal(out, &m) != nil {
				if tc.name != "not JSON" {
					t.Fatalf("forwarded body is not JSON: %s", out)
				}
				return
			}
			if info.Model != "gpt-4o" {
				t.Errorf("model = %q", info.Model)
			}
			got, _ := m["stream_options"].(map[string]any)
			if !reflect.DeepEqual(got, tc.wantOpts) {
				t.Errorf("stream_options = %v, want %v (body %s)", got, tc.wantOpts, out)
			}
		})
	}
}

func TestStripUsageNull(t *testing.T) {
	for in, want := range map[string]string{
		`data: {"id":"x","choices":[],"usage":null}` + "\n\n":                 `data: {"id":"x","choices":[]}` + "\n\n",
		`data: {"usage":null,"id":"x"}`:                                       `data: {"id":"x"}`,
		`data: {"id":"x", "usage" : null , "obfuscation":"ab"}`:               `data: {"id":"x" , "obfuscation":"ab"}`,
		`data: {"id":"x","usage":{"prompt_tokens":1}}`:                        `data: {"id":"x","usage":{"prompt_tokens":1}}`,
		`data: {"id":"x","choices":[{"delta":{"content":"\"usage\":null"}}]}`: `data: {"id":"x","choices":[{"delta":{"content":"\"usage\":null"}}]}`,
	} {
		if got := string(stripUsageNull([]byte(in))); got != want {
			t.Errorf("stripUsageNull(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		configured   Provider
		header       string
		action       string
		provider     Provider
		metered      bool
	}{
		{"POST", "/v1/chat/completions", ProviderAuto, "", ActionChatCompletions, ProviderOpenAI, true},
		{"POST", "/api/v1/chat/completions/", ProviderAuto, "", ActionChatCompletions, ProviderOpenAI, true},
		{"POST", "/v1/responses", ProviderOpenAI, "", ActionResponses, ProviderOpenAI, true},
		{"GET", "/v1/responses/resp_123", ProviderAuto, "", "GET /v1/responses/resp_123", ProviderOpenAI, false},
		{"POST", "/v1/messages", ProviderAuto, "", ActionMessages, ProviderAnthropic, true},
		{"POST", "/v1/messages/count_tokens", ProviderAuto, "x-api-key", "POST /v1/messages/count_tokens", ProviderAnthropic, false},
		{"POST", "/v1/messages", ProviderOpenAI, "", "POST /v1/messages", ProviderOpenAI, false},
		{"GET", "/v1/models", ProviderAnthropic, "", "GET /v1/models", ProviderAnthropic, false},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.header != "" {
			r.Header.Set(tc.header, "k")
		}
		ep := classify(r, tc.configured)
		if ep.action != tc.action || ep.provider != tc.provider || (ep.meter != nil) != tc.metered {
			t.Errorf("classify(%s %s, %s) = %q %q metered %v; want %q %q %v", tc.method, tc.path, tc.configured,
				ep.action, ep.provider, ep.meter != nil, tc.action, tc.provider, tc.metered)
		}
	}
}
