package llm

import (
	"testing"

	"github.com/agenttrail/agenttrail"
)

// TestMeterEvents feeds stream events to the meters and checks the usage
// and the outcome they read.
func TestMeterEvents(t *testing.T) {
	for _, tc := range []struct {
		name         string
		m            meter
		events       []string
		want         agenttrail.LLM
		done, failed bool
	}{
		{
			name: "anthropic cumulative delta",
			m:    messagesMeter{},
			events: []string{
				`{"type":"message_start","message":{"model":"claude-opus-4-1-20250805","usage":{"input_tokens":10,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"output_tokens":1}}}`,
				`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}`,
				// Newer API versions repeat every counter, cumulatively.
				`{"type":"message_delta","delta":{},"usage":{"input_tokens":12,"cache_creation_input_tokens":5,"cache_read_input_tokens":7,"output_tokens":90,"output_tokens_details":{"thinking_tokens":30}}}`,
				`{"type":"message_stop"}`,
			},
			want: agenttrail.LLM{InputTokens: 12, OutputTokens: 90, CacheWriteTokens: 5, CacheReadTokens: 7, ReasoningTokens: 30},
			done: true,
		},
		{
			name: "anthropic overloaded mid-stream",
			m:    messagesMeter{},
			events: []string{
				`{"type":"message_start","message":{"model":"claude-opus-4-1-20250805","usage":{"input_tokens":10,"output_tokens":1}}}`,
				`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			},
			want:   agenttrail.LLM{InputTokens: 10, OutputTokens: 1},
			failed: true,
		},
		{
			name: "responses failed",
			m:    responsesMeter{},
			events: []string{
				`{"type":"response.created","response":{"model":"o3-2025-04-16","usage":null}}`,
				`{"type":"response.failed","response":{"model":"o3-2025-04-16","status":"failed","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":20},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":3}}}}`,
			},
			want: agenttrail.LLM{InputTokens: 30, CacheReadTokens: 20, OutputTokens: 5, ReasoningTokens: 3},
			done: true, failed: true,
		},
		{
			name: "responses incomplete (max_output_tokens) is complete as a stream",
			m:    responsesMeter{},
			events: []string{
				`{"type":"response.incomplete","response":{"model":"o3","status":"incomplete","usage":{"input_tokens":8,"output_tokens":16,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":4}}}}`,
			},
			want: agenttrail.LLM{InputTokens: 4, CacheWriteTokens: 4, OutputTokens: 16},
			done: true,
		},
		{
			name:   "chat error chunk",
			m:      chatMeter{},
			events: []string{`{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}`},
			failed: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &call{}
			for _, data := range tc.events {
				tc.m.event(c, &sseEvent{Data: []byte(data), Raw: []byte("data: " + data + "\n\n")})
			}
			if c.usage != tc.want || c.done != tc.done || c.failed != tc.failed {
				t.Errorf("usage %+v done %v failed %v; want %+v done %v failed %v", c.usage, c.done, c.failed, tc.want, tc.done, tc.failed)
			}
		})
	}
}
