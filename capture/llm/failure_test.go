package llm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/capture/llm"
)

func TestUpstreamRateLimited(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	_, err := client.Chat.Completions.New(context.Background(), chatParams("rate-limited"))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTooManyRequests || apiErr.Code != "rate_limit_exceeded" {
		t.Fatalf("client error = %v, want the upstream's 429 rate_limit_exceeded", err)
	}
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionChatCompletions, "rate-limited", 429, agenttrail.ResultFailure, ciActor)
	checkLLM(t, e, agenttrail.LLM{Provider: "openai", Model: "rate-limited"})
	if n := unknownCount(t, env.reg, "rate-limited"); n != 0 {
		t.Errorf("a call without usage counted as an unknown model (%v)", n)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	env := startProxy(t, llm.Config{Upstream: dead})
	client := anthropicClient(env, claudeKey)
	_, err = client.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"))
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("client error = %v, want a 502 from the proxy", err)
	}
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionMessages, "claude-sonnet-4-5", 502, agenttrail.ResultError, claudeActor)
	if !strings.Contains(e.Description, "upstream unreachable") {
		t.Errorf("description = %q, want it to say the upstream is unreachable", e.Description)
	}
	checkLLM(t, e, agenttrail.LLM{Provider: "anthropic", Model: "claude-sonnet-4-5"})
}

// TestStreamCutByUpstream: the upstream drops the connection after
// message_start; the event keeps the input usage it reported and says the
// call is incomplete.
func TestStreamCutByUpstream(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := anthropicClient(env, claudeKey)
	stream := client.Messages.NewStreaming(context.Background(), messageParams("cut-claude-sonnet-4-5"))
	for stream.Next() {
	}
	if stream.Err() == nil {
		t.Error("client stream ended cleanly, want an error: the upstream cut it")
	}
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionMessages, "claude-sonnet-4-5-20250929", 200, agenttrail.ResultSuccess, claudeActor)
	u := usageOf("claude-sonnet-4-5")
	u.completion = 1 // all message_start said
	want := wantAnthropic(t, "claude-sonnet-4-5-20250929", u, true)
	want.Incomplete = true
	checkLLM(t, e, want)
}

// TestStreamClientGone: the client reads the first chunk and leaves.
func TestStreamClientGone(t *testing.T) {
	env := startProxy(t, llm.Config{})
	env.up.hold = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	client := openaiClient(env, ciKey)
	stream := client.Chat.Completions.NewStreaming(ctx, chatParams("gpt-4o"))
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	cancel()
	stream.Close()
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionChatCompletions, "gpt-4o-2024-08-06", 200, agenttrail.ResultSuccess, ciActor)
	checkLLM(t, e, agenttrail.LLM{Provider: "openai", Model: "gpt-4o-2024-08-06", Stream: true, Incomplete: true})
	if strings.Contains(e.Description, "upstream") {
		t.Errorf("description = %q blames the upstream for a client that left", e.Description)
	}
}

func TestUnknownModel(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	for range 2 {
		if _, err := client.Chat.Completions.New(context.Background(), chatParams("mystery-model-7")); err != nil {
			t.Fatal(err)
		}
	}
	evs := env.rec.wait(t, 2)
	u := usageOf("mystery-model-7")
	checkLLM(t, evs[1], agenttrail.LLM{Provider: "openai", Model: "mystery-model-7", InputTokens: u.prompt, OutputTokens: u.completion, CostUnknown: true})
	if n := unknownCount(t, env.reg, "mystery-model-7"); n != 2 {
		t.Errorf("agenttrail_llm_unknown_model_total{model=mystery-model-7} = %v, want 2", n)
	}
	if d := evs[1].Description; !strings.HasPrefix(d, "mystery-model-7: ") || !strings.Contains(d, "cost unknown") {
		t.Errorf("description = %q, want the model and that its cost is unknown", d)
	}
	if !strings.Contains(string(evs[1].Metadata), `"cost_unknown":true`) {
		t.Errorf("metadata = %s, want metadata.llm.cost_unknown true", evs[1].Metadata)
	}
}

// TestDescription checks the sentence a priced call gets.
func TestDescription(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	if _, err := client.Chat.Completions.New(context.Background(), chatParams("gpt-4o")); err != nil {
		t.Fatal(err)
	}
	e := env.rec.wait(t, 1)[0]
	l, _ := e.LLM()
	want := fmt.Sprintf("%s: %s in / %s out tokens", l.Model, commas(l.InputTokens), commas(l.OutputTokens))
	if l.CacheReadTokens > 0 {
		want += fmt.Sprintf(" (+%s cache read)", commas(l.CacheReadTokens))
	}
	want += fmt.Sprintf(", $%.4f", *l.CostUSD)
	if e.Description != want {
		t.Errorf("description = %q, want %q", e.Description, want)
	}
}

// commas is the test's own thousands separator.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// TestUnknownKeyRefused checks the rule every proxy with identities
// follows: a key not in Identities is refused with the provider's 401,
// recorded as denied, and never reaches the upstream; the official SDKs
// raise their authentication error. With AllowUnmapped it goes through.
func TestUnknownKeyRefused(t *testing.T) {
	env := startProxy(t, llm.Config{})
	const guessed = "sk-guessed-key-0000000000"
	oai, ant := openaiClient(env, guessed), anthropicClient(env, guessed)
	_, err := oai.Chat.Completions.New(context.Background(), chatParams("gpt-4o"),
		option.WithHeader(capture.HeaderActorID, "agent-ci"), option.WithMaxRetries(0))
	var oaiErr *openai.Error
	if !errors.As(err, &oaiErr) || oaiErr.StatusCode != http.StatusUnauthorized || oaiErr.Code != "invalid_api_key" {
		t.Fatalf("OpenAI with an unknown key: %v, want 401 invalid_api_key", err)
	}
	_, err = ant.Messages.New(context.Background(), messageParams("claude-sonnet-4-5"), anthropicoption.WithMaxRetries(0))
	var antErr *anthropic.Error
	if !errors.As(err, &antErr) || antErr.StatusCode != http.StatusUnauthorized || !strings.Contains(antErr.RawJSON(), "authentication_error") {
		t.Fatalf("Anthropic with an unknown key: %v, want 401 authentication_error", err)
	}
	if n := env.up.count(); n != 0 {
		t.Fatalf("the upstream saw %d requests with unknown keys", n)
	}
	for i, e := range env.rec.wait(t, 2) {
		if e.Result != agenttrail.ResultDenied || e.StatusCode != http.StatusUnauthorized || e.ActorID != "unattributed" || !strings.Contains(e.Description, "not mapped") {
			t.Errorf("event %d: %s %d by %q, %q; want a 401 denied by the default actor", i, e.Result, e.StatusCode, e.ActorID, e.Description)
		}
	}

	ids := testIdentities()
	ids.AllowUnmapped = true
	open := openaiClient(startProxy(t, llm.Config{Identities: ids}), guessed)
	if _, err := open.Chat.Completions.New(context.Background(), chatParams("gpt-4o")); err != nil {
		t.Fatalf("with AllowUnmapped: %v", err)
	}
}

// TestOtherPath: paths the proxy does not meter pass through and are
// recorded by method and path.
func TestOtherPath(t *testing.T) {
	env := startProxy(t, llm.Config{})
	req, _ := http.NewRequest(http.MethodGet, env.srv.URL+"/v1/models?limit=5", nil)
	req.Header.Set("Authorization", "Bearer "+ciKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"owned_by":"system"`) {
		t.Fatalf("GET /v1/models = %d %s", resp.StatusCode, b)
	}
	e := env.rec.wait(t, 1)[0]
	if e.Action != "GET /v1/models" || e.Result != agenttrail.ResultSuccess || e.StatusCode != 200 || e.ResourceID != "" || e.ActorID != ciActor {
		t.Errorf("event = %q %q %d resource %q actor %q; want GET /v1/models success 200, no resource, %s", e.Action, e.Result, e.StatusCode, e.ResourceID, e.ActorID, ciActor)
	}
	checkLLM(t, e, agenttrail.LLM{Provider: "openai"})
}

// TestActorHeader: an unmapped credential with the actor header is
// attributed to the header's actor, the header is not forwarded, and the
// credential is not swapped for the real key — a header proves nothing.
func TestActorHeader(t *testing.T) {
	ids := testIdentities()
	ids.AllowUnmapped = true
	env := startProxy(t, llm.Config{UpstreamKeys: map[string]string{"*": realKey}, Identities: ids})
	const own = "sk-own-key-of-some-agent-42"
	client := openaiClient(env, own)
	ctx := context.Background()
	_, err := client.Chat.Completions.New(ctx, chatParams("gpt-4o-mini"), option.WithHeader(capture.HeaderActorID, "agent-nightly"))
	if err != nil {
		t.Fatal(err)
	}
	seen := env.up.last()
	if seen.Header.Get(capture.HeaderActorID) != "" {
		t.Error("the actor header reached the upstream")
	}
	if got := seen.Header.Get("Authorization"); got != "Bearer "+own {
		t.Errorf("upstream Authorization = %q, want the agent's own key", got)
	}
	e := env.rec.wait(t, 1)[0]
	if e.ActorID != "agent-nightly" || e.Org != "acme" {
		t.Errorf("actor, org = %q %q, want agent-nightly acme", e.ActorID, e.Org)
	}
}
