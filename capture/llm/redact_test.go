package llm_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/agenttrail/agenttrail/capture/llm"
)

// TestRecordBodiesRedacted puts API keys in the request headers and in the
// prompt, records bodies with no Redactor configured, and proves no key
// reaches the recorded event while the prompt and completion do.
func TestRecordBodiesRedacted(t *testing.T) {
	env := startProxy(t, llm.Config{RecordBodies: true, UpstreamKeys: map[string]string{"*": realKey}})
	const (
		anthropicProd = "sk-ant-api03-Xq9vT2mLp8RkZ4wYb7NcHd3JfGs6AeUo1iKlMnBvCxZaQwErTy-u5PqW0AA"
		awsKey        = "AKIAIOSFODNN7EXAMPLE"
	)
	prompt := "Deploy with my proxy key " + ciKey + ", the prod key " + anthropicProd +
		" and the AWS key " + awsKey + ". Then summarise the release notes."
	client := openaiClient(env, ciKey)
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
	if _, err := client.Chat.Completions.New(context.Background(), params); err != nil {
		t.Fatal(err)
	}
	stream := client.Chat.Completions.NewStreaming(context.Background(), params)
	for stream.Next() {
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	for i, e := range env.rec.wait(t, 2) {
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{ciKey, realKey, anthropicProd, awsKey} {
			if strings.Contains(string(raw), secret) {
				t.Errorf("event %d holds the secret %q: %s", i, secret, raw)
			}
		}
		var md struct {
			Bodies llm.Bodies `json:"llm_bodies"`
		}
		if err := json.Unmarshal(e.Metadata, &md); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(md.Bodies.Request, "Then summarise the release notes.") || !strings.Contains(md.Bodies.Request, `"model":"gpt-4o"`) {
			t.Errorf("event %d: recorded request = %q, want the prompt", i, md.Bodies.Request)
		}
		wantText := "The image shows"
		if i == 1 {
			wantText = strings.Join(chatDeltas(), "")
		}
		if !strings.HasPrefix(md.Bodies.Completion, wantText) {
			t.Errorf("event %d: recorded completion = %q, want it to start with %q", i, md.Bodies.Completion, wantText)
		}
		if strings.Contains(md.Bodies.Request, "include_usage") {
			t.Errorf("event %d: recorded request = %q; want the client's, not the amended one", i, md.Bodies.Request)
		}
	}
}
