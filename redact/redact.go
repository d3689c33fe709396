// Package redact finds secrets (API keys, tokens, passwords, private keys)
// in audit events and replaces them with markers such as
// [REDACTED:github_token] before they are stored. The server redacts every
// event it ingests, and every capture surface redacts what it records
// (capture.Redacting), so a secret is removed on the agent's machine and
// again at the server.
package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/agenttrail/agenttrail"
)

// Pattern is a configured secret pattern that a Redactor applies after its
// built-in ones.
//
// Kind names the secret in the marker that replaces it, [REDACTED:<Kind>]:
// 1 to 64 characters of [a-z0-9_]. Regexp is RE2 syntax (package regexp) and
// must not match the empty string. When it has a group named "secret", only
// that group is replaced and the rest of the match is kept, as in
// `session=(?P<secret>[0-9a-f]{32})`. A pattern whose every match begins
// with the same literal text (Regexp.LiteralPrefix) is only run on strings
// that contain that text; any other pattern runs on every string and every
// event's metadata, which costs throughput.
type Pattern struct {
	Kind   string `json:"kind"`
	Regexp string `json:"regexp"`
}

// LoadPatterns reads a JSON file of patterns, the --redact file of the
// server and of the capture commands: [{"kind": "...", "regexp": "..."}].
// New checks them.
func LoadPatterns(path string) ([]Pattern, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read redaction patterns: %w", err)
	}
	var patterns []Pattern
	if err := json.Unmarshal(b, &patterns); err != nil {
		return nil, fmt.Errorf("read redaction patterns: %s: %w", path, err)
	}
	return patterns, nil
}

// MaxPatterns bounds the configured patterns of one Redactor.
const MaxPatterns = 32

// redactMaxPasses bounds the passes String makes. A pass that replaces a
// secret can expose the context another rule needs (or remove a marker's
// neighbour), so String repeats until nothing changes; real text settles in
// one or two passes.
const redactMaxPasses = 4

// Redactor replaces secrets (API keys, tokens, passwords, private keys) in
// events with markers such as [REDACTED:github_token] before they are
// stored. It knows the built-in kinds aws_access_key_id, aws_secret_key,
// bearer, basic_auth, openai_key, anthropic_key, github_token, slack_token,
// slack_webhook, stripe_key, google_api_key, jwt, private_key, url_password
// and kv_secret (password=…, token: …, --password …), plus the Patterns
// given to New.
//
// It is built for the ingest path: a string or metadata object in which no
// rule can match is recognised in one pass over its bytes and returned as
// is, without allocating. A Redactor is immutable and safe for concurrent
// use. There is no redactor that redacts nothing: build one with New or
// Builtin; the zero value and nil are not usable.
type Redactor struct {
	dets []detector
	// byKey lists, per byte, the anchors keyed on it: each anchor is keyed
	// on its rarest byte (both cases when case-insensitive), so the scan
	// stops at few positions of ordinary text. A detector is run on a
	// string only when one of its anchors occurs there.
	byKey [256][]anchor
	hot   [256]bool // whether byKey has anchors
	// always has a bit per detector without an anchor.
	always uint64
}

// Builtin returns a Redactor with the built-in rules only. Building one
// compiles its expressions, so callers build it once and share it.
func Builtin() *Redactor {
	r := &Redactor{}
	for _, b := range builtinRules() {
		r.add(b.det, b.anchors)
	}
	return r
}

// New returns a Redactor with the built-in rules and the extra patterns,
// applied in that order. It returns an EINVALID error naming
// "redact.patterns[i]" when a pattern's kind or expression is not valid.
func New(extra ...Pattern) (*Redactor, error) {
	if len(extra) > MaxPatterns {
		return nil, agenttrail.Invalid("redact.patterns", "at most %d patterns, not %d", MaxPatterns, len(extra))
	}
	r := Builtin()
	for i, p := range extra {
		field := fmt.Sprintf("redact.patterns[%d]", i)
		if !isKind(p.Kind) {
			return nil, agenttrail.Invalid(field, "kind must be 1 to 64 characters of [a-z0-9_], not %q", p.Kind)
		}
		re, err := regexp.Compile(p.Regexp)
		if err != nil {
			return nil, agenttrail.Invalid(field, "bad regexp: %v", err)
		}
		if re.MatchString("") {
			return nil, agenttrail.Invalid(field, "regexp %q matches the empty string", p.Regexp)
		}
		d := detector{kind: p.Kind, re: re}
		if g := re.SubexpIndex("secret"); g > 0 {
			d.group = g
		}
		var anchors []anchor
		if prefix, _ := re.LiteralPrefix(); prefix != "" {
			anchors = []anchor{{lit: prefix}}
		}
		r.add(d, anchors)
	}
	return r, nil
}

func (r *Redactor) add(d detector, anchors []anchor) {
	i := len(r.dets)
	d.marker = "[REDACTED:" + d.kind + "]"
	r.dets = append(r.dets, d)
	if len(anchors) == 0 {
		r.always |= 1 << i
		return
	}
	for _, a := range anchors {
		a.det = uint8(i)
		if a.fold {
			a.lit = strings.ToLower(a.lit)
		}
		a.off = uint8(rarestByte(a.lit))
		keys := []byte{a.lit[a.off]}
		if c := a.lit[a.off]; a.fold && c >= 'a' && c <= 'z' {
			keys = append(keys, c-'a'+'A')
		}
		for _, c := range keys {
			r.byKey[c] = append(r.byKey[c], a)
			r.hot[c] = true
		}
	}
}

// rarestByte returns the index of the byte of lit (at most 255 bytes in)
// that is least common in English text, JSON and paths.
func rarestByte(lit string) int {
	const common = " \"etaoinsrhldcu/,:_-.0123456789mfpgwybvkETAOINSRHLDCUMFPGWYBVK=xjqzXJQZ"
	best, bestRank := 0, -1
	for i := 0; i < len(lit) && i < 256; i++ {
		rank := strings.IndexByte(common, lit[i])
		if rank < 0 {
			rank = len(common)
		}
		if rank > bestRank {
			best, bestRank = i, rank
		}
	}
	return best
}

// String returns s with every secret replaced by a marker naming its kind.
// It returns s itself when nothing matched. Redacting the result again
// changes nothing.
func (r *Redactor) String(s string) string {
	for pass := 0; pass < redactMaxPasses; pass++ {
		found := scan(r, s)
		if found == 0 {
			return s
		}
		changed := false
		for i := range r.dets {
			if found&(1<<i) == 0 {
				continue
			}
			if out, ok := r.dets[i].apply(s); ok {
				s, changed = out, true
			}
		}
		if !changed {
			break
		}
	}
	return s
}

// Event redacts e in place: Description, Action, ResourceID, ResourceType,
// ActorID, ActorName, SessionID, and every string in Metadata, keys included; a metadata value whose key names a secret
// (password, token, api_key, authorization, cookie, credentials, …) is
// replaced whole, unless it is null, a boolean or empty. Metadata in which
// nothing can match keeps its bytes; otherwise it is replaced by a new
// slice, re-encoded (keys sorted), and stays valid JSON. Call it after
// Validate: markers can make a field longer than the limits Validate
// enforces.
//
// One value is kept although it looks like a secret: an AWS access key id
// alone under metadata.aws.access_key_id. A key id names a credential (AWS
// says it is not secret), and the AWS proxy records it so that one can
// tell which key failed its signature; the secret it names never reaches
// an event, and the same id anywhere else is still redacted.
func (r *Redactor) Event(e *agenttrail.Event) {
	e.Description = r.String(e.Description)
	e.Action = r.String(e.Action)
	e.ResourceID = r.String(e.ResourceID)
	e.ResourceType = r.String(e.ResourceType)
	e.ActorID = r.String(e.ActorID)
	e.ActorName = r.String(e.ActorName)
	e.SessionID = r.String(e.SessionID)
	if m, ok := r.metadata(e.Metadata); ok {
		e.Metadata = m
	}
}

// Identifiers returns an EINVALID error naming the first of the event's
// keys — id, producer_id, org, project and source — that holds a secret.
// Those are refused rather than redacted: a marker in their place would
// make two events one (id), merge producers' sequences (producer_id), or
// file the event under a scope nobody chose (org, project). session_id is
// redacted instead (see Event): it comes from what an agent sends at run
// time, and refusing it would lose the action itself. Trace and span ids
// need neither: Validate lets them hold nothing but hex digits. The error
// names the kind of secret, never the secret. Event redacts every other
// string the event carries, actor_id and resource_type included.
func (r *Redactor) Identifiers(e *agenttrail.Event) error {
	for _, f := range [...]struct{ name, v string }{
		{"id", e.ID}, {"producer_id", e.ProducerID}, {"org", e.Org}, {"project", e.Project}, {"source", e.Source},
	} {
		if f.v == "" {
			continue
		}
		if red := r.String(f.v); red != f.v {
			kind := "secret"
			if i := strings.Index(red, "[REDACTED:"); i >= 0 {
				if n := markerLen(red, i); n > 0 {
					kind = red[i+len("[REDACTED:") : i+n-1]
				}
			}
			return agenttrail.Invalid(f.name, "holds what looks like a secret (%s); identifiers are refused, not redacted, so send it without one", kind)
		}
	}
	return nil
}

// metadata returns the redacted metadata and whether it changed.
func (r *Redactor) metadata(raw json.RawMessage) (json.RawMessage, bool) {
	if len(raw) == 0 || scan(r, raw) == 0 && !hasASCIIEscape(raw) {
		return raw, false
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if !json.Valid(raw) || dec.Decode(&v) != nil {
		// Validate refuses such metadata; redact it as text so that a
		// caller who stores it anyway stores no secret.
		s := r.String(string(raw))
		return json.RawMessage(s), s != string(raw)
	}
	keyID, kept := keepIdentifier(v)
	v, changed := r.walk(v)
	if kept {
		restoreIdentifier(v, keyID)
	}
	if !changed {
		return raw, false
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Unreachable: v holds only what the decoder produced.
		return json.RawMessage(`{}`), true
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), true
}

// keepIdentifier takes metadata.aws.access_key_id out of decoded metadata
// v for walk to leave alone, when it is an access key id and nothing else;
// restoreIdentifier puts it back.
func keepIdentifier(v any) (string, bool) {
	top, _ := v.(map[string]any)
	aws, _ := top["aws"].(map[string]any)
	id, _ := aws["access_key_id"].(string)
	if !isAccessKeyID(id) {
		return "", false
	}
	delete(aws, "access_key_id")
	return id, true
}

func restoreIdentifier(v any, id string) {
	top, _ := v.(map[string]any)
	if aws, ok := top["aws"].(map[string]any); ok {
		aws["access_key_id"] = id
	}
}

// isAccessKeyID reports whether s is exactly an AWS access key id: AKIA
// (long-term) or ASIA (temporary) and 16 more of [A-Z0-9].
func isAccessKeyID(s string) bool {
	if len(s) != 20 || (s[:4] != "AKIA" && s[:4] != "ASIA") {
		return false
	}
	for i := 4; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// walk redacts the strings of a decoded JSON value in place.
func (r *Redactor) walk(v any) (any, bool) {
	changed := false
	switch x := v.(type) {
	case string:
		s := r.String(x)
		return s, s != x
	case map[string]any:
		var renamed map[string]string // key -> its redacted form
		for k, val := range x {
			var c bool
			if isSecretName(k, 0, len(k)) {
				val, c = r.secretValue(val)
			} else {
				val, c = r.walk(val)
			}
			if c {
				x[k], changed = val, true
			}
			if rk := r.String(k); rk != k {
				if renamed == nil {
					renamed = map[string]string{}
				}
				renamed[k] = rk
			}
		}
		// Keys are strings the event carries too: a secret used as a key
		// is redacted like any other.
		for k, rk := range renamed {
			for _, taken := x[rk]; taken; _, taken = x[rk] {
				rk += "_" // two keys redacted alike both keep their values
			}
			x[rk] = x[k]
			delete(x, k)
			changed = true
		}
	case []any:
		for i, val := range x {
			if nv, c := r.walk(val); c {
				x[i], changed = nv, true
			}
		}
	}
	return v, changed
}

// secretValue redacts the value of a key that names a secret. A string that
// is wholly one secret of a known kind gets that kind's marker.
func (r *Redactor) secretValue(v any) (any, bool) {
	switch x := v.(type) {
	case nil, bool:
		return v, false
	case string:
		if x == "" {
			return v, false
		}
		if s := r.String(x); isMarker(s) {
			return s, s != x
		}
	}
	return kvMarker, true
}

// kvMarker replaces values under secret-named keys.
const kvMarker = "[REDACTED:" + kindKV + "]"

// hasASCIIEscape reports whether JSON text holds an escape that decodes to a
// printable ASCII character (\u0020 to \u007f, or \/): such an escape can
// hide a secret's prefix from the scan of the raw bytes.
func hasASCIIEscape(b []byte) bool {
	for i := 0; i < len(b)-1; i++ {
		if b[i] != '\\' {
			j := bytes.IndexByte(b[i:], '\\')
			if j < 0 {
				return false
			}
			if i += j; i >= len(b)-1 {
				return false
			}
		}
		switch b[i+1] {
		case '/':
			return true
		case 'u':
			if i+4 < len(b) && b[i+2] == '0' && b[i+3] == '0' && b[i+4] >= '2' && b[i+4] <= '7' {
				return true
			}
		}
		i++ // skip the escaped character, so `\\u` is not an escape
	}
	return false
}

func isKind(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isMarker reports whether s is exactly one redaction marker.
func isMarker(s string) bool {
	n := markerLen(s, 0)
	return n > 0 && n == len(s)
}

// markerLen returns the length of the marker at s[i:], or 0.
func markerLen(s string, i int) int {
	const open = "[REDACTED:"
	if !strings.HasPrefix(s[i:], open) {
		return 0
	}
	j := i + len(open)
	for j < len(s) && j-(i+len(open)) < 64 && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
		j++
	}
	if j == i+len(open) || j >= len(s) || s[j] != ']' {
		return 0
	}
	return j + 1 - i
}
