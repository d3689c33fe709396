package shell

import (
	"path/filepath"
	"strings"
)

// Markers for the credentials redactArgs finds, in the Redactor's format so
// that redacting again leaves them alone.
const (
	markUserPass = "[REDACTED:basic_auth]"
	markPassword = "[REDACTED:kv_secret]"
)

// programKind says how a program's arguments carry credentials, in forms a
// text scan cannot tell from ordinary flags: -u user:password is a
// credential to curl and a uid:gid to docker, -pSECRET a password to mysql
// and a flag elsewhere.
type programKind int

const (
	otherProgram programKind = iota
	userPassProgram
	mysqlProgram
	sshpassProgram
)

func kindOf(base string) programKind {
	switch base {
	case "curl", "http", "https", "httpie", "xh", "wget":
		return userPassProgram
	case "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlshow", "mysqlcheck", "mysqlpump",
		"mariadb", "mariadb-dump", "mariadb-admin":
		return mysqlProgram
	case "sshpass":
		return sshpassProgram
	}
	return otherProgram
}

// redactArgs returns argv with the credentials that command-line
// conventions put in arguments replaced by markers: curl's -u/--user and
// -U/--proxy-user user:password (and httpie's -a/--auth), mysql's attached
// -pPASSWORD, sshpass's -p PASSWORD. An argument that is a script
// (sh -c "curl -u bob:pw …") is split into words and searched the same way.
// The Redactor applied to the event afterwards covers the forms a text scan
// can see: --password=…, TOKEN=…, Authorization: …, URLs with passwords.
func redactArgs(argv []string) []string {
	out := append([]string(nil), argv...)
	for _, s := range argSecrets(argv) {
		w := out[s.index]
		out[s.index] = w[:len(w)-len(s.value)] + s.mark
	}
	for i, a := range out {
		if !strings.ContainsAny(a, " \t\n") {
			continue
		}
		for _, s := range argSecrets(splitWords(a)) {
			out[i] = strings.ReplaceAll(out[i], s.value, s.mark)
		}
	}
	return out
}

// secret is a credential found in argv[index], of which it is the end.
type secret struct {
	index int
	value string
	mark  string
}

// argSecrets finds credentials in a command's words. The program is the
// last known one seen, so wrappers (sudo, env, timeout) are looked through.
func argSecrets(words []string) []secret {
	var found []secret
	prog := otherProgram
	for i := 0; i < len(words); i++ {
		w := words[i]
		if k := kindOf(filepath.Base(w)); k != otherProgram {
			prog = k
			continue
		}
		if isSecretFlag(w) && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
			// --password VALUE: the Redactor sees each argument alone and
			// cannot tell VALUE is one.
			i++
			found = append(found, secret{i, words[i], markPassword})
			continue
		}
		switch prog {
		case userPassProgram:
			name, val, attached := flagValue(w, []string{"-u", "-U", "-a"}, []string{"--user", "--proxy-user", "--auth", "--proxy-auth"})
			if name == "" {
				continue
			}
			idx := i
			if !attached {
				if i+1 >= len(words) {
					continue
				}
				i++
				idx, val = i, words[i]
			}
			if _, pass, ok := strings.Cut(val, ":"); ok && pass != "" {
				found = append(found, secret{idx, pass, markUserPass})
			}
		case mysqlProgram:
			// -p alone prompts, and "-p NAME" names a database: only the
			// attached form holds a password.
			if strings.HasPrefix(w, "-p") && len(w) > 2 {
				found = append(found, secret{i, w[2:], markPassword})
			}
		case sshpassProgram:
			if w == "-p" && i+1 < len(words) {
				i++
				found = append(found, secret{i, words[i], markPassword})
			} else if strings.HasPrefix(w, "-p") && len(w) > 2 {
				found = append(found, secret{i, w[2:], markPassword})
			}
		}
	}
	return found
}

// isSecretFlag reports whether w is a long flag, without an attached value,
// whose name says its value is a secret: --password, --token,
// --client-secret, --api-key, --passphrase and the like.
func isSecretFlag(w string) bool {
	if !strings.HasPrefix(w, "--") || strings.Contains(w, "=") {
		return false
	}
	name := strings.ToLower(w[2:])
	for _, s := range []string{"password", "passwd", "passphrase", "token", "secret", "apikey", "api-key", "api_key", "access-key", "access_key"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return name == "pass" || name == "pw"
}

// flagValue reports whether w is one of the short or long flags, and its
// value when attached to it (-uVALUE, --user=VALUE).
func flagValue(w string, short, long []string) (name, value string, attached bool) {
	for _, f := range long {
		if w == f {
			return f, "", false
		}
		if strings.HasPrefix(w, f+"=") {
			return f, w[len(f)+1:], true
		}
	}
	for _, f := range short {
		if w == f {
			return f, "", false
		}
		if strings.HasPrefix(w, f) && !strings.HasPrefix(w, "--") {
			return f, w[len(f):], true
		}
	}
	return "", "", false
}

// splitWords splits a shell script into words the way sh would for simple
// commands: blanks separate words, quotes and backslashes group, and the
// control operators ; | & ( ) end words. It does not expand anything.
func splitWords(s string) []string {
	var words []string
	var cur strings.Builder
	in := false // a word is under way
	flush := func() {
		if in {
			words = append(words, cur.String())
			cur.Reset()
			in = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			flush()
		case c == ';' || c == '|' || c == '&' || c == '(' || c == ')':
			flush()
		case c == '\'':
			in = true
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				cur.WriteString(s[i+1:])
				i = len(s)
				break
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			in = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			in = true
			i++
			cur.WriteByte(s[i])
		default:
			in = true
			cur.WriteByte(c)
		}
	}
	flush()
	return words
}

// commandLine joins argv into one line a shell would read back as argv:
// words that need it are single-quoted.
func commandLine(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(quote(a))
	}
	return b.String()
}

func quote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_@%+=:,./-[]", c) >= 0) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
