package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/agenttrail/agenttrail/app"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/config"
	"github.com/agenttrail/agenttrail/ingest"
	"github.com/agenttrail/agenttrail/redact"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/wire"
)

// serveFlags reads the flags of `agenttrail serve` into the app.Config of
// the server they describe.
func serveFlags(args []string, env *Env) (app.Config, error) {
	var cfg app.Config
	fs := newFlagSet("serve", env)
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:7311", "listen address")
	fs.StringVar(&cfg.DataDir, "data", "./agenttrail-data", "data directory (embedded store, spool, tokens)")
	fs.StringVar(&cfg.Store, "store", "sqlite", "store: sqlite (embedded, in --data) or postgres://user@host:port/db")
	retain := fs.String("retain", "", "delete events older than this (e.g. 400d or 7y); default: keep everything")
	fs.Int64Var(&cfg.SpoolMaxBytes, "spool-max-bytes", ingest.DefaultSpoolMaxBytes, "bound of the spool in <data>/spool that keeps ingest going while the store is down; past it ingest answers 503")
	fs.StringVar(&cfg.SigningKey, "signing-key", "", "file of the Ed25519 key that signs checkpoints (make one with agenttrail signing-key FILE); default: <data>/signing.key, created on first start; required on a cluster's writer and query nodes, which keep it out of the store")
	fs.Int64Var(&cfg.CheckpointEvery, "checkpoint-every", 10000, "sign a checkpoint of an org's tree after this many new events…")
	fs.DurationVar(&cfg.CheckpointInterval, "checkpoint-interval", 10*time.Second, "…or this long after its first unsigned event, whichever comes first")
	fs.StringVar(&cfg.CheckpointDir, "checkpoint-dir", "", "also write every signed checkpoint to a file in this directory (<dir>/<org>/<size>.checkpoint)")
	redactFile := securityFlags(fs, &cfg)
	natsMaxAge := clusterFlags(fs, &cfg)
	configFile := fs.String("config", "", "YAML configuration file: every flag has a key there (a flag given here wins), and sinks and retention rules live only there")
	if err := parse(fs, args); err != nil {
		return cfg, err
	}
	if *configFile != "" {
		if err := applyConfig(fs, *configFile, &cfg); err != nil {
			return cfg, err
		}
	}
	if *retain != "" {
		d, err := config.ParseKeep(*retain)
		if err != nil {
			fmt.Fprintf(env.Stderr, "--retain: %v\n", err)
			return cfg, errUsage
		}
		cfg.Retain = d
	}
	if *natsMaxAge != "" {
		d, err := wire.ParseDuration(*natsMaxAge)
		if err != nil || d <= 0 {
			fmt.Fprintf(env.Stderr, "--nats-max-age: bad duration %q (want e.g. 7d or 36h)\n", *natsMaxAge)
			return cfg, errUsage
		}
		cfg.NATS.MaxAge = d
	}
	if *redactFile != "" {
		var err error
		if cfg.RedactPatterns, err = redact.LoadPatterns(*redactFile); err != nil {
			return cfg, fmt.Errorf("--redact: %w", err)
		}
	}
	return cfg, nil
}

// applyConfig sets every flag the configuration file sets and the command
// line did not, through the flag's own parser, and takes the sinks and
// retention rules, which only the file has.
func applyConfig(fs *flag.FlagSet, path string, cfg *app.Config) error {
	file, err := config.Load(path)
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, s := range file.Settings() {
		if given[s.Flag] {
			continue // the command line wins
		}
		if err := fs.Set(s.Flag, s.Value); err != nil {
			return fmt.Errorf("config %s: line %d: %s: %v", path, s.Line, s.Key, err)
		}
	}
	cfg.Sinks = file.Sinks
	for i, r := range file.Retention.Rules {
		keep, _ := config.ParseKeep(r.Keep) // checked by Load
		if len(r.Source)+len(r.Org)+len(r.Project) == 0 {
			return fmt.Errorf("config %s: retention.rules[%d]: give source, org or project (retention.default is the rule for every other event)", path, i)
		}
		cfg.RetentionRules = append(cfg.RetentionRules, app.RetentionRule{Source: r.Source, Org: r.Org, Project: r.Project, Keep: keep})
	}
	return nil
}

// clusterFlags registers the flags of a node of a cluster on NATS
// JetStream, and returns where the --nats-max-age text goes.
func clusterFlags(fs *flag.FlagSet, cfg *app.Config) *string {
	fs.StringVar(&cfg.Role, "role", app.RoleAll, "this node's part: all (one process; with --nats, all parts in one), ingest, writer or query (each needs --nats)")
	fs.StringVar(&cfg.NATS.URL, "nats", "", "NATS server URL(s), comma-separated (nats://host:4222): ingest publishes to a JetStream stream and a writer commits it into the store")
	fs.StringVar(&cfg.NATS.Stream, "nats-stream", cluster.DefaultStream, "name of the JetStream stream")
	fs.StringVar(&cfg.NATS.Subject, "nats-subject", cluster.DefaultSubject, "subject prefix of the stream; an event of org O goes to PREFIX.O")
	fs.Int64Var(&cfg.NATS.MaxBytes, "nats-max-bytes", cluster.DefaultMaxBytes, "bytes the stream may hold; past it ingest nodes spool")
	fs.IntVar(&cfg.NATS.Replicas, "nats-replicas", 1, "replicas of the stream (3 on a 3-node NATS cluster)")
	return fs.String("nats-max-age", "7d", "age past which the stream drops events (committed or not)")
}

// securityFlags registers the flags of the server's transport, redaction
// and rate limit, and returns where the --redact file name goes. Tokens
// need no flag: they live in <data>/tokens.json.
func securityFlags(fs *flag.FlagSet, cfg *app.Config) *string {
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; needs --tls-key")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&cfg.AllowPlaintext, "allow-plaintext", false, "allow a non-loopback --addr without TLS (behind a TLS-terminating proxy)")
	fs.Float64Var(&cfg.RateLimit.Rate, "rate-limit", app.DefaultRate, "requests per second each token may make on average; 0 for no limit")
	fs.IntVar(&cfg.RateLimit.Burst, "rate-burst", app.DefaultBurst, "requests a token may make at once above --rate-limit")
	fs.StringVar(&cfg.MetricsAuth, "metrics-auth", "auto", "whether /metrics needs a read or admin token of every org: on, off, or auto (on unless --addr is loopback)")
	fs.Float64Var(&cfg.AnonymousRateLimit.Rate, "anon-rate-limit", app.DefaultAnonymousRate, "requests per second each client address may make without a valid token (health, metrics, sign-in, failed authentication); 0 for no limit")
	fs.IntVar(&cfg.AnonymousRateLimit.Burst, "anon-rate-burst", app.DefaultAnonymousBurst, "requests a client address may make at once above --anon-rate-limit")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", server.DefaultMaxBodyBytes, "bytes the ingest request bodies being read may hold at once, server-wide; over it ingest answers 503 with Retry-After")
	return fs.String("redact", "", `JSON file of extra redaction patterns applied to every event before it is stored: [{"kind": "...", "regexp": "..."}]`)
}

// runServe runs the server until ctx ends: the assembly of package app, the
// same one the tests and `agenttrail bench` run.
func runServe(ctx context.Context, args []string, env *Env) error {
	cfg, err := serveFlags(args, env)
	if err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
	m, err := app.Open(ctx, cfg)
	if err != nil {
		return err
	}
	if link := m.SignInURL(); link != "" {
		fmt.Fprintf(env.Stderr, "\nOpen the console (the link works once, for %v; `agenttrail console` makes another):\n  %s\n\n", server.LoginTTL, link)
	} else {
		fmt.Fprintf(env.Stderr, "\nThe console is at %s/ (sign in with a link from `agenttrail console`)\n\n", m.URL())
	}
	return m.Run(ctx)
}
