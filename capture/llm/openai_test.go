package llm_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture/llm"
)

// openaiClient is the official OpenAI client pointed at the proxy.
func openaiClient(env *proxyEnv, key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(env.srv.URL + "/v1/"),
		option.WithAPIKey(key),
		option.WithMaxRetries(0),
	}, opts...)...)
}

func chatParams(model string) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:    model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Describe the image.")},
	}
}

func TestChatCompletion(t *testing.T) {
	env := startProxy(t, llm.Config{UpstreamKeys: map[string]string{"*": realKey}})
	client := openaiClient(env, ciKey)
	for _, model := range []string{"gpt-4o", "o4-mini"} {
		resp, err := client.Chat.Completions.New(context.Background(), chatParams(model))
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		u := usageOf(model)
		if resp.Model != snapshotOf(model) || resp.Usage.PromptTokens != u.prompt || !strings.HasPrefix(resp.Choices[0].Message.Content, "The image shows") {
			t.Errorf("%s: client got model %q, prompt_tokens %d, content %q: not the upstream's answer", model, resp.Model, resp.Usage.PromptTokens, resp.Choices[0].Message.Content)
		}
		// The agent holds a proxy credential; the upstream sees the real key.
		if got := env.up.last().Header.Get("Authorization"); got != "Bearer "+realKey {
			t.Errorf("%s: upstream Authorization = %q, want the real key", model, got)
		}
	}
	evs := env.rec.wait(t, 2)
	for i, model := range []string{"gpt-4o", "o4-mini"} {
		e := evs[i]
		checkEvent(t, e, llm.ActionChatCompletions, snapshotOf(model), 200, agenttrail.ResultSuccess, ciActor)
		checkLLM(t, e, wantOpenAI(t, snapshotOf(model), usageOf(model), false))
		if e.Org != "acme" || e.Project != "payments" || e.ActorName != "CI agent" {
			t.Errorf("org, project, actor_name = %q %q %q, want acme payments \"CI agent\"", e.Org, e.Project, e.ActorName)
		}
		if strings.Contains(string(e.Metadata), "Describe the image") || strings.Contains(string(e.Metadata), "boardwalk") {
			t.Errorf("prompt or completion recorded without RecordBodies: %s", e.Metadata)
		}
	}
	// Reasoning tokens are inside output_tokens and billed once, as output.
	l, _ := evs[1].LLM()
	if l.ReasoningTokens != 1024 || l.OutputTokens != 1250 {
		t.Errorf("o4-mini reasoning, output = %d, %d; want 1024 inside 1250", l.ReasoningTokens, l.OutputTokens)
	}
}

// TestChatStreamUsageInjected streams a chat completion that does not ask
// for usage: the proxy asks upstream, records the usage, and the client
// receives exactly the bytes the upstream sends a client that did not ask.
func TestChatStreamUsageInjected(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	stream := client.Chat.Completions.NewStreaming(context.Background(), chatParams("gpt-4o-mini"))
	var text strings.Builder
	chunks := 0
	for stream.Next() {
		c := stream.Current()
		chunks++
		if c.JSON.Usage.Valid() || len(c.Choices) == 0 {
			t.Errorf("client got a chunk with usage or no choices it did not ask for: %s", c.RawJSON())
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Delta.Content)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(chatDeltas(), ""); text.String() != want || chunks != len(chatDeltas())+2 {
		t.Errorf("client got %d chunks, text %q; want %d, %q", chunks, text.String(), len(chatDeltas())+2, want)
	}
	so, _ := env.up.last().Body["stream_options"].(map[string]any)
	if so["include_usage"] != true {
		t.Errorf("upstream stream_options = %v, want include_usage true", env.up.last().Body["stream_options"])
	}
	e := env.rec.wait(t, 1)[0]
	checkEvent(t, e, llm.ActionChatCompletions, "gpt-4o-mini-2024-07-18", 200, agenttrail.ResultSuccess, ciActor)
	checkLLM(t, e, wantOpenAI(t, "gpt-4o-mini-2024-07-18", usageOf("gpt-4o-mini"), true))

	// Byte for byte, over plain HTTP.
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+ciKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := strings.Join(chatStream("gpt-4o-mini-2024-07-18", usageOf("gpt-4o-mini"), false), ""); string(got) != want {
		t.Errorf("client stream =\n%s\nwant what the upstream sends without include_usage:\n%s", got, want)
	}
	checkLLM(t, env.rec.wait(t, 2)[1], wantOpenAI(t, "gpt-4o-mini-2024-07-18", usageOf("gpt-4o-mini"), true))
}

// TestChatStreamUsageRequested: a client that asks for usage gets it.
func TestChatStreamUsageRequested(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	params := chatParams("gpt-4o")
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Usage.PromptTokens != usageOf("gpt-4o").prompt {
		t.Errorf("client usage prompt_tokens = %d, want %d", acc.Usage.PromptTokens, usageOf("gpt-4o").prompt)
	}
	e := env.rec.wait(t, 1)[0]
	checkLLM(t, e, wantOpenAI(t, "gpt-4o-2024-08-06", usageOf("gpt-4o"), true))
}

func TestResponses(t *testing.T) {
	env := startProxy(t, llm.Config{})
	client := openaiClient(env, ciKey)
	params := responses.ResponseNewParams{
		Model: "gpt-4.1",
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Tell me a three sentence bedtime story about a unicorn.")},
	}
	resp, err := client.Responses.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Usage.InputTokens != usageOf("gpt-4.1").prompt || !strings.Contains(resp.OutputText(), "unicorn") {
		t.Errorf("client got input_tokens %d, text %q: not the upstream's answer", resp.Usage.InputTokens, resp.OutputText())
	}
	stream := client.Responses.NewStreaming(context.Background(), params)
	var text strings.Builder
	completed := false
	for stream.Next() {
		ev := stream.Current()
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.completed":
			completed = ev.Response.Usage.OutputTokens == usageOf("gpt-4.1").completion
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != strings.Join(chatDeltas(), "") || !completed {
		t.Errorf("client stream text %q, completed with usage %v", text.String(), completed)
	}
	evs := env.rec.wait(t, 2)
	for i, stream := range []bool{false, true} {
		checkEvent(t, evs[i], llm.ActionResponses, "gpt-4.1-2025-04-14", 200, agenttrail.ResultSuccess, ciActor)
		checkLLM(t, evs[i], wantOpenAI(t, "gpt-4.1-2025-04-14", usageOf("gpt-4.1"), stream))
	}
}

// TestCompressedUpstream: the upstream compresses its answer, as the real
// APIs do; the proxy still reads the usage, and the client, whatever
// encodings it offered, gets a body it can read.
func TestCompressedUpstream(t *testing.T) {
	gz := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			t.Errorf("upstream Accept-Encoding = %q, want gzip offered", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, chatCompletion("gpt-4o-2024-08-06", usageOf("gpt-4o")))
		zw.Close()
	}))
	defer gz.Close()
	u, _ := url.Parse(gz.URL)
	env := startProxy(t, llm.Config{Upstream: u})
	req, _ := http.NewRequest(http.MethodPost, env.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","messages":[]}`))
	req.Header.Set("Authorization", "Bearer "+ciKey)
	req.Header.Set("Accept-Encoding", "br, zstd")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "" || !strings.Contains(string(b), `"prompt_tokens": 1117`) {
		t.Errorf("client got Content-Encoding %q and body %q, want the plain JSON", resp.Header.Get("Content-Encoding"), b)
	}
	checkLLM(t, env.rec.wait(t, 1)[0], wantOpenAI(t, "gpt-4o-2024-08-06", usageOf("gpt-4o"), false))
}
