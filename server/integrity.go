package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/integrity"
	"github.com/agenttrail/agenttrail/wire"
	"golang.org/x/mod/sumdb/tlog"
)

// Integrity is what the /v1/integrity routes serve: the store's trees and
// checkpoints, the signer that signs them (on demand too, when a proof or
// bundle needs a checkpoint newer than the latest), and the verifier key.
type Integrity struct {
	Log    integrity.Log
	Signer *integrity.Signer
	Key    string // the verifier key, note format
}

// integrityOrg returns the one org an integrity request is about: the org
// parameter, already scoped to the caller (scopeRequest), or the caller's
// own org when it has one and gave none.
func (s *Server) integrityOrg(r *http.Request, org string) (string, error) {
	if s.integrity == nil {
		return "", agenttrail.Errorf(agenttrail.ENOTFOUND, "integrity is not enabled on this server")
	}
	var in []string
	if org != "" {
		in = []string{org}
	}
	f := scope(principalOf(r.Context()), agenttrail.Filter{Org: in})
	if len(f.Org) != 1 {
		return "", agenttrail.Invalid("org", "is required: each org has its own tree")
	}
	return f.Org[0], nil
}

func checkpointOf(c integrity.Checkpoint) wire.Checkpoint {
	return wire.Checkpoint{Org: c.Org, TreeSize: c.Size, Root: bytes.Clone(c.Root[:]), SignedAt: c.Time, Note: string(c.Note)}
}

// integrityKey is GET /v1/integrity/key.
func (s *Server) integrityKey(r *http.Request) (any, error) {
	// org is accepted, as on every read route (a token of one org has it
	// set for it), and changes nothing: one key signs every org's trees.
	if _, err := wire.ParseOrgQuery(r.URL.Query()); err != nil {
		return nil, err
	}
	if s.integrity == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "integrity is not enabled on this server")
	}
	return wire.IntegrityKey{Key: s.integrity.Key}, nil
}

// integrityCheckpoint is GET /v1/integrity/checkpoint: the org's latest.
func (s *Server) integrityCheckpoint(r *http.Request) (any, error) {
	o, err := wire.ParseOrgQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	org, err := s.integrityOrg(r, o)
	if err != nil {
		return nil, err
	}
	c, err := s.integrity.Log.LatestCheckpoint(r.Context(), org)
	if err != nil {
		return nil, err
	}
	return checkpointOf(c), nil
}

// integrityCheckpoints is GET /v1/integrity/checkpoints.
func (s *Server) integrityCheckpoints(r *http.Request) (any, error) {
	o, since, limit, err := wire.ParseCheckpointsQuery(r.URL.Query(), s.now())
	if err != nil {
		return nil, err
	}
	org, err := s.integrityOrg(r, o)
	if err != nil {
		return nil, err
	}
	cs, err := s.integrity.Log.Checkpoints(r.Context(), org, since, limit)
	if err != nil {
		return nil, err
	}
	out := wire.Checkpoints{Checkpoints: make([]wire.Checkpoint, len(cs))}
	for i, c := range cs {
		out.Checkpoints[i] = checkpointOf(c)
	}
	return out, nil
}

// covering returns a checkpoint of org covering size leaves: the latest,
// or a new one signed now.
func (s *Server) covering(ctx context.Context, org string, size int64) (integrity.Checkpoint, error) {
	if size == 0 {
		return integrity.Checkpoint{}, agenttrail.Errorf(agenttrail.ENOTFOUND, "org %q has no events", org)
	}
	c, err := s.integrity.Log.LatestCheckpoint(ctx, org)
	if err == nil && c.Size >= size {
		return c, nil
	}
	if err != nil && agenttrail.ErrorCode(err) != agenttrail.ENOTFOUND {
		return c, err
	}
	if s.integrity.Signer == nil {
		return c, agenttrail.Errorf(agenttrail.EUNAVAILABLE, "no checkpoint covers leaf %d of org %q yet", size-1, org)
	}
	return s.integrity.Signer.SignOrg(ctx, org)
}

// integrityProof is GET /v1/integrity/proof/{id}: the event's inclusion
// proof against the latest checkpoint (signed now if the latest does not
// cover the event yet).
func (s *Server) integrityProof(r *http.Request) (any, error) {
	o, err := wire.ParseOrgQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	if s.integrity == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "integrity is not enabled on this server")
	}
	ctx := r.Context()
	var in []string
	if o != "" {
		in = []string{o}
	}
	e, err := s.store.Get(ctx, r.PathValue("id"), scope(principalOf(ctx), agenttrail.Filter{Org: in}))
	if err != nil {
		return nil, err
	}
	if e.LogIndex == nil {
		return nil, agenttrail.Errorf(agenttrail.ENOTFOUND, "event %q has no leaf in its org's tree", e.ID)
	}
	c, err := s.covering(ctx, e.Org, *e.LogIndex+1)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(c.Size, *e.LogIndex, integrity.HashReader(ctx, s.integrity.Log, e.Org))
	if err != nil {
		return nil, err
	}
	leaf, err := s.integrity.Log.ReadHashes(ctx, e.Org, []int64{tlog.StoredHashIndex(0, *e.LogIndex)})
	if err != nil {
		return nil, err
	}
	return wire.InclusionProof{ID: e.ID, Org: e.Org, LogIndex: *e.LogIndex, LeafHash: bytes.Clone(leaf[0][:]),
		TreeSize: c.Size, Proof: hashBytes(p), Checkpoint: checkpointOf(c)}, nil
}

// integrityConsistency is GET /v1/integrity/consistency.
func (s *Server) integrityConsistency(r *http.Request) (any, error) {
	o, from, to, err := wire.ParseConsistencyQuery(r.URL.Query())
	if err != nil {
		return nil, err
	}
	org, err := s.integrityOrg(r, o)
	if err != nil {
		return nil, err
	}
	ctx := r.Context()
	if to == 0 {
		c, err := s.integrity.Log.LatestCheckpoint(ctx, org)
		if err != nil {
			return nil, err
		}
		to = c.Size
	}
	size, err := s.integrity.Log.TreeSize(ctx, org)
	if err != nil {
		return nil, err
	}
	if to > size {
		return nil, agenttrail.Invalid("to", "is %d, larger than the tree of %d leaves", to, size)
	}
	if from > to {
		return nil, agenttrail.Invalid("from", "is %d, larger than the tree of %d leaves", from, to)
	}
	out := wire.ConsistencyProof{Org: org, From: from, To: to, Proof: [][]byte{}}
	if from > 0 && from < to {
		p, err := tlog.ProveTree(to, from, integrity.HashReader(ctx, s.integrity.Log, org))
		if err != nil {
			return nil, err
		}
		out.Proof = hashBytes(p)
	}
	return out, nil
}

func hashBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i, h := range hs {
		out[i] = bytes.Clone(h[:])
	}
	return out
}

// bundleSource is a store's events and its trees, for WriteBundle.
type bundleSource struct {
	agenttrail.Querier
	integrity.Log
}

// integrityBundle is GET /v1/integrity/bundle: the bundle (package
// integrity) of the events export's filters match in one org, against a
// checkpoint signed for it, for agenttrail verify.
func (s *Server) integrityBundle(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	now := s.now()
	v := r.URL.Query()
	if err := wire.CheckParams(v); err != nil {
		return err
	}
	f, err := wire.ParseFilter(v, now)
	if err != nil {
		return err
	}
	if s.integrity == nil {
		return agenttrail.Errorf(agenttrail.ENOTFOUND, "integrity is not enabled on this server")
	}
	f = scope(principalOf(ctx), f)
	if len(f.Org) != 1 {
		return agenttrail.Invalid("org", "is required: a bundle holds one org")
	}
	release, err := s.exports.take(principalOf(ctx))
	if err != nil {
		return err
	}
	defer release()
	size, err := s.integrity.Log.TreeSize(ctx, f.Org[0])
	if err != nil {
		return err
	}
	c, err := s.covering(ctx, f.Org[0], size)
	if err != nil {
		return err
	}
	// Built in a temporary file first: a failure is then a problem
	// document, never a truncated bundle, and a bundle of millions of
	// events does not sit in memory.
	tmp, err := os.CreateTemp("", "agenttrail-bundle-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := integrity.WriteBundle(ctx, tmp, bundleSource{s.store, s.integrity.Log}, f, c, s.integrity.Key); err != nil {
		return err
	}
	if size, err = tmp.Seek(0, io.SeekCurrent); err != nil {
		return err
	}
	if _, err = tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	attachment(w, "application/zip", "agenttrail-"+f.Org[0]+"-"+now.UTC().Format("20060102T150405Z")+".bundle.zip")
	rc := http.NewResponseController(w)
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteGrace))
		if _, err := io.CopyN(w, tmp, 1<<20); err != nil {
			if err != io.EOF {
				s.log.Debug("writing bundle", "err", err)
			}
			return nil
		}
	}
}
