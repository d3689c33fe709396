package llm_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// anthropicClient is the official Anthropic client pointed at the proxy.
func anthropicClient(env *proxyEnv, key string) anthropic.Client {
	return anthropic.NewClient(
		option.WithBaseURL(env.srv.URL),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	)
}

func messageParams(model string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello, Claude"))},
	}
}

func TestMessages(t *testing.T) {
	const real = "sk-ant-api03-REALUPSTREAMKEY-0123456789"
	env := startProxy(t, llm.Config{UpstreamKeys: map[string]string{claudeActor: real}})
	client := anthropicClient(env, claudeKey)
	for _, model := range []string{"claude-sonnet-4-5", "claude-haiku-4-5"} {
		msg, err := client.Messages.New(context.Background(), messageParams(model))
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if msg.Usage.CacheCreationInputTokens != usageOf(model).cacheWrite || !strings.HasPrefix(msg.Content[0].Text, "Hello!") {
			t.Errorf("%s: client got cache_creation %d, text %q: not the upstream's answer", model, msg.Usage.CacheCreationInputTokens, msg.Content[0].Text)
		}
		if got := presentedKey(env.up.last().Header); got != real {
			t.Errorf("%s: upstream got key %q, want the real key", model, got)
		}
	}
	// Clients that send the key in x-api-key, as the API reference shows.
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/messages",
		strings.NewReader(`{"model":"claude-haiku-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]}`))
	req.Header.Set("x-api-key", claudeKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if h := env.up.last().Header; h.Get("X-Api-Key") != real || h.Get("Authorization") != "" {
		t.Errorf("upstream x-api-key, authorization = %q, %q; want the real key in x-api-key only", h.Get("X-Api-Key"), h.Get("Authorization"))
	}

	evs := env.rec.wait(t, 3)
	for i, model := range []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-haiku-4-5"} {
		checkEvent(t, evs[i], llm.ActionMessages, snapshotOf(model), 200, agenttrail.ResultSuccess, claudeActor)
		checkLLM(t, evs[i], wantAnthropic(t, snapshotOf(model), usageOf(model), false))
	}
}

func TestMessagesStream(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := anthropicClient(env, claudeKey)
	stream := client.Messages.NewStreaming(context.Background(), messageParams("claude-sonnet-4-5"))
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	u := usageOf("claude-sonnet-4-5")
	if msg.Content[0].Text != strings.Join(chatDeltas(), "") || msg.Usage.OutputTokens != u.completion {
		t.Errorf("client accumulated %q with %d output tokens", msg.Content[0].Text, msg.Usage.OutputTokens)
	}
	// The agent's own key is forwarded when no upstream key is configured.
	if got := presentedKey(env.up.last().Header); got != claudeKey {
		t.Errorf("upstream got key %q, want the agent's key", got)
	}
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionMessages, "claude-sonnet-4-5-20250929", 200, agenttrail.ResultSuccess, claudeActor)
	checkLLM(t, e, wantAnthropic(t, "claude-sonnet-4-5-20250929", u, true))
}

// presentedKey is the API key a request carries, in either header.
func presentedKey(h http.Header) string {
	if k := h.Get("X-Api-Key"); k != "" {
		return k
	}
	return strings.TrimPrefix(h.Get("Authorization"), "Bearer ")
}
