// Package config reads agenttrail.yaml, the configuration file of
// `agenttrail serve --config`: every serve flag has a key there (a flag
// given on the command line wins), and the sinks and retention rules live
// only there. An unknown key is an error naming the key and its line, so a
// typo never silently drops a setting.
package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/agenttrail/agenttrail/sink"
	"github.com/agenttrail/agenttrail/wire"
)

// File is the content of a configuration file. Each field of the first
// group is the serve flag of the same name (the key's underscores are the
// flag's dashes); a nil one was not in the file.
type File struct {
	Addr           *Scalar `yaml:"addr"`
	Data           *Scalar `yaml:"data"`
	Store          *Scalar `yaml:"store"`
	SpoolMaxBytes  *Scalar `yaml:"spool_max_bytes"`
	TLSCert        *Scalar `yaml:"tls_cert"`
	TLSKey         *Scalar `yaml:"tls_key"`
	AllowPlaintext *Scalar `yaml:"allow_plaintext"`
	RateLimit      *Scalar `yaml:"rate_limit"`
	RateBurst      *Scalar `yaml:"rate_burst"`
	MetricsAuth    *Scalar `yaml:"metrics_auth"`
	AnonRateLimit  *Scalar `yaml:"anon_rate_limit"`
	AnonRateBurst  *Scalar `yaml:"anon_rate_burst"`
	MaxBodyBytes   *Scalar `yaml:"max_body_bytes"`
	Redact         *Scalar `yaml:"redact"`
	Role           *Scalar `yaml:"role"`
	NATS           *Scalar `yaml:"nats"`
	NATSStream     *Scalar `yaml:"nats_stream"`
	NATSSubject    *Scalar `yaml:"nats_subject"`
	NATSMaxBytes   *Scalar `yaml:"nats_max_bytes"`
	NATSMaxAge     *Scalar `yaml:"nats_max_age"`
	NATSReplicas   *Scalar `yaml:"nats_replicas"`

	SigningKey         *Scalar `yaml:"signing_key"`
	CheckpointEvery    *Scalar `yaml:"checkpoint_every"`
	CheckpointInterval *Scalar `yaml:"checkpoint_interval"`
	CheckpointDir      *Scalar `yaml:"checkpoint_dir"`

	// Sinks are the destinations the trail is delivered to.
	Sinks []sink.Config `yaml:"sinks"`
	// Retention is how long events are kept; its default is the serve
	// flag --retain.
	Retention Retention `yaml:"retention"`
}

// Retention is the retention section: the first rule whose filters match
// an event decides how long it is kept, else Default.
type Retention struct {
	Default *Scalar `yaml:"default"`
	Rules   []Rule  `yaml:"rules"`
}

// Rule keeps the events it matches for Keep. Source, Org and Project are
// filters as in the API (OR within one, AND across them); a rule with none
// matches every event.
type Rule struct {
	Source  []string `yaml:"source"`
	Org     []string `yaml:"org"`
	Project []string `yaml:"project"`
	Keep    string   `yaml:"keep"`
}

// Scalar is one scalar value of the file and the line it is on.
type Scalar struct {
	Value string
	Line  int
}

// UnmarshalYAML takes a scalar node and refuses anything else.
func (s *Scalar) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a single value", n.Line)
	}
	s.Value, s.Line = n.Value, n.Line
	return nil
}

// Load reads and checks the file at path.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	cfg, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse reads and checks a configuration file: unknown keys, the sinks
// (sink.Check) and the retention rules. The flag values are checked when
// they are applied (Settings).
func Parse(r io.Reader) (*File, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return &f, nil // an empty file configures nothing
		}
		return nil, errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if err := sink.Check(f.Sinks); err != nil {
		return nil, err
	}
	if f.Retention.Default != nil {
		if _, err := ParseKeep(f.Retention.Default.Value); err != nil {
			return nil, fmt.Errorf("line %d: retention.default: %w", f.Retention.Default.Line, err)
		}
	}
	for i, r := range f.Retention.Rules {
		if _, err := ParseKeep(r.Keep); err != nil {
			return nil, fmt.Errorf("retention.rules[%d].keep: %w", i, err)
		}
	}
	return &f, nil
}

// ParseKeep parses a retention period: a duration as the API takes them
// (90d, 36h) or whole years (7y, 365 days each).
func ParseKeep(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "y"); ok {
		y, err := strconv.Atoi(n)
		if err != nil || y <= 0 || y > 200 {
			return 0, fmt.Errorf("bad period %q", s)
		}
		return time.Duration(y) * 365 * 24 * time.Hour, nil
	}
	d, err := wire.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad period %q (want e.g. 90d, 7y or 36h)", s)
	}
	return d, nil
}

// Setting is one serve flag the file sets.
type Setting struct {
	Key, Flag, Value string
	Line             int
}

// Settings returns the serve flags the file sets, in the order of File's
// fields; retention.default is the flag retain.
func (f *File) Settings() []Setting {
	var out []Setting
	v := reflect.ValueOf(f).Elem()
	t := v.Type()
	for i := range t.NumField() {
		s, ok := v.Field(i).Interface().(*Scalar)
		if !ok || s == nil {
			continue
		}
		key := t.Field(i).Tag.Get("yaml")
		out = append(out, Setting{Key: key, Flag: strings.ReplaceAll(key, "_", "-"), Value: s.Value, Line: s.Line})
	}
	if d := f.Retention.Default; d != nil {
		out = append(out, Setting{Key: "retention.default", Flag: "retain", Value: d.Value, Line: d.Line})
	}
	return out
}

// Keys returns every flag the file can set, by flag name: for tests that
// check each serve flag has a key.
func Keys() []string {
	var out []string
	t := reflect.TypeFor[File]()
	for i := range t.NumField() {
		if t.Field(i).Type == reflect.TypeFor[*Scalar]() {
			out = append(out, strings.ReplaceAll(t.Field(i).Tag.Get("yaml"), "_", "-"))
		}
	}
	return append(out, "retain")
}
