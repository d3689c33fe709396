package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/agenttrail/agenttrail/capture/llm"
)

// runProxyLLM runs the LLM API proxy:
//
//	agenttrail proxy llm --listen ADDR --upstream URL [--provider openai|anthropic|auto]
//	                     [--prices FILE] [--record-bodies] [--upstream-keys FILE]
//	                     [--budgets=false] [--budget-unreachable allow|deny] [--budget-allowances=false]
//	                     [--max-output-tokens N] [capture flags]
//
// Agents point their SDK's base URL at --listen (OpenAI: http://ADDR/v1,
// Anthropic: http://ADDR); every call is forwarded to --upstream and recorded
// with its token usage and cost.
func runProxyLLM(ctx context.Context, args []string, env *Env) error {
	fs := newFlagSet("proxy llm", env)
	var cf captureFlags
	cf.register(fs, env, "proxy-llm")
	listen := fs.String("listen", "127.0.0.1:7330", "address to serve the proxy on")
	upstream := fs.String("upstream", "", "LLM API base URL, e.g. https://api.openai.com or https://api.anthropic.com (required)")
	provider := fs.String("provider", string(llm.ProviderAuto), "API of the upstream: openai, anthropic, or auto (by endpoint)")
	prices := fs.String("prices", "", `JSON price table overriding and extending the built-in one: {"models": {"<model>": {"input": 2.5, "output": 10, "cache_read": 1.25, "cache_write": 2.5}}, "aliases": {"<alias>": "<model>"}} (USD per million tokens)`)
	recordBodies := fs.Bool("record-bodies", false, "also record request bodies and completion text, redacted and capped at 64 KiB each")
	upstreamKeys := fs.String("upstream-keys", "", `JSON file mapping actor ids (from --identities) to the real upstream API key sent in place of the agent's credential: {"<actor_id>": "<key>", "*": "<key for every other mapped actor>"}`)
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus /metrics on this address (e.g. 127.0.0.1:9330)")
	budgets := fs.Bool("budgets", true, "enforce the trail's budgets: reserve each call's worst-case cost with the server before it goes upstream, refuse it (429) at a limit")
	unreachable := fs.String("budget-unreachable", "allow", "when the server cannot be asked about budgets: allow (let calls through, recorded as budget_unchecked) or deny (refuse them, 503)")
	allowances := fs.Bool("budget-allowances", true, "admit an agent's calls against an allowance of budget room the server grants ahead, with no round trip per call (a budget change then reaches an agent within 2 s); false makes every call ask the server")
	maxOutput := fs.Int64("max-output-tokens", 32768, "output tokens a request that sets no max_tokens is assumed to produce at worst, for its budget reservation")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *upstream == "" {
		fmt.Fprintln(fs.Output(), "--upstream is required")
		return errUsage
	}
	up, err := url.Parse(*upstream)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		fmt.Fprintf(fs.Output(), "--upstream: want an http(s) URL, not %q\n", *upstream)
		return errUsage
	}
	if *unreachable != "allow" && *unreachable != "deny" {
		fmt.Fprintf(fs.Output(), "--budget-unreachable: want allow or deny, not %q\n", *unreachable)
		return errUsage
	}
	if *upstreamKeys != "" && cf.identities == "" {
		fmt.Fprintln(fs.Output(), "--upstream-keys needs --identities: keys are only sent for mapped credentials")
		return errUsage
	}

	cfg := llm.Config{Upstream: up, Provider: llm.Provider(*provider), RecordBodies: *recordBodies}
	if *prices != "" {
		if cfg.Prices, err = llm.LoadPrices(*prices); err != nil {
			return fmt.Errorf("--prices: %w", err)
		}
	}
	if *upstreamKeys != "" {
		b, err := os.ReadFile(*upstreamKeys)
		if err != nil {
			return fmt.Errorf("--upstream-keys: %w", err)
		}
		if err := json.Unmarshal(b, &cfg.UpstreamKeys); err != nil {
			return fmt.Errorf("--upstream-keys: %s: %w", *upstreamKeys, err)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	reg := prometheus.NewRegistry()
	servers := []listening{{&http.Server{}, ln}}
	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		servers = append(servers, listening{&http.Server{Handler: mux}, mln})
	}
	deps, err := cf.open(env)
	if err != nil {
		closeListeners(servers...)
		return err
	}
	defer deps.closeLogged("llm proxy")
	cfg.Recorder, cfg.Identities, cfg.Redactor = deps.Recorder, deps.Identities, deps.Redactor
	cfg.Logger, cfg.Registerer = deps.Logger, reg
	if *budgets {
		cfg.Budget = &llm.BudgetConfig{Trail: newClient(cf.sf), DenyUnreachable: *unreachable == "deny", MaxOutputTokens: *maxOutput, NoAllowances: !*allowances}
	}
	p, err := llm.New(cfg)
	if err != nil {
		closeListeners(servers...)
		return err
	}
	servers[0].srv.Handler = p
	fmt.Fprintf(env.Stderr, "agenttrail proxy llm: http://%s → %s\n", ln.Addr(), up.Redacted())
	// Streams in flight may run for minutes; they get a little time, then
	// are cut: each is still recorded, as incomplete.
	err = serveCapture(ctx, deps.Logger, 10*time.Second, servers...)
	p.WaitSettled() // before the Recorder closes
	return err
}
