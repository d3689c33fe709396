package integrity

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/agenttrail/agenttrail"
	"golang.org/x/mod/sumdb/tlog"
)

// Signer signs a checkpoint of each org's tree when Every events were added
// since the last one, or Interval passed with new events, whichever comes
// first. Before signing it proves the new tree consistent with the org's
// latest stored checkpoint and refuses to sign otherwise, so the server
// never signs two inconsistent checkpoints, whichever process signed the
// earlier one: several processes on one store sign the same roots (the
// tree is the store's), and a tree someone rewrote in the database is
// logged as an error instead of signed.
type Signer struct {
	Log      Log
	Key      *Key
	Every    int64         // events; 0 means 10,000
	Interval time.Duration // 0 means 10 s
	// Dir, when set, receives every checkpoint signed as a file
	// <Dir>/<org>/<size>.checkpoint, besides the store.
	Dir string
	// Record, when set, records every checkpoint signed as an audit event
	// of its org (CheckpointEvent) through the server's write path, so the
	// delivery sinks carry checkpoints to receivers out of an attacker's
	// reach like any other event. Events, then, must be set too: the
	// signer reads the record back so that a record alone, which grows the
	// tree by one leaf, does not call for another checkpoint.
	Record func(ctx context.Context, e agenttrail.Event) error
	Events agenttrail.Getter
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil means time.Now

	// mu serializes signing: Run and the API's on-demand signing
	// (SignOrg) share a Signer.
	mu   sync.Mutex
	last map[string]time.Time // when each org's newest checkpoint was signed
}

// Run signs checkpoints until ctx is done: an actor of the server's
// run.Group. It returns nil when ctx ends.
func (s *Signer) Run(ctx context.Context) error {
	tick := min(s.interval(), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if _, err := s.SignAll(ctx); err != nil && ctx.Err() == nil {
			s.logger().Error("cannot sign checkpoints", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *Signer) interval() time.Duration {
	if s.Interval <= 0 {
		return 10 * time.Second
	}
	return s.Interval
}

func (s *Signer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Signer) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// SignAll signs, for every org whose tree grew by Every events or whose
// new events are Interval old, a checkpoint of its tree, and returns the
// checkpoints it signed. Force-signing is SignOrg.
func (s *Signer) SignAll(ctx context.Context) ([]Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	orgs, err := s.Log.TreeOrgs(ctx)
	if err != nil {
		return nil, err
	}
	every := s.Every
	if every <= 0 {
		every = 10000
	}
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	var out []Checkpoint
	for _, org := range orgs {
		size, err := s.Log.TreeSize(ctx, org)
		if err != nil {
			return out, err
		}
		latest, err := s.Log.LatestCheckpoint(ctx, org)
		if err != nil && !isNotFound(err) {
			return out, err
		}
		if size <= latest.Size || s.onlyRecord(ctx, latest, size) {
			continue
		}
		last, ok := s.last[org]
		if !ok {
			// The first look at this org in this process: time runs
			// from the stored checkpoint's signing, or from now when
			// there is none.
			last = latest.Time
			if last.IsZero() {
				last = s.now()
			}
			s.last[org] = last
		}
		if size-latest.Size < every && s.now().Sub(last) < s.interval() {
			continue
		}
		c, err := s.sign(ctx, org, size, latest)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, nil
}

// SignOrg signs a checkpoint of org's tree as it is now, unless the latest
// stored checkpoint already covers it, which it then returns.
func (s *Signer) SignOrg(ctx context.Context, org string) (Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, err := s.Log.TreeSize(ctx, org)
	if err != nil {
		return Checkpoint{}, err
	}
	latest, err := s.Log.LatestCheckpoint(ctx, org)
	if err != nil && !isNotFound(err) {
		return Checkpoint{}, err
	}
	if err == nil && latest.Size >= size {
		return latest, nil
	}
	return s.sign(ctx, org, size, latest)
}

func (s *Signer) sign(ctx context.Context, org string, size int64, latest Checkpoint) (Checkpoint, error) {
	root, err := tlog.TreeHash(size, HashReader(ctx, s.Log, org))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("tree hash of %s at %d: %w", org, size, err)
	}
	if latest.Size > 0 {
		if err := Consistent(ctx, s.Log, latest, size, root); err != nil {
			return Checkpoint{}, fmt.Errorf("refusing to sign %s at %d: %w", org, size, err)
		}
	}
	c, err := s.Key.Sign(org, size, root, s.now())
	if err != nil {
		return Checkpoint{}, err
	}
	if err := s.Log.AddCheckpoint(ctx, c); err != nil {
		return Checkpoint{}, err
	}
	if s.last == nil {
		s.last = map[string]time.Time{}
	}
	s.last[org] = c.Time
	if s.Dir != "" {
		if err := writeCheckpointFile(s.Dir, c); err != nil {
			return c, err
		}
	}
	if s.Record != nil {
		if err := s.Record(ctx, CheckpointEvent(c)); err != nil {
			return c, fmt.Errorf("record checkpoint of %s at %d: %w", org, size, err)
		}
	}
	s.logger().Debug("checkpoint signed", "org", org, "size", size)
	return c, nil
}

// onlyRecord reports whether the one leaf org's tree grew by since latest
// is latest's own record (CheckpointEvent), which calls for no new
// checkpoint: signing one would record another, for ever.
func (s *Signer) onlyRecord(ctx context.Context, latest Checkpoint, size int64) bool {
	if s.Record == nil || s.Events == nil || size != latest.Size+1 {
		return false
	}
	e, err := s.Events.Get(ctx, checkpointEventID(latest.Org, latest.Size), agenttrail.Filter{Org: []string{latest.Org}})
	return err == nil && e.LogIndex != nil && *e.LogIndex == latest.Size
}

// checkpointEventID is the id of the record of org's checkpoint at size:
// fixed, so processes that sign the same checkpoint record it once.
func checkpointEventID(org string, size int64) string {
	return fmt.Sprintf("agenttrail:checkpoint:%s:%d", org, size)
}

// CheckpointEvent returns the audit event that records c: source audit,
// action integrity.checkpoint, the note under metadata.integrity.
func CheckpointEvent(c Checkpoint) agenttrail.Event {
	e := agenttrail.Event{
		ID: checkpointEventID(c.Org, c.Size), Time: c.Time, Org: c.Org,
		ActorType: agenttrail.ActorSystem, ActorID: "agenttrail-integrity", ActorName: "integrity",
		Source: agenttrail.SourceAudit, Action: "integrity.checkpoint", Result: agenttrail.ResultSuccess,
		ResourceType: "checkpoint", ResourceID: fmt.Sprintf("%s@%d", Origin(c.Org), c.Size),
		Description: fmt.Sprintf("signed checkpoint of %s's tree at %d leaves", c.Org, c.Size),
	}
	_ = e.SetMetadata("integrity", map[string]any{
		"origin": Origin(c.Org), "tree_size": c.Size, "root": base64.StdEncoding.EncodeToString(c.Root[:]), "note": string(c.Note),
	})
	return e
}

// writeCheckpointFile writes c to <dir>/<org>/<size>.checkpoint, through a
// temporary file so a reader never sees half of one.
func writeCheckpointFile(dir string, c Checkpoint) error {
	d := filepath.Join(dir, url.PathEscape(c.Org))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return fmt.Errorf("checkpoint dir: %w", err)
	}
	name := filepath.Join(d, fmt.Sprintf("%d.checkpoint", c.Size))
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, c.Note, 0o644); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp, name); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
