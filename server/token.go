package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/redact"
)

// Tokens are "at_<id>_<secret>": a recognisable prefix, so secret scanners
// and the Redactor can spot one in a log or an event; an id that is not
// secret, so a lookup never compares secrets byte by byte; and 256 random
// bits. Only the SHA-256 of the whole token is stored. A slow KDF (bcrypt,
// argon2) protects guessable passwords; a 256-bit random secret cannot be
// guessed, so one hash is as strong and costs a microsecond per request.
const (
	TokenPrefix   = "at_"
	tokenIDLen    = 16 // hex characters: 64 bits
	tokenSecLen   = 64 // hex characters: 256 bits
	tokenLen      = len(TokenPrefix) + tokenIDLen + 1 + tokenSecLen
	tokenFileMode = 0o600
)

// TokenPattern is a redaction pattern for agenttrail tokens, for
// agenttrail.NewRedactor: a token recorded by mistake is not stored.
var TokenPattern = redact.Pattern{Kind: "agenttrail_token", Regexp: `at_[0-9a-f]{16}_[0-9a-f]{64}`}

// TokenRecord is one token as stored: everything but the secret, whose
// SHA-256 is Hash. A revoked token is kept, with RevokedAt set, so the
// trail of who created and revoked what can be rebuilt from the file.
type TokenRecord struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Org       string    `json:"org"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"` // "" is the server itself
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
	// ExpiresAt is when a session token stops working; zero for tokens
	// that do not expire.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Revoked reports whether the token was revoked.
func (t TokenRecord) Revoked() bool { return !t.RevokedAt.IsZero() }

// Expired reports whether the token had expired at now.
func (t TokenRecord) Expired(now time.Time) bool {
	return !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt)
}

type tokenDoc struct {
	Version int           `json:"version"`
	Tokens  []TokenRecord `json:"tokens"`
	Logins  []LoginRecord `json:"logins,omitempty"`
}

// TokenFile is the token store: a JSON file under the data directory, mode
// 0600, replaced atomically (temp file, fsync, rename) on every change, so a
// reader sees the old file or the new one, never half of one. Changes from
// several processes are serialized by a lock file next to it. The zero value
// is not usable; use NewTokenFile. Methods are safe for concurrent use.
//
// On a cluster the same document lives in the store instead (NewSharedTokens),
// so that every node authenticates with the same tokens and a revocation on
// one reaches all.
type TokenFile struct {
	path   string
	shared SharedDoc // nil for a file
}

// NewTokenFile returns the store at path, typically <data>/tokens.json. The
// file need not exist yet.
func NewTokenFile(path string) *TokenFile { return &TokenFile{path: path} }

// SharedDoc is a document every node of a cluster reads and changes, kept
// in the store, with a version that grows with each change.
type SharedDoc interface {
	// Get returns the document (nil when there is none) and its version.
	Get(ctx context.Context) ([]byte, int64, error)
	// Version returns the version alone; cheap enough to poll.
	Version(ctx context.Context) (int64, error)
	// Update replaces the document with change(old), serialized with
	// every other node's updates; a failed change changes nothing.
	Update(ctx context.Context, change func(old []byte) ([]byte, error)) error
}

// NewSharedTokens returns the token store kept in doc: the same document as
// a token file, shared by every node of a cluster. where names it in logs.
func NewSharedTokens(doc SharedDoc, where string) *TokenFile {
	return &TokenFile{path: where, shared: doc}
}

// sharedTimeout bounds one read or change of shared tokens: a node whose
// store is unreachable goes on with the tokens it loaded before.
const sharedTimeout = 3 * time.Second

// Path returns the file's path.
func (f *TokenFile) Path() string { return f.path }

// List returns every token, revoked ones included, in creation order.
func (f *TokenFile) List() ([]TokenRecord, error) {
	doc, _, err := f.read()
	return doc.Tokens, err
}

// Create adds a token and returns its text, which is shown once and never
// stored. name must be unique among live tokens; "" picks one. by names who
// creates it ("" for the server itself).
func (f *TokenFile) Create(name string, role Role, org, by string, now time.Time) (string, TokenRecord, error) {
	token, _, err := newTokenText()
	if err != nil {
		return "", TokenRecord{}, err
	}
	rec, err := f.Import(token, name, role, org, by, now)
	if err != nil {
		return "", TokenRecord{}, err
	}
	return token, rec, nil
}

// Import adds token, whose text was made elsewhere (by Create in another
// data directory, or as the fixed token of test servers), as Create adds a
// new one. It is an EINVALID error when token is not an agenttrail token.
func (f *TokenFile) Import(token, name string, role Role, org, by string, now time.Time) (TokenRecord, error) {
	if err := checkRoleOrg(role, org); err != nil {
		return TokenRecord{}, err
	}
	id, ok := tokenID(token)
	if !ok {
		return TokenRecord{}, agenttrail.Invalid("token", "is not an agenttrail token")
	}
	if name == "" {
		name = string(role) + "-" + id[:8]
	}
	if err := checkTokenName(name); err != nil {
		return TokenRecord{}, err
	}
	rec := TokenRecord{ID: id, Name: name, Role: role, Org: org, Hash: hashToken(token), CreatedAt: now.UTC(), CreatedBy: by}
	if err := f.update(func(doc *tokenDoc) error { return doc.add(rec) }); err != nil {
		return TokenRecord{}, err
	}
	return rec, nil
}

// CreateFirst creates a token as Create does, but only when the store
// holds no live token, checked in the same change: nodes of a cluster that
// start side by side on an empty store create one first token between them.
// It returns "" when there were live tokens. A name a revoked token had
// gets the time appended.
func (f *TokenFile) CreateFirst(name string, role Role, org, by string, now time.Time) (string, TokenRecord, error) {
	if err := checkRoleOrg(role, org); err != nil {
		return "", TokenRecord{}, err
	}
	token, id, err := newTokenText()
	if err != nil {
		return "", TokenRecord{}, err
	}
	var rec TokenRecord
	err = f.update(func(doc *tokenDoc) error {
		for _, t := range doc.Tokens {
			if !t.Revoked() {
				return errHasLive
			}
		}
		n := name
		for _, t := range doc.Tokens {
			if t.Name == n {
				n = name + "-" + now.UTC().Format("20060102150405")
			}
		}
		rec = TokenRecord{ID: id, Name: n, Role: role, Org: org, Hash: hashToken(token), CreatedAt: now.UTC(), CreatedBy: by}
		return doc.add(rec)
	})
	if errors.Is(err, errHasLive) {
		return "", TokenRecord{}, nil
	}
	if err != nil {
		return "", TokenRecord{}, err
	}
	return token, rec, nil
}

var errHasLive = errors.New("the token store holds live tokens")

// add appends rec unless a live token has its name or any token its id.
func (doc *tokenDoc) add(rec TokenRecord) error {
	for _, t := range doc.Tokens {
		if !t.Revoked() && t.Name == rec.Name {
			return agenttrail.Errorf(agenttrail.ECONFLICT, "a token named %q exists; revoke it or pick another name", rec.Name)
		}
		if t.ID == rec.ID {
			return agenttrail.Errorf(agenttrail.ECONFLICT, "the token %s is in the file already", rec.ID)
		}
	}
	doc.Tokens = append(doc.Tokens, rec)
	return nil
}

// newTokenText returns a new random token and its id.
func newTokenText() (token, id string, err error) {
	var raw [tokenIDLen/2 + tokenSecLen/2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", fmt.Errorf("token: random: %w", err)
	}
	id = hex.EncodeToString(raw[:tokenIDLen/2])
	return TokenPrefix + id + "_" + hex.EncodeToString(raw[tokenIDLen/2:]), id, nil
}

// tokenID returns the id part of an agenttrail token, and whether token is
// one in form: "at_", 16 lowercase hex, "_", 64 lowercase hex.
func tokenID(token string) (string, bool) {
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) || token[len(TokenPrefix)+tokenIDLen] != '_' {
		return "", false
	}
	id, secret := token[len(TokenPrefix):len(TokenPrefix)+tokenIDLen], token[len(TokenPrefix)+tokenIDLen+1:]
	for _, part := range []string{id, secret} {
		if strings.TrimLeft(part, "0123456789abcdef") != "" {
			return "", false
		}
	}
	return id, true
}

// Revoke revokes the live token whose name or id is nameOrID and returns it.
// It is an ENOTFOUND error when there is none.
func (f *TokenFile) Revoke(nameOrID, by string, now time.Time) (TokenRecord, error) {
	var rec TokenRecord
	err := f.update(func(doc *tokenDoc) error {
		for i, t := range doc.Tokens {
			if !t.Revoked() && (t.Name == nameOrID || t.ID == nameOrID) {
				doc.Tokens[i].RevokedAt, doc.Tokens[i].RevokedBy = now.UTC(), by
				rec = doc.Tokens[i]
				return nil
			}
		}
		return agenttrail.Errorf(agenttrail.ENOTFOUND, "no live token named %q", nameOrID)
	})
	return rec, err
}

// checkRoleOrg checks the role and org of a new token or sign-in code.
func checkRoleOrg(role Role, org string) error {
	switch role {
	case RoleIngest, RoleRead, RoleAdmin:
	default:
		return agenttrail.Invalid("role", "must be ingest, read or admin, not %q", role)
	}
	if org != AllOrgs && !nameChars(org, 128, "") {
		return agenttrail.Invalid("org", "must be * or 1 to 128 characters of [A-Za-z0-9._-], not %q", org)
	}
	return nil
}

func checkTokenName(name string) error {
	if !nameChars(name, 64, "@") {
		return agenttrail.Invalid("name", "must be 1 to 64 characters of [A-Za-z0-9._@-], not %q", name)
	}
	return nil
}

// nameChars reports whether s is 1 to max characters of [A-Za-z0-9._-] and
// extra.
func nameChars(s string, max int, extra string) bool {
	if s == "" || len(s) > max {
		return false
	}
	return strings.TrimFunc(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_."+extra, r)
	}) == ""
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenStamp tells whether the token store changed since a load: the
// file's stat, or the shared document's version.
type tokenStamp struct {
	fi      os.FileInfo
	version int64
}

// look returns the store's stamp now, without reading it.
func (f *TokenFile) look() (tokenStamp, error) {
	if f.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		v, err := f.shared.Version(ctx)
		return tokenStamp{version: v}, err
	}
	fi, err := os.Stat(f.path)
	if err != nil && !os.IsNotExist(err) {
		return tokenStamp{}, err
	}
	return tokenStamp{fi: fi}, nil
}

// same reports whether two stamps are of the same, unchanged store.
func (a tokenStamp) same(b tokenStamp) bool {
	return a.version == b.version && sameFile(a.fi, b.fi)
}

// read reads the store and returns its stamp as read.
func (f *TokenFile) read() (tokenDoc, tokenStamp, error) {
	if f.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		b, v, err := f.shared.Get(ctx)
		if err != nil {
			return tokenDoc{}, tokenStamp{}, fmt.Errorf("read tokens: %w", err)
		}
		doc, err := parseTokens(b, f.path)
		return doc, tokenStamp{version: v}, err
	}
	st, err := f.look()
	if err != nil {
		return tokenDoc{}, tokenStamp{}, err
	}
	doc, err := readTokens(f.path)
	return doc, st, err
}

// readTokens reads the file; a missing file is an empty store.
func readTokens(path string) (tokenDoc, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return tokenDoc{Version: 1}, nil
	}
	if err != nil {
		return tokenDoc{}, fmt.Errorf("read tokens: %w", err)
	}
	return parseTokens(b, path)
}

// parseTokens decodes a token document; an empty one is an empty store.
func parseTokens(b []byte, path string) (tokenDoc, error) {
	if len(b) == 0 {
		return tokenDoc{Version: 1}, nil
	}
	var doc tokenDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return tokenDoc{}, fmt.Errorf("read tokens: %s: %w", path, err)
	}
	if doc.Version != 1 {
		return tokenDoc{}, fmt.Errorf("read tokens: %s: unknown version %d", path, doc.Version)
	}
	return doc, nil
}

// update applies change to the file under the lock and replaces it.
func (f *TokenFile) update(change func(*tokenDoc) error) error {
	if f.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		return f.shared.Update(ctx, func(old []byte) ([]byte, error) {
			doc, err := parseTokens(old, f.path)
			if err != nil {
				return nil, err
			}
			if err := change(&doc); err != nil {
				return nil, err
			}
			return json.Marshal(doc)
		})
	}
	unlock, err := lockFile(f.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	doc, err := readTokens(f.path)
	if err != nil {
		return err
	}
	if err := change(&doc); err != nil {
		return err
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("write tokens: %w", err)
	}
	return writeFileAtomic(f.path, append(b, '\n'), tokenFileMode)
}

// writeFileAtomic writes b to a temp file in path's directory, syncs it and
// renames it over path: readers see the old content or the new, whole.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if err := tmp.Chmod(mode); err == nil {
		if _, err = tmp.Write(b); err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// staleLock is how old a lock file must be to be taken over: a process that
// died holding it must not block token changes forever, and a change takes
// milliseconds.
const staleLock = 30 * time.Second

// lockFile takes an exclusive lock by creating path, waiting up to a few
// seconds for another holder. It works on every OS, unlike flock.
func lockFile(path string) (unlock func(), err error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lf, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, tokenFileMode)
		if err == nil {
			lf.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock tokens: %w", err)
		}
		if fi, err := os.Stat(path); err == nil && time.Since(fi.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock tokens: %s is held by another process; remove it if none is running", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
