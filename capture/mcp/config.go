package mcp

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// Defaults for the zero fields of Config.
const (
	DefaultPreviewBytes   = 1 << 10
	DefaultArgumentsBytes = 16 << 10
	DefaultTimeout        = 10 * time.Minute
	DefaultMaxBodyBytes   = 16 << 20
)

// Config configures a Stdio or HTTPProxy. Recorder and Identities are
// required; every other zero field takes the default documented on it. A
// Config is copied by the constructors and not retained.
type Config struct {
	// Recorder receives one event per request/response pair, redacted.
	Recorder capture.Recorder
	// Identities resolves the agent: over HTTP from the bearer token or the
	// X-Agenttrail-Actor-Id header (which is removed before forwarding);
	// over stdio it is always Identities.Default.
	Identities *capture.Identities
	// Redactor masks secrets in arguments, previews and the whole event
	// before it is recorded; nil means the built-in rules
	// (redact.Builtin).
	Redactor *redact.Redactor
	// ServerName names the MCP server in events. When empty, the name the
	// server reports in serverInfo is used.
	ServerName string
	// Logger logs what the proxy could not observe; nil discards.
	Logger *slog.Logger
	// PreviewBytes caps metadata.mcp.content_preview (default 1 KiB).
	PreviewBytes int
	// ArgumentsBytes caps the encoded metadata.mcp.arguments (default
	// 16 KiB): beyond it, long strings inside are shortened.
	ArgumentsBytes int
	// Timeout is how long a request may wait for its response before it is
	// recorded as an error (default 10 minutes).
	Timeout time.Duration
	// MaxBodyBytes is the largest HTTP body (or event of a stream) an
	// HTTPProxy observes (default 16 MiB). Larger ones are relayed without
	// being read: a request is then not recorded, a response is recorded as
	// an uninspected success. Stdio observes every line it relays.
	MaxBodyBytes int64
	// Now is the clock events are stamped with; nil means time.Now.
	Now func() time.Time

	// Upstream is the URL of the MCP server behind an HTTPProxy; every
	// request, whatever its path, is sent to it. Unused by Stdio.
	Upstream string
	// Transport sends an HTTPProxy's requests upstream; nil means a clone of
	// http.DefaultTransport. Unused by Stdio.
	Transport http.RoundTripper
}

// withDefaults checks c and fills its zero fields. Recorder becomes the
// redacting recorder of Redactor.
func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Recorder == nil:
		return c, errors.New("mcp proxy: config has no Recorder")
	case c.Identities == nil:
		return c, errors.New("mcp proxy: config has no Identities")
	}
	rec := capture.NewRedacting(c.Recorder, c.Redactor)
	c.Recorder, c.Redactor = rec, rec.Redactor()
	defaults.Logger(&c.Logger)
	defaults.Positive(&c.PreviewBytes, DefaultPreviewBytes)
	defaults.Positive(&c.ArgumentsBytes, DefaultArgumentsBytes)
	defaults.Positive(&c.Timeout, DefaultTimeout)
	defaults.Positive(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	defaults.Clock(&c.Now)
	return c, nil
}
