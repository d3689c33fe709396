package redact

import (
	"regexp"
	"strings"
)

// detector finds one kind of secret.
type detector struct {
	kind   string
	marker string
	re     *regexp.Regexp
	group  int // the submatch that is the secret; 0 for the whole match
	// before and after are the bytes that may not touch the whole match:
	// a token glued to more token characters is part of something else.
	before, after byteSet
	valid         func(secret string) bool
	// find replaces re for secrets a regexp cannot describe (kv_secret).
	find func(s string) [][2]int
}

// spans returns the byte ranges of the secrets in s, in order.
func (d *detector) spans(s string) [][2]int {
	if d.find != nil {
		return d.find(s)
	}
	var out [][2]int
	if d.valid == nil && d.before == (byteSet{}) && d.after == (byteSet{}) {
		for _, m := range d.re.FindAllStringSubmatchIndex(s, -1) {
			if a, b := m[2*d.group], m[2*d.group+1]; a >= 0 && a < b {
				out = append(out, [2]int{a, b})
			}
		}
		return out
	}
	// A rejected match can hide a good one that starts in its secret, as
	// in "Bearer Bearer <token>", so the search resumes there. Only
	// built-in rules are filtered, and they use neither ^ nor \b, which
	// would mean otherwise in s[off:].
	for off := 0; off < len(s); {
		m := d.re.FindStringSubmatchIndex(s[off:])
		if m == nil {
			break
		}
		for k := range m {
			if m[k] >= 0 {
				m[k] += off
			}
		}
		a, b := m[2*d.group], m[2*d.group+1]
		switch {
		case m[0] > 0 && d.before.has(s[m[0]-1]) || m[1] < len(s) && d.after.has(s[m[1]]) ||
			a < 0 || a == b || d.valid != nil && !d.valid(s[a:b]):
			if a > m[0] {
				off = a
			} else {
				off = m[1] // a match inside a whole-token match has a bad edge
			}
		default:
			out = append(out, [2]int{a, b})
			off = m[1]
		}
		if off == m[0] {
			off++
		}
	}
	return out
}

// apply replaces the secrets d finds in s with d's marker.
func (d *detector) apply(s string) (string, bool) {
	spans := d.spans(s)
	if len(spans) == 0 {
		return s, false
	}
	var marks [][2]int
	if strings.Contains(s, "[REDACTED:") {
		marks = markerSpans(s)
	}
	var b strings.Builder
	last, mi := 0, 0
	for _, sp := range spans {
		// Spans and marks are sorted: skip the marks before this span, so
		// a string full of markers costs linear time, not quadratic.
		for mi < len(marks) && marks[mi][1] <= sp[0] {
			mi++
		}
		if sp[0] < last || !redactable(sp, marks[mi:]) {
			continue
		}
		b.WriteString(s[last:sp[0]])
		b.WriteString(d.marker)
		last = sp[1]
	}
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// redactable reports whether a secret span may be replaced: not when it is
// made only of markers (already redacted), and not when it cuts a marker,
// which would let passes eat each other's markers forever.
// The marks are sorted and none ends before the span starts.
func redactable(sp [2]int, marks [][2]int) bool {
	covered := 0
	for _, m := range marks {
		if m[0] >= sp[1] {
			break
		}
		if m[0] < sp[0] || m[1] > sp[1] {
			return false
		}
		covered += m[1] - m[0]
	}
	return covered < sp[1]-sp[0]
}

func markerSpans(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		j := strings.Index(s[i:], "[REDACTED:")
		if j < 0 {
			break
		}
		i += j
		if n := markerLen(s, i); n > 0 {
			out = append(out, [2]int{i, i + n})
			i += n
		} else {
			i++
		}
	}
	return out
}

// anchor is literal text that every match of its detector contains, with a
// cheap check of what must surround it.
type anchor struct {
	lit  string // lower case when fold
	fold bool   // ASCII case-insensitive
	off  uint8  // the byte of lit the scan is keyed on
	det  uint8
	near nearKind
}

type nearKind uint8

const (
	nearNone     nearKind = iota
	nearName              // '=' or ':' after a secret name (kv_secret)
	nearFlag              // "--" before a secret name (kv_secret)
	nearUserinfo          // "://" followed by an '@' in the authority
	nearRun               // a run of 40 base64 characters somewhere after
)

// text is what scan reads: strings, and metadata bytes without a copy.
type text interface{ ~string | ~[]byte }

// scan returns a bit per detector that may match s. It must report every
// detector that would find something in s, and, run on JSON text, every
// detector that would find something in one of its decoded strings (or, for
// kv_secret, a secret-named key) unless hasASCIIEscape says the text hides
// characters in escapes. Each check below is implied by its detector's
// match, and JSON's escapes of whitespace and quotes only make it pass more.
func scan[T text](r *Redactor, s T) uint64 {
	found := r.always
	var pendingRun uint64
	runFrom := -1
	noAtUntil := -1 // an authority from before here up to here has no '@'
	hot := &r.hot
	for j := 0; j < len(s); j++ {
		if !hot[s[j]] {
			continue
		}
		as := r.byKey[s[j]]
		for k := range as {
			a := &as[k]
			bit := uint64(1) << a.det
			i := j - int(a.off) // where the anchor would start
			if found&bit != 0 || i < 0 || !hasLit(s, i, a.lit, a.fold) {
				continue
			}
			switch a.near {
			case nearNone:
				found |= bit
			case nearName:
				if start, end := nameBefore(s, i); secretClass(s, start, end) != notSecret {
					found |= bit
				}
			case nearFlag:
				if secretClass(s, i+2, flagNameEnd(s, i+2)) != notSecret {
					found |= bit
				}
			case nearUserinfo:
				if i < noAtUntil {
					continue
				}
				if ok, end := userinfoAt(s, i+len(a.lit)); ok {
					found |= bit
				} else {
					noAtUntil = end
				}
			case nearRun:
				pendingRun |= bit
				if runFrom < 0 || i < runFrom {
					runFrom = i
				}
			}
		}
	}
	if pendingRun != 0 && hasRun(s, runFrom, 40) {
		found |= pendingRun
	}
	return found
}

// hasLit reports whether lit is at s[i:].
func hasLit[T text](s T, i int, lit string, fold bool) bool {
	if len(s)-i < len(lit) {
		return false
	}
	for j := 0; j < len(lit); j++ {
		c := s[i+j]
		if fold && c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lit[j] {
			return false
		}
	}
	return true
}

// userinfoAt reports whether the URL authority starting at s[i:] has an '@',
// and where the search stopped.
func userinfoAt[T text](s T, i int) (bool, int) {
	for ; i < len(s); i++ {
		switch s[i] {
		case '@':
			return true, i
		case '\t', '\n', '\f', '\r', ' ', '/', '?', '#', '"', '\'', '<', '>':
			return false, i
		}
	}
	return false, i
}

// hasRun reports whether s[from:] holds n consecutive [A-Za-z0-9/+].
func hasRun[T text](s T, from, n int) bool {
	run := 0
	for i := from; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '+' {
			if run++; run >= n {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// maxName bounds how much of a name is read: the suffix decides.
const maxName = 64

// nameBefore returns the name that a '=' or ':' at s[i] assigns: PASSWORD=,
// password:, "password": and \"password\": (JSON in a string). It skips
// blanks, quotes and backslashes between the two, also in the form JSON
// text gives them (\" \\ \n), so that in raw metadata it finds every name
// it would find in the decoded strings. Each skipped run ends at the
// previous '=' or ':', so the scan stays linear.
func nameBefore[T text](s T, i int) (start, end int) {
	j := i
skip:
	for j > 0 {
		switch c := s[j-1]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '\\':
			j--
		case (c == 'n' || c == 't' || c == 'r') && j >= 2 && s[j-2] == '\\':
			j -= 2
		default:
			break skip
		}
	}
	end = j
	for j > 0 && end-j < maxName && isNameByte(s[j-1]) {
		j--
	}
	return j, end
}

// flagNameEnd returns the end of the flag name starting at s[i].
func flagNameEnd[T text](s T, i int) int {
	j := i
	for j < len(s) && j-i < maxName && isNameByte(s[j]) {
		j++
	}
	return j
}

// secretKind is how a name that says secret takes its value.
type secretKind uint8

const (
	notSecret  secretKind = iota
	secretWord            // password=hunter2: one token
	secretLine            // Cookie: a=b; c=d: the rest of the line
	secretAuth            // Authorization: Bearer x: the line after a scheme
)

// secretClass classifies the name s[start:end] by its tail with case and
// the separators - _ . removed: db_password, X-Api-Key, apiKey,
// client_secret, X-Amz-Signature and Authorization name secrets;
// input_tokens, token_count, access_key_id and secretName do not. Metadata
// keys are classified like the names nameBefore finds in raw JSON, so that
// the scan of raw metadata sees every key the walk would redact.
func secretClass[T text](s T, start, end int) secretKind {
	if end-start > maxName {
		start = end - maxName
	}
	// Most names are not secret: reject on the last letter before
	// normalizing the tail.
	last := end - 1
	for last >= start && (s[last] == '-' || s[last] == '_' || s[last] == '.') {
		last--
	}
	if last < start {
		return notSecret
	}
	prev := last - 1
	for prev >= start && (s[prev] == '-' || s[prev] == '_' || s[prev] == '.') {
		prev--
	}
	if prev < start {
		return notSecret
	}
	switch uint16(s[prev]|0x20)<<8 | uint16(s[last]|0x20) {
	case 'r'<<8 | 'd', 'w'<<8 | 'd', 's'<<8 | 'e', 'i'<<8 | 'e', 'e'<<8 | 's', 'l'<<8 | 's',
		'a'<<8 | 'l', 'e'<<8 | 't', 'e'<<8 | 'n', 'o'<<8 | 'n', 'e'<<8 | 'y', 'r'<<8 | 'e', 'i'<<8 | 'g',
		's'<<8 | 's', 't'<<8 | 'h':
	default:
		return notSecret // the last two letters of no secret word
	}
	// Short words name a secret only as the whole last word of the name
	// (db_pass, dbPass, PGPASS, auth, session; not bypass, oauth or
	// compass).
	if k := shortSecretWord(s, start, last); k != notSecret {
		return k
	}
	var rev [16]byte // the tail, reversed
	n := 0
	for j := last; j >= start && n < len(rev); j-- {
		c := s[j]
		switch {
		case c == '-' || c == '_' || c == '.':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		rev[n] = c
		n++
	}
	if n == 0 {
		return notSecret
	}
	var words []string
	switch rev[0] {
	case 'd':
		words = []string{"password", "passwd"}
	case 'e':
		if hasSuffixRev(rev[:n], "cookie") {
			return secretLine
		}
		words = []string{"passphrase", "signature"}
	case 'g':
		words = []string{"sig"} // Azure SAS tokens
	case 's':
		if hasSuffixRev(rev[:n], "cookies") {
			return secretLine
		}
		words = []string{"credentials"}
	case 'l':
		words = []string{"credential"}
	case 't':
		words = []string{"secret"}
	case 'n':
		if hasSuffixRev(rev[:n], "authorization") {
			return secretAuth
		}
		words = []string{"token"}
	case 'y':
		words = []string{"apikey", "accesskey", "privatekey", "secretkey", "sshkey"}
	}
	for _, w := range words {
		if hasSuffixRev(rev[:n], w) {
			return secretWord
		}
	}
	return notSecret
}

// lastWordAt returns where the last word of the name s[start:] ending at
// s[last] begins: its run of letters and digits, cut where a camelCase
// word starts.
func lastWordAt[T text](s T, start, last int) int {
	j := last
	for j > start {
		c, p := s[j], s[j-1]
		if !(p >= 'a' && p <= 'z' || p >= 'A' && p <= 'Z' || p >= '0' && p <= '9') || c >= 'A' && c <= 'Z' && p >= 'a' && p <= 'z' {
			break
		}
		j--
	}
	return j
}

// shortSecretWord classifies the name s[start:last+1] by its last word
// alone, for the secret words too short to be matched as a suffix.
func shortSecretWord[T text](s T, start, last int) secretKind {
	j := lastWordAt(s, start, last)
	for _, w := range [...]struct {
		word string
		kind secretKind
	}{{"pass", secretWord}, {"pwd", secretWord}, {"session", secretWord}, {"auth", secretAuth}} {
		if last+1-j == len(w.word) && hasLit(s, j, w.word, true) {
			return w.kind
		}
	}
	return notSecret
}

func hasSuffixRev(rev []byte, w string) bool {
	if len(w) > len(rev) {
		return false
	}
	for k := 0; k < len(w); k++ {
		if rev[k] != w[len(w)-1-k] {
			return false
		}
	}
	return true
}

// isSecretName reports whether a metadata key names a secret.
func isSecretName(s string, start, end int) bool {
	return secretClass(s, start, end) != notSecret
}
