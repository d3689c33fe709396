package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/client"
	"github.com/agenttrail/agenttrail/internal/private"
	"github.com/agenttrail/agenttrail/redact"
)

// captureFlags are the flags every capture subcommand shares: where events
// go (--server, --token, --spool), who is acting by default (--actor-id,
// --actor-name, --org, --project), credential-to-actor mappings
// (--identities) and extra redaction patterns (--redact).
type captureFlags struct {
	sf            serverFlags
	spool         string
	actorID       string
	actorName     string
	actorType     string
	org           string
	project       string
	identities    string
	allowUnmapped bool
	redact        string
}

func (f *captureFlags) register(fs *flag.FlagSet, env *Env, surface string) {
	f.sf.register(fs, env)
	fs.StringVar(&f.spool, "spool", "", "spool directory: events wait here while the server is unreachable (default: a directory per surface under the user cache dir)")
	fs.StringVar(&f.actorID, "actor-id", env.Getenv("AGENTTRAIL_ACTOR_ID"), "default actor id (env AGENTTRAIL_ACTOR_ID)")
	fs.StringVar(&f.actorName, "actor-name", "", "default actor display name")
	fs.StringVar(&f.actorType, "actor-type", string(agenttrail.ActorAgent), "default actor type: agent, user or system")
	fs.StringVar(&f.org, "org", "", "org to record under (default: the token's org)")
	fs.StringVar(&f.project, "project", "", "project to record under")
	fs.StringVar(&f.identities, "identities", "", `JSON file mapping credentials agents present to actors: {"<credential>": {"actor_id": "...", "org": "...", "project": "..."}}`)
	fs.BoolVar(&f.allowUnmapped, "allow-unmapped", false, "with --identities, also let through requests whose credential is not mapped, as the actor the X-Agenttrail-Actor-Id header names or the default actor (otherwise they are refused)")
	fs.StringVar(&f.redact, "redact", "", `JSON file of extra redaction patterns: [{"kind": "...", "regexp": "..."}]`)
	if f.spool == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			f.spool = dir + "/agenttrail/spool-" + surface
		}
	}
}

// defaultActor is the actor recorded when a request names no other.
func (f *captureFlags) defaultActor() capture.Actor {
	return capture.Actor{Type: agenttrail.ActorType(f.actorType), ID: f.actorID, Name: f.actorName, Org: f.org, Project: f.project}
}

// captureDeps is what a capture subcommand records with. Close flushes the
// Recorder: it waits up to a few seconds for the server, then leaves the
// rest in the spool for the next run.
type captureDeps struct {
	Recorder   *client.Recorder
	Identities *capture.Identities
	Redactor   *redact.Redactor
	Logger     *slog.Logger
}

func (f *captureFlags) open(env *Env) (*captureDeps, error) {
	switch agenttrail.ActorType(f.actorType) {
	case agenttrail.ActorAgent, agenttrail.ActorUser, agenttrail.ActorSystem:
	default:
		return nil, fmt.Errorf("--actor-type: must be agent, user or system, not %q", f.actorType)
	}
	logger := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ids := &capture.Identities{Default: f.defaultActor()}
	if f.identities != "" {
		var err error
		if ids, err = capture.LoadIdentities(f.identities, f.defaultActor()); err != nil {
			return nil, fmt.Errorf("--identities: %w", err)
		}
	}
	ids.AllowUnmapped = f.allowUnmapped
	var patterns []redact.Pattern
	if f.redact != "" {
		var err error
		if patterns, err = redact.LoadPatterns(f.redact); err != nil {
			return nil, fmt.Errorf("--redact: %w", err)
		}
	}
	redactor, err := redact.New(patterns...)
	if err != nil {
		return nil, fmt.Errorf("--redact: %w", err)
	}
	if f.spool != "" {
		if err := private.MkdirAll(f.spool); err != nil {
			return nil, fmt.Errorf("--spool: %w", err)
		}
	}
	heartbeat := time.Duration(0)
	if f.actorID == "" {
		heartbeat = client.HeartbeatOff // a heartbeat needs an actor to be about
	}
	rec, err := client.NewRecorder(newClient(f.sf), client.RecorderConfig{
		SpoolDir: f.spool, Heartbeat: heartbeat,
		ActorType: agenttrail.ActorType(f.actorType), ActorID: f.actorID, ActorName: f.actorName,
		Org: f.org, Project: f.project,
		Logger: logger,
	})
	if err != nil {
		return nil, err
	}
	return &captureDeps{Recorder: rec, Identities: ids, Redactor: redactor, Logger: logger}, nil
}

// Close flushes what was recorded: to the server when it answers within a
// few seconds, otherwise to the spool.
func (d *captureDeps) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.Recorder.Close(ctx)
}
