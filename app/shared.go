package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/cluster"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/postgres"
	"github.com/agenttrail/agenttrail/server"
	"github.com/agenttrail/agenttrail/sink"
)

// The documents of a cluster's shared state (postgres.Shared): what a
// single server keeps in its data directory (TokensFile, CursorKeyFile),
// every node of a cluster reads from the store. sharedSigningKey is where
// earlier versions kept the checkpoints' signing key, which a cluster now
// keeps out of the store (--signing-key).
const (
	sharedTokens     = "tokens"
	sharedCursorKey  = "cursor_key"
	sharedSigningKey = "signing_key"
)

// sharedDoc is one document of the shared state, as a server.SharedDoc.
type sharedDoc struct {
	s    *postgres.Shared
	name string
}

func (d sharedDoc) Get(ctx context.Context) ([]byte, int64, error) { return d.s.Get(ctx, d.name) }
func (d sharedDoc) Version(ctx context.Context) (int64, error)     { return d.s.Version(ctx, d.name) }
func (d sharedDoc) Update(ctx context.Context, change func([]byte) ([]byte, error)) error {
	return d.s.Update(ctx, d.name, change)
}

// sharedTokensOf returns the cluster's tokens, kept in s.
func sharedTokensOf(s *postgres.Shared) *server.TokenFile {
	return server.NewSharedTokens(sharedDoc{s, sharedTokens}, "the store's shared tokens")
}

// Tokens opens the tokens a server reads, for the commands that manage
// them without a token of their own: with store a postgres:// URL, a
// cluster's tokens, which live in its store; else the file in dataDir. A
// data directory of a cluster node is refused, since its tokens are in the
// store and a change to the file would change nothing. Call done when
// done.
func Tokens(ctx context.Context, dataDir, store string) (_ *server.TokenFile, done func(), err error) {
	switch storeKind(store) {
	case "postgres", "postgresql":
		s, err := postgres.OpenShared(ctx, store, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("--store: %w", err)
		}
		return sharedTokensOf(s), s.Close, nil
	case "sqlite":
	default:
		return nil, nil, fmt.Errorf("--store: unknown store %q (want sqlite or a postgres:// URL)", store)
	}
	if _, err := os.Stat(filepath.Join(dataDir, TokensInStoreFile)); err == nil {
		return nil, nil, fmt.Errorf("%s is the data directory of a cluster node, whose tokens live in the store every node reads: give the store's URL (--store postgres://…, as the nodes have it), or use the API (POST /v1/tokens, DELETE /v1/tokens/ID) with an admin token", dataDir)
	}
	return server.NewTokenFile(filepath.Join(dataDir, TokensFile)), func() {}, nil
}

// markTokensInStore writes TokensInStoreFile in dataDir when the tokens are
// the store's (a cluster node), and removes it when they are not.
func markTokensInStore(dataDir string, inStore bool) error {
	path := filepath.Join(dataDir, TokensInStoreFile)
	if !inStore {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	const text = "This is the data directory of a node of an agenttrail cluster: the tokens live in the\n" +
		"store every node reads, not here. Manage them with `agenttrail token … --store postgres://…`\n" +
		"or the API (/v1/tokens).\n"
	return os.WriteFile(path, []byte(text), 0o600)
}

// cursorKey returns the key that signs cursors: the data directory's, or
// on a cluster the store's, so a cursor one node issued is good on all.
func (m *Main) cursorKey(ctx context.Context) ([]byte, error) {
	if m.shared == nil {
		return LoadCursorKey(filepath.Join(m.cfg.DataDir, CursorKeyFile))
	}
	key, err := m.shared.GetOrCreate(ctx, sharedCursorKey, func() ([]byte, error) {
		key := make([]byte, server.CursorKeySize)
		rand.Read(key)
		return key, nil
	})
	if err != nil {
		return nil, fmt.Errorf("cursor key: %w", err)
	}
	if len(key) != server.CursorKeySize {
		return nil, fmt.Errorf("the store's shared cursor key: want %d bytes, found %d", server.CursorKeySize, len(key))
	}
	return key, nil
}

// signingKey returns the key that signs checkpoints: --signing-key's file
// when given, else the data directory's, created on first start. A cluster
// node always has --signing-key (Check): the key is kept out of the store
// whose trail it vouches for. A key an earlier version kept in the store
// is removed from it once a node runs with the same key from its file.
func (m *Main) signingKey(ctx context.Context, cfg Config) (*integrity.Key, error) {
	file, create := cfg.SigningKey, false
	if file == "" {
		file, create = filepath.Join(cfg.DataDir, SigningKeyFile), true
	}
	key, err := integrity.LoadKey(file, create)
	if err != nil {
		return nil, fmt.Errorf("--signing-key: %w", err)
	}
	if m.shared != nil {
		if err := m.dropStoredSigningKey(ctx, key); err != nil {
			return nil, err
		}
	}
	return key, nil
}

// dropStoredSigningKey removes from the store the signing key an earlier
// version kept there, when it is key; when it is another key it stays, and
// the log says how to move it out.
func (m *Main) dropStoredSigningKey(ctx context.Context, key *integrity.Key) error {
	b, version, err := m.shared.Get(ctx, sharedSigningKey)
	if err != nil || version == 0 {
		return err
	}
	stored, err := integrity.NewKey(strings.TrimSpace(string(b)))
	if err != nil || stored.VerifierKey() != key.VerifierKey() {
		m.log.Warn("the store still holds a checkpoint signing key other than --signing-key's: whoever can write the database can sign checkpoints that verify with its verifier key; keep its verifier key for the checkpoints it signed, and delete the key from the store (DELETE FROM shared_state WHERE name = 'signing_key'; agenttrail signing-key FILE --store postgres://… saves it first)", "stored_verifier_key", verifierOf(stored))
		return nil
	}
	if err := m.shared.Delete(ctx, sharedSigningKey); err != nil {
		return fmt.Errorf("remove the signing key from the store: %w", err)
	}
	m.log.Info("removed the checkpoint signing key from the store: --signing-key's file holds it")
	return nil
}

func verifierOf(k *integrity.Key) string {
	if k == nil {
		return ""
	}
	return k.VerifierKey()
}

// StoredSigningKey returns the checkpoint signing key a cluster whose store
// is at dsn kept in the store before --signing-key was required, "" when
// there is none.
func StoredSigningKey(ctx context.Context, dsn string) (string, error) {
	s, err := postgres.OpenShared(ctx, dsn, nil)
	if err != nil {
		return "", err
	}
	defer s.Close()
	b, version, err := s.Get(ctx, sharedSigningKey)
	if err != nil || version == 0 {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// clusterSinks are the sinks of a cluster node: they run on whichever node
// holds their lock, so the commands that steer a running sink (replay,
// resend the dead letters) are taken only there; elsewhere they would
// change nothing, and say so.
type clusterSinks struct {
	*sink.Set
	ex *cluster.Exclusive
}

func (s clusterSinks) elsewhere() error {
	if s.ex.Active() {
		return nil
	}
	return agenttrail.Errorf(agenttrail.EUNAVAILABLE, "the sinks run on another node of the cluster (the one holding their lock); send this to that node")
}

func (s clusterSinks) Replay(ctx context.Context, name string, fromSeq int64, since time.Time) (int64, error) {
	if err := s.elsewhere(); err != nil {
		return 0, err
	}
	return s.Set.Replay(ctx, name, fromSeq, since)
}

func (s clusterSinks) RetryDeadLetters(name string) error {
	if err := s.elsewhere(); err != nil {
		return err
	}
	return s.Set.RetryDeadLetters(name)
}
