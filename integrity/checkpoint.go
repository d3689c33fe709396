package integrity

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// KeyName is the name of the server's signing key in its signed notes.
const KeyName = "agenttrail"

// Origin returns the checkpoint origin line of org's tree.
func Origin(org string) string { return "agenttrail/" + org }

// FormatCheckpoint returns the body of a C2SP tlog-checkpoint: the origin,
// the tree size in decimal, and the root hash in base64, one a line.
func FormatCheckpoint(org string, size int64, root tlog.Hash) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", Origin(org), size, base64.StdEncoding.EncodeToString(root[:]))
}

// ParseCheckpoint reads a checkpoint body (FormatCheckpoint's form; lines
// after the third are extensions and ignored) and returns its org, size and
// root.
func ParseCheckpoint(text []byte) (org string, size int64, root tlog.Hash, err error) {
	lines := strings.SplitN(string(text), "\n", 4)
	if len(lines) < 4 {
		return "", 0, root, errors.New("checkpoint: fewer than three lines")
	}
	org, ok := strings.CutPrefix(lines[0], "agenttrail/")
	if !ok || org == "" {
		return "", 0, root, fmt.Errorf("checkpoint: origin %q is not agenttrail/<org>", lines[0])
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return "", 0, root, fmt.Errorf("checkpoint: size %q is not a decimal number", lines[1])
	}
	b, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(b) != tlog.HashSize {
		return "", 0, root, fmt.Errorf("checkpoint: root hash %q is not 32 bytes of base64", lines[2])
	}
	copy(root[:], b)
	return org, size, root, nil
}

// OpenCheckpoint verifies the signed note msg with the verifier key vkey
// and returns the checkpoint it holds. Its error is a *note.UnverifiedNoteError
// when no signature is by vkey's key (an unknown key), and a *note.InvalidSignatureError
// when one is but does not verify.
func OpenCheckpoint(msg []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, err
	}
	org, size, root, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Org: org, Size: size, Root: root, Note: msg}, nil
}

// Key is the server's Ed25519 signing key.
type Key struct {
	signer note.Signer
	vkey   string
}

// NewKey returns a key from a note signer key (note.GenerateKey's skey).
func NewKey(skey string) (*Key, error) {
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// The verifier key is derived from the private key's seed, the last
	// field of the skey: PRIVATE+KEY+<name>+<hash>+<base64(0x01 seed)>.
	f := strings.SplitN(skey, "+", 5)
	b, err := base64.StdEncoding.DecodeString(f[len(f)-1])
	if err != nil || len(b) != 1+ed25519.SeedSize || b[0] != 1 {
		return nil, errors.New("signing key: not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(b[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &Key{signer: s, vkey: vkey}, nil
}

// VerifierKey returns the key that verifies this key's signatures, in note
// format (<name>+<hash>+<base64>): what an auditor passes to verify --key.
func (k *Key) VerifierKey() string { return k.vkey }

// Sign returns the signed checkpoint of org's tree at size with root.
func (k *Key) Sign(org string, size int64, root tlog.Hash, at time.Time) (Checkpoint, error) {
	msg, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(org, size, root))}, k.signer)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("sign checkpoint: %w", err)
	}
	return Checkpoint{Org: org, Size: size, Root: root, Time: at.UTC(), Note: msg}, nil
}

// LoadKey reads the signing key in file, creating it (mode 0600) with a new
// random key when create is set and the file does not exist.
func LoadKey(file string, create bool) (*Key, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) && create {
		skey, _, err := note.GenerateKey(rand.Reader, KeyName)
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		if err := WriteKey(file, skey); err != nil {
			return nil, err
		}
		return NewKey(skey)
	}
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	return NewKey(string(bytes.TrimSpace(b)))
}

// WriteKey writes the signing key skey (a note signer key) to file, mode
// 0600, which must not exist: a key is never overwritten.
func WriteKey(file, skey string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write signing key: %w", err)
	}
	return nil
}

// Consistent checks that the tree of l at c's org is consistent with c:
// that c's root is the root of org's first c.Size leaves in l now, proven
// with a consistency proof from c to size (tlog.ProveTree, tlog.CheckTree).
func Consistent(ctx context.Context, l Log, c Checkpoint, size int64, root tlog.Hash) error {
	if c.Size > size {
		return agenttrail.Errorf(agenttrail.ECONFLICT, "checkpoint of %d leaves is larger than the tree of %d", c.Size, size)
	}
	if c.Size == 0 {
		return nil
	}
	p, err := tlog.ProveTree(size, c.Size, HashReader(ctx, l, c.Org))
	if err != nil {
		return fmt.Errorf("prove tree %d from %d: %w", size, c.Size, err)
	}
	if err := tlog.CheckTree(p, size, root, c.Size, c.Root); err != nil {
		return agenttrail.Errorf(agenttrail.ECONFLICT, "tree of %d leaves is not consistent with the checkpoint of %d: %v", size, c.Size, err)
	}
	return nil
}

// CheckConsistency checks that the log a later checkpoint (latest) signs
// only grew from the one an earlier, saved checkpoint (saved) signs: both
// signed by vkey, of one org, latest no smaller, and proof a consistency
// proof from saved to latest (tlog.CheckTree; nil when the sizes are
// equal). A log cut off or rewritten after saved was signed fails here,
// even when whoever did it holds the signing key.
func CheckConsistency(saved, latest []byte, vkey string, proof tlog.TreeProof) error {
	old, err := OpenCheckpoint(saved, vkey)
	if err != nil {
		return fmt.Errorf("saved checkpoint: %w", err)
	}
	cur, err := OpenCheckpoint(latest, vkey)
	if err != nil {
		return fmt.Errorf("latest checkpoint: %w", err)
	}
	if old.Org != cur.Org {
		return fmt.Errorf("the saved checkpoint is of org %q, the log's of %q", old.Org, cur.Org)
	}
	if cur.Size < old.Size {
		return fmt.Errorf("log truncated: it has %d leaves, fewer than the %d of the saved checkpoint", cur.Size, old.Size)
	}
	if old.Size == 0 {
		return nil
	}
	if err := tlog.CheckTree(proof, cur.Size, cur.Root, old.Size, old.Root); err != nil {
		return fmt.Errorf("log not consistent with the saved checkpoint of %d leaves (rewritten or cut off and regrown): %v", old.Size, err)
	}
	return nil
}
