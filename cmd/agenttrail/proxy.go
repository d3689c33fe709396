package main

import (
	"context"
	"flag"
	"fmt"
)

// proxies are the capture proxies of `agenttrail proxy <surface>`.
func proxies() []command {
	return []command{
		{"llm", "LLM API reverse proxy: OpenAI and Anthropic, tokens and cost", runProxyLLM},
		{"mcp", "MCP proxy: stdio (-- SERVER_COMMAND ARGS) or Streamable HTTP", runProxyMCP},
		{"egress", "HTTP forward proxy: CONNECT tunnels and plain HTTP, with an egress policy", runProxyEgress},
		{"kube", "Kubernetes API reverse proxy: verbs, resources, impersonation", runProxyKube},
		{"aws", "AWS API proxy: checks agents' SigV4, re-signs with the real keys", runProxyAWS},
		{"docker", "Docker Engine API proxy: container lifecycle, exec, docker cp", runProxyDocker},
	}
}

func runProxy(ctx context.Context, args []string, env *Env) error {
	if len(args) > 0 {
		for _, p := range proxies() {
			if p.name == args[0] {
				return p.run(ctx, args[1:], env)
			}
		}
		if args[0] != "-h" && args[0] != "--help" {
			fmt.Fprintf(env.Stderr, "agenttrail proxy: unknown proxy %q\n\n", args[0])
		}
	}
	fmt.Fprintln(env.Stderr, "usage: agenttrail proxy <surface> [flags]")
	fmt.Fprintln(env.Stderr)
	for _, p := range proxies() {
		fmt.Fprintf(env.Stderr, "  %-8s %s\n", p.name, p.summary)
	}
	fmt.Fprintln(env.Stderr)
	fmt.Fprintln(env.Stderr, "Run 'agenttrail proxy <surface> -h' for its flags.")
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		return flag.ErrHelp
	}
	return errUsage
}
