package integrity

import (
	"context"
	"time"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/tlog"
)

// Log is what a store keeps for integrity: the per-org trees its Append
// grows, and the signed checkpoints. Both stores implement it; storetest
// checks them. All methods are safe for concurrent use with Append.
type Log interface {
	// TreeSize returns the number of leaves of org's tree: the number of
	// events the org ever stored, retention's deletions included.
	TreeSize(ctx context.Context, org string) (int64, error)
	// ReadHashes returns org's stored hashes at the tlog stored hash
	// indexes, in order. Hashes of leaves below TreeSize never change and
	// retention never deletes them, so every root stays provable.
	ReadHashes(ctx context.Context, org string, indexes []int64) ([]tlog.Hash, error)
	// TreeOrgs returns every org that has a tree, sorted.
	TreeOrgs(ctx context.Context) ([]string, error)
	// AddCheckpoint stores a signed checkpoint. Storing one of the same org
	// and size again changes nothing. Retention never deletes checkpoints.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Checkpoints returns up to limit of org's checkpoints signed at or
	// after since, oldest first.
	Checkpoints(ctx context.Context, org string, since time.Time, limit int) ([]Checkpoint, error)
	// LatestCheckpoint returns org's largest checkpoint, or an ENOTFOUND
	// error when none was signed yet.
	LatestCheckpoint(ctx context.Context, org string) (Checkpoint, error)
}

// Checkpoint is a signed tree head of one org's tree: Note is the signed
// note (C2SP tlog-checkpoint body and signature lines), the other fields
// what it says, for queries.
type Checkpoint struct {
	Org  string
	Size int64
	Root tlog.Hash
	Time time.Time // when it was signed
	Note []byte
}

// HashReader returns a tlog.HashReader over org's tree in l.
func HashReader(ctx context.Context, l Log, org string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return l.ReadHashes(ctx, org, indexes)
	})
}

func isNotFound(err error) bool { return agenttrail.ErrorCode(err) == agenttrail.ENOTFOUND }
