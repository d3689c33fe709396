package server

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"time"

	"github.com/agenttrail/agenttrail"
)

// Sign-in links: `agenttrail console` writes a one-time code into the token
// file and prints http://HOST:PORT/#login=CODE. The console exchanges the
// code (POST /v1/session) for a session token. The code travels in the URL
// fragment, which browsers never send, so it reaches no server or proxy log;
// it is single use and short-lived, and only its SHA-256 is stored.
const (
	LoginTTL      = 10 * time.Minute // how long a sign-in code may be exchanged
	SessionTTL    = 12 * time.Hour   // how long a session token works
	loginCodeLen  = 32               // hex characters: 128 bits
	loginKeepUsed = 24 * time.Hour   // used and expired codes are pruned after this
)

// LoginRecord is one sign-in code as stored: its hash, the role and org of
// the session it opens, and whether it was used.
type LoginRecord struct {
	Hash      string    `json:"hash"`
	Role      Role      `json:"role"`
	Org       string    `json:"org"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// CreateLogin adds a sign-in code for a session of role (read or admin) and
// org, valid for LoginTTL from now, and returns the code, which is not
// stored. by names who asked for it.
func (f *TokenFile) CreateLogin(role Role, org, by string, now time.Time) (string, error) {
	if role != RoleRead && role != RoleAdmin {
		return "", agenttrail.Invalid("role", "a console session must be read or admin, not %q", role)
	}
	if err := checkRoleOrg(role, org); err != nil {
		return "", err
	}
	var raw [loginCodeLen / 2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	code := hex.EncodeToString(raw[:])
	rec := LoginRecord{Hash: hashToken(code), Role: role, Org: org, CreatedAt: now.UTC(), CreatedBy: by, ExpiresAt: now.Add(LoginTTL).UTC()}
	err := f.update(func(doc *tokenDoc) error {
		doc.pruneLogins(now)
		doc.Logins = append(doc.Logins, rec)
		return nil
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// errBadLogin is the one answer to every code that cannot be exchanged, so
// the answer tells an attacker nothing about which codes exist.
func errBadLogin() error {
	return agenttrail.Errorf(agenttrail.EUNAUTHORIZED, "this sign-in link is unknown, expired or already used; run `agenttrail console` for a new one")
}

// Exchange uses the sign-in code: it marks the code used and creates a
// session token of its role and org that expires after SessionTTL, in one
// change of the file, so a code opens one session at most. It returns the
// token's text and record, or EUNAUTHORIZED when the code is unknown,
// expired or used.
func (f *TokenFile) Exchange(code string, now time.Time) (string, TokenRecord, error) {
	if len(code) != loginCodeLen {
		return "", TokenRecord{}, errBadLogin()
	}
	hash := hashToken(code)
	// Look without the lock first: unknown codes, which anyone may send,
	// never make the file change or wait for its lock.
	doc, _, err := f.read()
	if err != nil {
		return "", TokenRecord{}, err
	}
	if doc.login(hash, now) < 0 {
		return "", TokenRecord{}, errBadLogin()
	}
	token, id, err := newTokenText()
	if err != nil {
		return "", TokenRecord{}, err
	}
	var rec TokenRecord
	err = f.update(func(doc *tokenDoc) error {
		i := doc.login(hash, now)
		if i < 0 {
			return errBadLogin()
		}
		l := &doc.Logins[i]
		l.UsedAt = now.UTC()
		rec = TokenRecord{
			ID: id, Name: "session-" + id[:8], Role: l.Role, Org: l.Org, Hash: hashToken(token),
			CreatedAt: now.UTC(), CreatedBy: l.CreatedBy, ExpiresAt: now.Add(SessionTTL).UTC(),
		}
		return doc.add(rec)
	})
	if err != nil {
		return "", TokenRecord{}, err
	}
	return token, rec, nil
}

// login returns the index of the unused, unexpired code whose hash is
// hash, or -1.
func (doc *tokenDoc) login(hash string, now time.Time) int {
	for i, l := range doc.Logins {
		if subtle.ConstantTimeCompare([]byte(l.Hash), []byte(hash)) == 1 && l.UsedAt.IsZero() && now.Before(l.ExpiresAt) {
			return i
		}
	}
	return -1
}

// pruneLogins drops codes that expired more than loginKeepUsed ago.
func (doc *tokenDoc) pruneLogins(now time.Time) {
	kept := doc.Logins[:0]
	for _, l := range doc.Logins {
		if now.Sub(l.ExpiresAt) < loginKeepUsed {
			kept = append(kept, l)
		}
	}
	doc.Logins = kept
}
