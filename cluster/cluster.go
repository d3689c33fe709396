// Package cluster runs agenttrail on several machines on NATS JetStream:
// ingest nodes publish the events they accepted to a stream (Publisher) and
// answer only once JetStream acknowledged them; one writer per store
// consumes the stream and commits through the same write path (Writer),
// holding a PostgreSQL advisory lock so that standbys wait until it dies.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/agenttrail/agenttrail/internal/defaults"
)

// Config is how a node reaches the stream. URL is required; every other
// zero field takes its default.
type Config struct {
	// URL is one NATS server or several, comma-separated.
	URL string
	// Stream is the name of the JetStream stream (default "AGENTTRAIL").
	Stream string
	// Subject is the prefix of the stream's subjects (default
	// "agenttrail.events"): an event of org O is published to Subject.O.
	Subject string
	// MaxBytes and MaxAge bound the stream (defaults 1 GiB and 7 days);
	// past them JetStream refuses new events (DiscardNew), so ingest spools
	// instead of the stream dropping the oldest events unwritten.
	MaxBytes int64
	MaxAge   time.Duration
	// Replicas is the stream's replica count (default 1; 3 on a cluster).
	Replicas int
	// Durable is the writers' consumer name (default "writer").
	Durable string
	// Name names this connection in the NATS server's monitoring.
	Name string
	// Logger logs connection changes; nil discards.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultStream   = "AGENTTRAIL"
	DefaultSubject  = "agenttrail.events"
	DefaultMaxBytes = 1 << 30
	DefaultMaxAge   = 7 * 24 * time.Hour
	DefaultDurable  = "writer"
)

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	defaults.Positive(&c.MaxBytes, DefaultMaxBytes)
	defaults.Positive(&c.MaxAge, DefaultMaxAge)
	defaults.Positive(&c.Replicas, 1)
	if c.Durable == "" {
		c.Durable = DefaultDurable
	}
	defaults.Logger(&c.Logger)
	return c
}

// Check reports what is wrong with c without connecting.
func (c Config) Check() error {
	if strings.TrimSpace(c.URL) == "" {
		return errors.New("--nats: no NATS server URL")
	}
	for _, u := range strings.Split(c.URL, ",") {
		if !strings.Contains(u, "://") {
			return fmt.Errorf("--nats: %q is not a URL (want nats://host:port)", u)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("--nats-replicas: want 1 to 5, not %d", c.Replicas)
	}
	if c.MaxBytes < 0 || c.MaxAge < 0 {
		return errors.New("--nats-max-bytes and --nats-max-age must not be negative")
	}
	return nil
}

// Conn is a node's connection to NATS and its stream.
type Conn struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	log *slog.Logger
}

// publishWindow bounds the messages in flight at once: Publisher sends a
// batch's messages in chunks of it.
const publishWindow = 4096

// Connect connects to NATS. It waits for the first connection no longer
// than ctx allows; a node whose NATS is down at start fails, like one whose
// store is down. Later disconnections are retried forever.
func Connect(ctx context.Context, cfg Config) (*Conn, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		// No buffering while disconnected: a publish fails at once, and
		// the caller spools, rather than holding events in memory.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("disconnected from NATS", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
	}
	if dl, ok := ctx.Deadline(); ok {
		opts = append(opts, nats.Timeout(time.Until(dl)))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("--nats: connect to %s: %w", cfg.URL, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(publishWindow))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("--nats: %w", err)
	}
	return &Conn{cfg: cfg, nc: nc, js: js, log: log}, nil
}

// EnsureStream creates the stream, or updates it when its limits differ
// from the configuration's. A stream that already matches is left alone, so
// nodes starting side by side do not rewrite its configuration under one
// another.
func (c *Conn) EnsureStream(ctx context.Context) error {
	want := jetstream.StreamConfig{
		Name:        c.cfg.Stream,
		Description: "agenttrail events accepted by ingest nodes, until a writer commits them",
		Subjects:    []string{c.cfg.Subject + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    c.cfg.MaxBytes,
		MaxAge:      c.cfg.MaxAge,
		Replicas:    c.cfg.Replicas,
		Duplicates:  2 * time.Minute,
	}
	s, err := c.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		_, err = c.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return c.EnsureStream(ctx) // another node created it first
		}
	case err == nil:
		have := s.CachedInfo().Config
		if have.Description != want.Description || !slices.Equal(have.Subjects, want.Subjects) ||
			have.Discard != want.Discard || have.MaxBytes != want.MaxBytes || have.MaxAge != want.MaxAge ||
			have.Replicas != want.Replicas || have.Duplicates != want.Duplicates {
			_, err = c.js.UpdateStream(ctx, want)
		}
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	return nil
}

// Ping reports whether NATS and the stream answer.
func (c *Conn) Ping(ctx context.Context) error {
	if !c.nc.IsConnected() {
		return fmt.Errorf("NATS is not connected (%s)", c.nc.Status())
	}
	if _, err := c.js.Stream(ctx, c.cfg.Stream); err != nil {
		return fmt.Errorf("stream %s: %w", c.cfg.Stream, err)
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() {
	c.nc.Close()
}

// Subject returns the subject the events of org are published to. An org is
// [A-Za-z0-9._-]; its dots, which would split the subject, become '~'.
func (c *Conn) Subject(org string) string {
	return c.cfg.Subject + "." + strings.ReplaceAll(org, ".", "~")
}

// DeleteStream deletes the stream and every event in it: for a stream of
// one's own, such as a benchmark's.
func (c *Conn) DeleteStream(ctx context.Context) error {
	return c.js.DeleteStream(ctx, c.cfg.Stream)
}
