package mcp

import (
	"context"
	"fmt"
	"os"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The test binary plays the MCP server of the stdio tests when this variable
// is set: the proxy runs it as its child, like any server command.
const envTestServer = "AGENTTRAIL_MCP_TEST_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(envTestServer) == "1" {
		fmt.Fprintln(os.Stderr, "test server: starting")
		err := newTestServer().Run(context.Background(), &sdk.StdioTransport{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "test server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type echoIn struct {
	Msg   string `json:"msg"`
	Token string `json:"token,omitempty"`
}

type askIn struct {
	Question string `json:"question"`
}

type crashIn struct {
	Code int `json:"code"`
}

// newTestServer is the MCP server behind the proxy in every test: tools
// that succeed, report an error, block until cancelled, ask the user
// (elicitation) and crash the process; a prompt and a resource.
func newTestServer() *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "test-server", Version: "1.2.3"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Description: "echoes msg"},
		func(_ context.Context, _ *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Msg}}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "fail", Description: "always fails"},
		func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "disk full"}}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "slow", Description: "reports progress, then waits until cancelled"},
		func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2})
				if err != nil {
					return nil, nil, err
				}
			}
			<-ctx.Done()
			return nil, nil, ctx.Err()
		})
	sdk.AddTool(s, &sdk.Tool{Name: "ask", Description: "asks the user"},
		func(ctx context.Context, req *sdk.CallToolRequest, in askIn) (*sdk.CallToolResult, any, error) {
			res, err := req.Session.Elicit(ctx, &sdk.ElicitParams{
				Message: in.Question,
				RequestedSchema: map[string]any{
					"type":       "object",
					"properties": map[string]any{"answer": map[string]any{"type": "string"}},
				},
			})
			if err != nil {
				return nil, nil, err
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "user chose " + res.Action}}}, nil, nil
		})
	sdk.AddTool(s, &sdk.Tool{Name: "crash", Description: "exits the server process"},
		func(_ context.Context, _ *sdk.CallToolRequest, in crashIn) (*sdk.CallToolResult, any, error) {
			os.Exit(in.Code)
			return nil, nil, nil
		})
	s.AddPrompt(&sdk.Prompt{Name: "greet", Arguments: []*sdk.PromptArgument{{Name: "who"}}},
		func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
			return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{
				{Role: "user", Content: &sdk.TextContent{Text: "hello " + req.Params.Arguments["who"]}},
			}}, nil
		})
	s.AddResource(&sdk.Resource{URI: "file:///readme.md", Name: "readme", MIMEType: "text/markdown"},
		func(context.Context, *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
				{URI: "file:///readme.md", MIMEType: "text/markdown", Text: "# Read me"},
			}}, nil
		})
	return s
}

// newTestClient is the agent: an SDK client that answers elicitations with
// answer ("accept" or "decline").
func newTestClient(answer string) *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "test-agent", Version: "0.9.1"}, &sdk.ClientOptions{
		ElicitationHandler: func(context.Context, *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			if answer == "accept" {
				return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"answer": "yes"}}, nil
			}
			return &sdk.ElicitResult{Action: answer}, nil
		},
	})
}
