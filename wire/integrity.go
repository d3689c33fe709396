package wire

import (
	"net/url"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
)

// IntegrityKey is the answer of GET /v1/integrity/key: the verifier key
// of the server's checkpoint signatures, in note format
// (<name>+<hash>+<base64 Ed25519 key>), for agenttrail verify --key.
type IntegrityKey struct {
	Key string `json:"key"`
}

// Checkpoint is one signed checkpoint of an org's tree: Note is the signed
// note (C2SP tlog-checkpoint), the other fields what it says. Root is
// base64, as in the note.
type Checkpoint struct {
	Org      string    `json:"org"`
	TreeSize int64     `json:"tree_size"`
	Root     []byte    `json:"root"`
	SignedAt time.Time `json:"signed_at"`
	Note     string    `json:"note"`
}

// Checkpoints is the answer of GET /v1/integrity/checkpoints, oldest first.
type Checkpoints struct {
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// InclusionProof is the answer of GET /v1/integrity/proof/{id}: the event's
// leaf index and leaf hash, and the RFC 6962 inclusion proof of that leaf
// in the tree the checkpoint signs (tlog.RecordProof, base64 hashes).
type InclusionProof struct {
	ID         string     `json:"id"`
	Org        string     `json:"org"`
	LogIndex   int64      `json:"log_index"`
	LeafHash   []byte     `json:"leaf_hash"`
	TreeSize   int64      `json:"tree_size"`
	Proof      [][]byte   `json:"proof"`
	Checkpoint Checkpoint `json:"checkpoint"`
}

// ConsistencyProof is the answer of GET /v1/integrity/consistency: the
// RFC 6962 consistency proof that the org's tree of To leaves extends the
// one of From leaves (tlog.TreeProof, base64 hashes).
type ConsistencyProof struct {
	Org   string   `json:"org"`
	From  int64    `json:"from"`
	To    int64    `json:"to"`
	Proof [][]byte `json:"proof"`
}

// ParseCheckpointsQuery reads the parameters of GET /v1/integrity/checkpoints:
// org, since (RFC 3339 or a duration back from now) and limit (1-1000,
// default 100).
func ParseCheckpointsQuery(v url.Values, now time.Time) (org string, since time.Time, limit int, err error) {
	if err := onlyParams(v, "org", "since", "limit"); err != nil {
		return "", since, 0, err
	}
	org = v.Get("org")
	if v.Has("since") {
		if since, err = ParseTime(v.Get("since"), now); err != nil {
			return "", since, 0, agenttrail.Invalid("since", "%v", err)
		}
	}
	limit = 100
	if v.Has("limit") {
		if limit, err = strconv.Atoi(v.Get("limit")); err != nil || limit < 1 || limit > 1000 {
			return "", since, 0, agenttrail.Invalid("limit", "must be from 1 to 1000")
		}
	}
	return org, since, limit, nil
}

// ParseConsistencyQuery reads the parameters of GET
// /v1/integrity/consistency: org, from and to (tree sizes; to 0 when
// absent, meaning the latest checkpoint's).
func ParseConsistencyQuery(v url.Values) (org string, from, to int64, err error) {
	if err := onlyParams(v, "org", "from", "to"); err != nil {
		return "", 0, 0, err
	}
	if !v.Has("from") {
		return "", 0, 0, agenttrail.Invalid("from", "is required")
	}
	if from, err = strconv.ParseInt(v.Get("from"), 10, 64); err != nil || from < 0 {
		return "", 0, 0, agenttrail.Invalid("from", "must be a tree size, a number from 0")
	}
	if v.Has("to") {
		if to, err = strconv.ParseInt(v.Get("to"), 10, 64); err != nil || to < 1 {
			return "", 0, 0, agenttrail.Invalid("to", "must be a tree size, a number from 1")
		}
		if from > to {
			return "", 0, 0, agenttrail.Invalid("from", "must not be larger than to")
		}
	}
	return v.Get("org"), from, to, nil
}

// ParseOrgQuery reads a query whose only parameter is org.
func ParseOrgQuery(v url.Values) (string, error) {
	if err := onlyParams(v, "org"); err != nil {
		return "", err
	}
	return v.Get("org"), nil
}

// onlyParams refuses a parameter not among names, and any given twice.
func onlyParams(v url.Values, names ...string) error {
	for k, vals := range v {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return agenttrail.Invalid(k, "unknown query parameter")
		}
		if len(vals) > 1 {
			return agenttrail.Invalid(k, "may be given once")
		}
	}
	return nil
}
