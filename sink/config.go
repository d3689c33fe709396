package sink

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/export"
	"github.com/agenttrail/agenttrail/wire"
)

// The sink types.
const (
	TypeFile          = "file"
	TypeWebhook       = "webhook"
	TypeSyslog        = "syslog"
	TypeSplunkHEC     = "splunk_hec"
	TypeElasticsearch = "elasticsearch"
	TypeOTLP          = "otlp"
	TypeS3            = "s3"
)

// Types lists the sink types this build delivers to.
func Types() []string {
	return []string{TypeFile, TypeWebhook, TypeSyslog, TypeSplunkHEC, TypeElasticsearch, TypeOTLP, TypeS3}
}

// FormatNative is the API's event JSON, one object a line: export.NDJSON.
const FormatNative = "native"

// Config is one sink of the configuration file's sinks list. The zero value
// of every optional field is the documented default. Secrets come only
// from a file (*_file) or an environment variable (*_env), never inline,
// so a configuration file can be shown and committed.
type Config struct {
	// Name is unique among the sinks; the checkpoint is kept under it.
	Name string `yaml:"name"`
	// Type is one of Types().
	Type string `yaml:"type"`
	// Format is native (default), ocsf, cef or csv; syslog also takes
	// json (= native).
	Format string `yaml:"format"`
	// Filter selects the events delivered, with the API's filter names
	// (source, result, org, …; since and until are not allowed).
	Filter map[string][]string `yaml:"filter"`
	// Batch bounds one delivery.
	Batch BatchLimits `yaml:"batch"`
	// Retry bounds the wait between attempts (exponential backoff with
	// full jitter; a Retry-After answer is honoured up to Max).
	Retry Retry `yaml:"retry"`
	// Required makes retention wait for this sink: no event it has not
	// delivered is deleted.
	Required bool `yaml:"required"`

	// URL is the receiver of webhook, splunk_hec, elasticsearch, otlp,
	// and the endpoint of an S3-compatible store.
	URL string `yaml:"url"`
	// Address is syslog's tcp://host:port or tls://host:port (6514 by
	// default).
	Address string `yaml:"address"`
	// Path is the file sink's file.
	Path string `yaml:"path"`
	// Rotate is the file sink's rotation.
	Rotate Rotate `yaml:"rotate"`

	// TokenFile or TokenEnv hold the HEC token (splunk_hec) or the API key
	// (elasticsearch: "Authorization: ApiKey …").
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// SecretFile or SecretEnv hold the webhook's signing secret.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
	// Ack waits for HEC indexer acknowledgement before the checkpoint
	// moves.
	Ack bool `yaml:"ack"`
	// Index is the Elasticsearch index (default "agenttrail"), or the HEC
	// index (default: the token's).
	Index string `yaml:"index"`
	// CAFile is a PEM bundle of the CAs the receiver's certificate must
	// chain to; default: the system's.
	CAFile string `yaml:"ca_file"`
	// Hostname is the syslog HOSTNAME; default: this host's name.
	Hostname string `yaml:"hostname"`

	// Bucket, Prefix and Region place S3 objects.
	Bucket string `yaml:"bucket"`
	Prefix string `yaml:"prefix"`
	Region string `yaml:"region"`
}

// BatchLimits bound one delivery: at most MaxEvents events (default 500) and
// MaxBytes encoded bytes (default 1 MiB), and a batch that is not full is
// held at most MaxWait (default 1s) for more events.
type BatchLimits struct {
	MaxEvents int      `yaml:"max_events"`
	MaxBytes  ByteSize `yaml:"max_bytes"`
	MaxWait   Duration `yaml:"max_wait"`
}

// Retry bounds the backoff between attempts: the first waits up to Min
// (default 500ms), each next one up to twice as long, never more than Max
// (default 1m).
type Retry struct {
	Min Duration `yaml:"min"`
	Max Duration `yaml:"max"`
}

// Rotate says when the file sink starts a new file: past MaxBytes (default
// 100 MiB) or MaxAge (default 24h); Gzip compresses the closed ones.
type Rotate struct {
	MaxBytes ByteSize `yaml:"max_bytes"`
	MaxAge   Duration `yaml:"max_age"`
	Gzip     bool     `yaml:"gzip"`
}

// Defaults of a sink.
const (
	DefaultMaxEvents = 500
	DefaultMaxBytes  = 1 << 20
	DefaultMaxWait   = time.Second
	DefaultRetryMin  = 500 * time.Millisecond
	DefaultRetryMax  = time.Minute
	DefaultRotate    = 100 << 20
	DefaultRotateAge = 24 * time.Hour
	DefaultS3Wait    = 5 * time.Minute
)

// ByteSize is a number of bytes written as 1048576, 512KiB, 1MiB or 1GiB
// (KB, MB, GB are the same powers of 1024).
type ByteSize int64

var sizeRE = regexp.MustCompile(`^\s*([0-9]+)\s*([KMG]i?B|B)?\s*$`)

// UnmarshalText parses a size.
func (b *ByteSize) UnmarshalText(text []byte) error {
	m := sizeRE.FindStringSubmatch(string(text))
	if m == nil {
		return fmt.Errorf("bad size %q (want bytes, or a number with KiB, MiB or GiB)", text)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return fmt.Errorf("bad size %q", text)
	}
	shift := map[string]uint{"": 0, "B": 0, "KB": 10, "KiB": 10, "MB": 20, "MiB": 20, "GB": 30, "GiB": 30}[m[2]]
	if n > (1<<62)>>shift {
		return fmt.Errorf("size %q is too large", text)
	}
	*b = ByteSize(n << shift)
	return nil
}

// Duration is a duration written as Go writes them (500ms, 1m30s) or in
// days (7d).
type Duration time.Duration

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := wire.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("bad duration %q (want e.g. 500ms, 1s, 5m or 7d)", text)
	}
	*d = Duration(v)
	return nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Check reports the first thing wrong with c, naming the key at fault, and
// fills in the defaults. It reads the secret files and variables it names,
// so a missing one is found before anything starts.
func (c *Config) Check() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("sink %q: %s: %s", c.Name, key, fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(c.Name) {
		return fmt.Errorf("sink %q: name: want lowercase letters, digits, '.', '_' or '-', at most 63", c.Name)
	}
	known := false
	for _, t := range Types() {
		known = known || t == c.Type
	}
	if !known {
		return bad("type", "want one of %s, not %q", strings.Join(Types(), ", "), c.Type)
	}
	switch c.Format {
	case "", FormatNative:
		c.Format = FormatNative
	case export.OCSF, export.CEF, export.CSV:
	case "json":
		if c.Type != TypeSyslog {
			return bad("format", "json is syslog's name for native")
		}
		c.Format = FormatNative
	default:
		return bad("format", "want native, ocsf, cef or csv, not %q", c.Format)
	}
	if c.Format == export.CSV && c.Type != TypeFile && c.Type != TypeS3 {
		return bad("format", "csv is for the file and s3 sinks")
	}
	if c.Type == TypeElasticsearch && c.Format != FormatNative && c.Format != export.OCSF {
		return bad("format", "elasticsearch indexes JSON documents: native or ocsf")
	}
	if _, err := c.filter(); err != nil {
		return bad("filter", "%v", err)
	}
	if c.Batch.MaxEvents < 0 || c.Batch.MaxBytes < 0 || c.Batch.MaxWait < 0 || c.Retry.Min < 0 || c.Retry.Max < 0 {
		return bad("batch", "limits must not be negative")
	}
	if c.Batch.MaxEvents == 0 {
		c.Batch.MaxEvents = DefaultMaxEvents
		if c.Type == TypeS3 {
			c.Batch.MaxEvents = s3MaxEvents
		}
	}
	if c.Batch.MaxEvents > 10000 {
		return bad("batch.max_events", "at most 10000")
	}
	if c.Batch.MaxBytes == 0 {
		c.Batch.MaxBytes = DefaultMaxBytes
		if c.Type == TypeS3 {
			c.Batch.MaxBytes = s3MaxBytes
		}
	}
	if c.Batch.MaxWait == 0 {
		c.Batch.MaxWait = Duration(DefaultMaxWait)
		if c.Type == TypeS3 {
			c.Batch.MaxWait = Duration(DefaultS3Wait)
		}
	}
	if c.Retry.Min == 0 {
		c.Retry.Min = Duration(DefaultRetryMin)
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = Duration(DefaultRetryMax)
	}
	if c.Retry.Max < c.Retry.Min {
		return bad("retry.max", "below retry.min")
	}
	switch c.Type {
	case TypeFile:
		if c.Path == "" {
			return bad("path", "required for a file sink")
		}
		if c.Rotate.MaxBytes == 0 {
			c.Rotate.MaxBytes = DefaultRotate
		}
		if c.Rotate.MaxAge == 0 {
			c.Rotate.MaxAge = Duration(DefaultRotateAge)
		}
	case TypeSyslog:
		if _, _, err := syslogAddress(c.Address); err != nil {
			return bad("address", "%v", err)
		}
	case TypeS3:
		if c.Bucket == "" {
			return bad("bucket", "required for an s3 sink")
		}
		if c.URL != "" {
			if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return bad("url", "the endpoint of an S3-compatible store: an http:// or https:// URL, not %q", c.URL)
			}
		}
	case TypeWebhook, TypeSplunkHEC, TypeElasticsearch, TypeOTLP:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("url", "want an http:// or https:// URL, not %q", c.URL)
		}
	}
	if c.Type == TypeSplunkHEC {
		if _, err := c.Token(); err != nil {
			return err
		}
	}
	if c.Type == TypeWebhook {
		if _, err := c.Secret(); err != nil {
			return err
		}
	}
	if c.CAFile != "" {
		if _, err := os.ReadFile(c.CAFile); err != nil {
			return bad("ca_file", "%v", err)
		}
	}
	return nil
}

// filter is the Filter of c's filter key, parsed as the API parses query
// parameters.
func (c *Config) filter() (agenttrail.Filter, error) {
	v := url.Values{}
	for k, vals := range c.Filter {
		if k == "since" || k == "until" || k == "q" {
			return agenttrail.Filter{}, fmt.Errorf("%s: a sink follows every new event; filter by fields only", k)
		}
		v[k] = vals
	}
	if err := wire.CheckParams(v); err != nil {
		return agenttrail.Filter{}, err
	}
	return wire.ParseFilter(v, time.Now())
}

// Token returns the secret of token_file or token_env ("" when neither is
// set and the type needs none).
func (c *Config) Token() (string, error) {
	return c.secret("token", c.TokenFile, c.TokenEnv, c.Type == TypeSplunkHEC)
}

// Secret returns the webhook signing secret of secret_file or secret_env;
// "" when neither is set (then the webhook is not signed).
func (c *Config) Secret() (string, error) {
	return c.secret("secret", c.SecretFile, c.SecretEnv, false)
}

func (c *Config) secret(key, file, env string, required bool) (string, error) {
	switch {
	case file != "" && env != "":
		return "", fmt.Errorf("sink %q: %s_file and %s_env: give one", c.Name, key, key)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("sink %q: %s_file: %w", c.Name, key, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("sink %q: %s_file: %s is empty", c.Name, key, file)
		}
		return s, nil
	case env != "":
		s := strings.TrimSpace(os.Getenv(env))
		if s == "" {
			return "", fmt.Errorf("sink %q: %s_env: the variable %s is empty or unset", c.Name, key, env)
		}
		return s, nil
	case required:
		return "", fmt.Errorf("sink %q: %s_file or %s_env: required for %s", c.Name, key, key, c.Type)
	}
	return "", nil
}

// Check checks a list of sinks: each one, and that names are unique.
func Check(sinks []Config) error {
	seen := map[string]bool{}
	for i := range sinks {
		if err := sinks[i].Check(); err != nil {
			return err
		}
		if seen[sinks[i].Name] {
			return fmt.Errorf("sink %q: name: given twice (the checkpoint is kept under it)", sinks[i].Name)
		}
		seen[sinks[i].Name] = true
	}
	return nil
}

// syslogAddress splits tcp://host:port or tls://host:port (port 6514 by
// default for tls, 514 for tcp).
func syslogAddress(addr string) (scheme, hostport string, err error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "tls") || u.Hostname() == "" || u.Path != "" {
		return "", "", fmt.Errorf("want tcp://host:port or tls://host:port, not %q", addr)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"tcp": "514", "tls": "6514"}[u.Scheme]
	}
	return u.Scheme, u.Hostname() + ":" + port, nil
}
