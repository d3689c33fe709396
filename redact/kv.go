package redact

// findKV finds the values of key=value and key: value pairs whose key names
// a secret (PGPASSWORD=…, ?api_key=…, "password": "…", X-Auth-Token: …,
// Cookie: …), and of long flags such as --password … and --token ….
func findKV(s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); i++ {
		var a, b int
		switch c := s[i]; {
		case c == '=' || c == ':':
			start, end := nameBefore(s, i)
			class := secretClass(s, start, end)
			if class == notSecret || c == ':' && start > 0 && s[start-1] == ':' {
				continue // or a field of arn:aws:secretsmanager:…:secret:name
			}
			if c == '=' {
				class = secretWord // Authorization=… in a query is one value
			}
			a, b = kvValue(s, i, class)
			if c == ':' && a < b && len(s) >= a+2 && s[a:a+2] == "//" {
				continue // token://…: a URL, not a value
			}
		case c == '-' && i+1 < len(s) && s[i+1] == '-' && (i == 0 || !isNameByte(s[i-1])):
			end := flagNameEnd(s, i+2)
			if secretClass(s, i+2, end) == notSecret {
				continue
			}
			a, b = flagValue(s, end)
		default:
			continue
		}
		if a < b {
			out = append(out, [2]int{a, b})
			i = b - 1
		}
	}
	return out
}

// kvValue returns the value assigned by the '=' or ':' at s[sep]: the inside
// of quotes, or a token up to a separator, or for class secretLine and
// secretAuth the rest of the line (after an auth scheme such as Bearer,
// which the bearer and basic_auth rules redact with their own kinds).
func kvValue(s string, sep int, class secretKind) (int, int) {
	v := sep + 1
	// "password: x" and "password = x" have blanks around their value;
	// in "PASSWORD= cmd" the variable is empty and cmd is a command.
	if s[sep] == ':' || sep > 0 && (s[sep-1] == ' ' || s[sep-1] == '\t') {
		for k := 0; k < 8 && v < len(s) && (s[v] == ' ' || s[v] == '\t'); k++ {
			v++
		}
	}
	if v >= len(s) || v > sep+1 && s[v] == '-' {
		return 0, 0 // nothing, or the next flag of a command line
	}
	a, b := quotedValue(s, v)
	if a < 0 {
		a, b = v, v
		for b < len(s) && !stopsValue(s[b], class != secretWord) {
			b++
		}
	}
	if class == secretAuth {
		a = afterScheme(s, a, b)
	}
	for b > a && (s[b-1] == ' ' || s[b-1] == '\t') {
		b--
	}
	return a, b
}

// flagValue returns the value of a long flag whose name ends at s[i].
func flagValue(s string, i int) (int, int) {
	v := i
	for v < len(s) && v-i < 8 && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v == i || v >= len(s) || s[v] == '-' {
		return 0, 0
	}
	if a, b := quotedValue(s, v); a >= 0 {
		return a, b
	}
	b := v
	for b < len(s) && !stopsValue(s[b], false) {
		b++
	}
	return v, b
}

// quotedValue returns the inside of the quoted string at s[v:] ("…", '…'
// or \"…\" as in JSON inside a JSON string), up to the end of the line when
// it is not closed; a is -1 when s[v] opens no quote.
func quotedValue(s string, v int) (int, int) {
	q := s[v]
	escaped := q == '\\' && v+1 < len(s) && s[v+1] == '"'
	if escaped {
		q = '"'
		v++
	} else if q != '"' && q != '\'' {
		return -1, -1
	}
	a := v + 1
	for j := a; j < len(s); j++ {
		switch {
		case s[j] == '\n' || s[j] == '\r':
			return a, j
		case escaped && s[j] == '\\' && j+1 < len(s) && s[j+1] == q:
			return a, j
		case !escaped && q == '"' && s[j] == '\\':
			j++ // an escaped character inside "…"
		case !escaped && s[j] == q:
			return a, j
		}
	}
	return a, len(s)
}

// stopsValue reports whether c ends an unquoted value: a separator of query
// strings, command lines and lists, or for whole-line values the end of the
// line or a quote that closes the text around it.
func stopsValue(c byte, line bool) bool {
	switch c {
	case '\n', '\r', '"', '\'', '`':
		return true
	case ' ', '\t', '\f', '\v', '&', ';', ',':
		return !line
	}
	return false
}

// afterScheme skips a leading auth scheme word ("Bearer ", "Basic ",
// "token "): letters only, so a secret without a scheme is not skipped.
func afterScheme(s string, a, b int) int {
	j := a
	for j < b && j-a <= 16 && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
		j++
	}
	if j == a || j-a > 16 || j >= b || s[j] != ' ' && s[j] != '\t' {
		return a
	}
	for j < b && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j == b {
		return a
	}
	return j
}
