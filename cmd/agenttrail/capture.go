package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
// (--identities), extra redaction patterns (--redact) and the process's own
// heartbeat (--heartbeat).
type captureFlags struct {
	sf            serverFlags
	self          string // the process's name, e.g. proxy-mcp: its heartbeats are from <self>@<host>
	spool         string
	heartbeat     time.Duration
	actorID       string
	actorName     string
	actorType     string
	org           string
	project       string
	session       string
	identities    string
	allowUnmapped bool
	redact        string
}

// register registers the flags of the capture process self: "proxy-mcp",
// "exec", "watch", ….
func (f *captureFlags) register(fs *flag.FlagSet, env *Env, self string) {
	f.sf.register(fs, env)
	f.self = self
	fs.StringVar(&f.spool, "spool", "", "spool directory: events wait here while the server is unreachable; each running process takes a free numbered slot in it (default: a directory per surface under the user cache dir)")
	fs.DurationVar(&f.heartbeat, "heartbeat", 30*time.Second, "interval of this process's heartbeats, which `agenttrail gaps` watches; 0 turns them off")
	fs.StringVar(&f.actorID, "actor-id", env.Getenv("AGENTTRAIL_ACTOR_ID"), "default actor id (env AGENTTRAIL_ACTOR_ID)")
	fs.StringVar(&f.actorName, "actor-name", "", "default actor display name")
	fs.StringVar(&f.actorType, "actor-type", string(agenttrail.ActorAgent), "default actor type: agent, user or system")
	fs.StringVar(&f.org, "org", "", "org to record under (default: the token's org)")
	fs.StringVar(&f.project, "project", "", "project to record under")
	fs.StringVar(&f.session, "session", env.Getenv(capture.EnvSessionID), "default session (the agent's task or conversation) of what a request names none for (env AGENTTRAIL_SESSION_ID)")
	fs.StringVar(&f.identities, "identities", "", `JSON file mapping credentials agents present to actors: {"<credential>": {"actor_id": "...", "org": "...", "project": "...", "session": "default session of its actions"}}`)
	fs.BoolVar(&f.allowUnmapped, "allow-unmapped", false, "with --identities, also let through requests whose credential is not mapped, as the actor the X-Agenttrail-Actor-Id header names or the default actor (otherwise they are refused)")
	fs.StringVar(&f.redact, "redact", "", `JSON file of extra redaction patterns: [{"kind": "...", "regexp": "..."}]`)
	if f.spool == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			f.spool = filepath.Join(dir, "agenttrail", "spool-"+strings.TrimPrefix(self, "proxy-"))
		}
	}
}

// defaultActor is the actor recorded when a request names no other.
func (f *captureFlags) defaultActor() capture.Actor {
	return capture.Actor{Type: agenttrail.ActorType(f.actorType), ID: f.actorID, Name: f.actorName, Org: f.org, Project: f.project,
		Session: capture.CleanSessionID(f.session)}
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
	if f.heartbeat < 0 {
		return nil, errors.New("--heartbeat: must not be negative")
	}
	rec, err := f.openRecorder(env, logger)
	if err != nil {
		return nil, err
	}
	return &captureDeps{Recorder: rec, Identities: ids, Redactor: redactor, Logger: logger}, nil
}

// maxSpoolSlots bounds the numbered slots under one --spool directory: as
// many capture processes of one kind as may run at once on a host.
const maxSpoolSlots = 64

// openRecorder starts the process's Recorder. Every capture process owns
// its producer: it takes the first free slot under --spool (0, 1, …), which
// the Recorder locks for as long as the process runs, so two processes never
// share a producer and a process that fails to start never touches another's
// state. The events a process left in its slot are replayed by the next one
// that takes it. The process heartbeats as itself, <self>@<host>, a system
// actor, whatever actors its events name.
func (f *captureFlags) openRecorder(env *Env, logger *slog.Logger) (*client.Recorder, error) {
	cfg := client.RecorderConfig{
		Heartbeat: f.heartbeat, HeartbeatActorID: f.self + "@" + hostname(), HeartbeatActorType: agenttrail.ActorSystem,
		ActorType: agenttrail.ActorType(f.actorType), ActorID: f.actorID, ActorName: f.actorName,
		Org: f.org, Project: f.project,
		Logger: logger,
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = client.HeartbeatOff
	}
	c := newClient(f.sf)
	if f.spool == "" {
		return client.NewRecorder(c, cfg)
	}
	for i := range maxSpoolSlots {
		cfg.SpoolDir = filepath.Join(f.spool, strconv.Itoa(i))
		rec, err := client.NewRecorder(c, cfg)
		if !errors.Is(err, client.ErrSpoolInUse) {
			if err != nil {
				return nil, fmt.Errorf("--spool: %w", err)
			}
			return rec, nil
		}
	}
	fmt.Fprintf(env.Stderr, "agenttrail %s: all %d spool slots under %s are in use; recording without a spool\n", f.self, maxSpoolSlots, f.spool)
	cfg.SpoolDir = ""
	return client.NewRecorder(c, cfg)
}

// hostname names this host in the heartbeat actor of a capture process.
func hostname() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}

// openBound is open for a process that bound its listeners first: when
// open fails it closes them, so a failed start holds nothing.
func (f *captureFlags) openBound(env *Env, bound ...io.Closer) (*captureDeps, error) {
	deps, err := f.open(env)
	if err != nil {
		for _, c := range bound {
			c.Close()
		}
	}
	return deps, err
}

// listenOpen listens on the TCP address addr, then opens what the flags
// name, as openBound does.
func (f *captureFlags) listenOpen(env *Env, addr string) (net.Listener, *captureDeps, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	deps, err := f.openBound(env, ln)
	if err != nil {
		return nil, nil, err
	}
	return ln, deps, nil
}

// closeLogged is Close for a defer: it logs what could not be flushed.
func (d *captureDeps) closeLogged(what string) {
	if err := d.Close(); err != nil {
		d.Logger.Warn(what+": flush events", "err", err)
	}
}

// Close flushes what was recorded: to the server when it answers within a
// few seconds, otherwise to the spool.
func (d *captureDeps) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.Recorder.Close(ctx)
}
