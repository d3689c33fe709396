package redact

import (
	"encoding/base64"
	"regexp"
	"strings"
	"unicode/utf8"
)

// The built-in kinds of secret, as they appear in markers.
const (
	kindKV = "kv_secret"
)

// rule is a built-in detector with the anchors that gate it.
type rule struct {
	det     detector
	anchors []anchor
}

// builtinRules returns the built-in rules, most specific first: a token
// replaced by its own kind's marker is not redacted again by the generic
// rules after it (bearer, url_password, kv_secret).
func builtinRules() []rule {
	const (
		b64url = "A-Za-z0-9_-"
		alnum  = "A-Za-z0-9"
		word   = "A-Za-z0-9_"
	)
	lits := func(near nearKind, fold bool, ss ...string) []anchor {
		as := make([]anchor, len(ss))
		for i, s := range ss {
			as[i] = anchor{lit: s, fold: fold, near: near}
		}
		return as
	}
	re := regexp.MustCompile
	return []rule{
		{detector{kind: "private_key",
			// An unterminated block (output cut at 64 KiB) is redacted
			// to the end.
			re: re(`-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----(?s:.*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----|.*)`)},
			lits(nearNone, false, "-----BEGIN")},
		{detector{kind: "jwt", before: setOf(b64url),
			re: re(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)},
			lits(nearNone, false, "eyJ")},
		{detector{kind: "anthropic_key", before: setOf(b64url),
			re: re(`sk-ant-[A-Za-z0-9_-]{20,}`)},
			lits(nearNone, false, "sk-ant-")},
		{detector{kind: "openai_key", before: setOf(b64url),
			// Plain sk- keys are long alphanumeric runs, which keeps
			// names like "disk-controller-5f7d9" out.
			re: re(`sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{32,}`)},
			lits(nearNone, false, "sk-")},
		{detector{kind: "github_token", before: setOf(word),
			re: re(`gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}`)},
			lits(nearNone, false, "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")},
		{detector{kind: "slack_token", before: setOf(b64url),
			re: re(`xox[abeoprs]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,}`)},
			lits(nearNone, false, "xox", "xapp-")},
		{detector{kind: "slack_webhook", group: 1,
			re: re(`https://hooks\.slack\.com/((?:services|workflows|triggers)/[A-Za-z0-9/_+-]+)`)},
			lits(nearNone, false, "hooks.slack.com/")},
		{detector{kind: "stripe_key", before: setOf(word),
			re: re(`[sr]k_(?:live|test)_[A-Za-z0-9]{16,}`)},
			lits(nearNone, false, "sk_live_", "sk_test_", "rk_live_", "rk_test_")},
		{detector{kind: "google_api_key", before: setOf(b64url),
			re: re(`AIza[A-Za-z0-9_-]{35,}`), valid: hasLen(39)},
			lits(nearNone, false, "AIza")},
		{detector{kind: "aws_access_key_id", before: setOf(alnum), after: setOf(alnum),
			re: re(`(?:AKIA|ASIA)[A-Z0-9]{16,}`), valid: hasLen(20)},
			lits(nearNone, false, "AKIA", "ASIA")},
		{detector{kind: "aws_secret_key", group: 1,
			// 40 base64 characters within 40 characters after "aws" or
			// "secret", right after a separator (key=value, key: value,
			// "key": "value", or prose).
			re:    re(`(?:[Aa][Ww][Ss]|[Ss][Ee][Cc][Rr][Ee][Tt])[^\n]{0,40}?[\t "'=:,]([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`),
			valid: awsSecretLike},
			lits(nearRun, true, "aws", "secret")},
		{detector{kind: "url_password", group: 1,
			// The password runs to the last @ of the authority, so an
			// unescaped @ in it does not leave its tail behind.
			re: re(`[A-Za-z][A-Za-z0-9+.-]{0,30}://[^\t\n\f\r /?#@:"'<>]*:([^\t\n\f\r /?#"'<>]+)@`)},
			lits(nearUserinfo, false, "://")},
		{detector{kind: "bearer", group: 1, before: setOf(word), after: setOf(b64url + "._~+/="),
			re: re(`[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9][A-Za-z0-9._~+/-]*=*)`), valid: tokenLike},
			lits(nearNone, true, "bearer")},
		{detector{kind: "basic_auth", group: 1, before: setOf(word), after: setOf(alnum + "+/="),
			re: re(`[Bb][Aa][Ss][Ii][Cc][ \t]+([A-Za-z0-9+/]{4,}={0,2})`), valid: basicCredentials},
			lits(nearNone, true, "basic")},
		{detector{kind: kindKV, find: findKV},
			append(lits(nearName, false, "=", ":"), lits(nearFlag, false, "--")...)},
	}
}

func hasLen(n int) func(string) bool {
	return func(s string) bool { return len(s) == n }
}

// awsSecretLike keeps lowercase hex (SHA-1 digests) and words out: a secret
// access key is random base64, with both cases and a digit or / or +.
func awsSecretLike(s string) bool {
	var upper, lower, other bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		default:
			other = true
		}
	}
	return upper && lower && other
}

// tokenLike keeps prose ("bearer of bad news", "Bearer authentication")
// out: a token is long, or has something other than letters.
func tokenLike(s string) bool {
	if len(s) >= 16 {
		return true
	}
	if len(s) < 8 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0
}

// basicCredentials reports whether s is base64 of printable "user:pass".
func basicCredentials(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil || !utf8.Valid(b) || !strings.Contains(string(b), ":") {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// byteSet is a set of bytes; the zero value is empty.
type byteSet [4]uint64

func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

// setOf returns the set of the bytes in spec, where "a-z" is a range and a
// '-' at either end stands for itself.
func setOf(spec string) byteSet {
	var b byteSet
	for i := 0; i < len(spec); i++ {
		lo, hi := spec[i], spec[i]
		if i+2 < len(spec) && spec[i+1] == '-' {
			hi = spec[i+2]
			i += 2
		}
		for c := int(lo); c <= int(hi); c++ {
			b[c>>6] |= 1 << (c & 63)
		}
	}
	return b
}
