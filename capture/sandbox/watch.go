package sandbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/agenttrail/agenttrail"
	"github.com/agenttrail/agenttrail/capture"
	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/redact"
)

// WatchConfig configures a Watcher. Dir and Recorder are required.
type WatchConfig struct {
	// Dir is the sandbox's directory (a bind mount, a volume's mountpoint,
	// or the root of a chroot).
	Dir string
	// Recursive watches the whole tree under Dir, adding watches for new
	// subdirectories as they appear; otherwise only Dir's own entries.
	Recursive bool
	// ContainerID and Name say whose directory it is; they are recorded as
	// metadata.sandbox.container_id and .name.
	ContainerID string
	Name        string
	// Window is how long a file's first create or write is held to collect
	// the writes that follow (default 1 s): one event per file per window.
	Window time.Duration
	// Recorder takes the events, redacted.
	Recorder capture.Recorder
	// Actor is who acts in the sandbox; an empty ID records "anonymous".
	Actor capture.Actor
	// Redactor scrubs every event: file names can hold secrets too. Nil
	// means the built-in rules (redact.Builtin).
	Redactor *redact.Redactor
	// Logger logs watches that fail; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Watcher records file creates, writes, removes and renames under a
// directory as sandbox events. The watches are in place when NewWatcher
// returns; Run then records until its context ends. Run must be called at
// most once; Close releases the watches of a Watcher that is not run (Run
// closes them itself).
type Watcher struct {
	dir       string
	recursive bool
	meta      Sandbox
	rec       capture.Recorder // redacting
	actor     capture.Actor
	log       *slog.Logger
	now       func() time.Time
	fs        *fsnotify.Watcher
	co        *coalescer
	dirs      map[string]bool // absolute paths of the directories watched
	// renames are renames seen in the tree, held for the create that says
	// where each went.
	renames map[string]heldRename
	// modes are the permissions last seen of the paths the tree's events
	// named, so an attribute change that leaves the mode alone (a touch,
	// a chown) is not taken for a chmod.
	modes map[string]os.FileMode
	// selfMoves are watched directories renamed within the tree: their own
	// watch reports the move once more, after the create, as a rename of
	// the old path, which is not another event.
	selfMoves map[string]time.Time
	closeOnce sync.Once
}

type heldRename struct {
	at  time.Time
	dir bool
}

const (
	defaultWindow = time.Second
	// renameHold is how long a rename waits for the create naming its new
	// path; both come from one inotify read, so it is only a bound for a
	// file that left the tree.
	renameHold = 200 * time.Millisecond
	// selfMoveHold bounds how long a directory's own report of its move is
	// waited for.
	selfMoveHold = 5 * time.Second
)

// NewWatcher watches cfg.Dir. It fails when Dir is not a directory or a
// watch cannot be added.
func NewWatcher(cfg WatchConfig) (*Watcher, error) {
	if cfg.Recorder == nil {
		return nil, errors.New("watch: a recorder is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("watch: %s is not a directory", cfg.Dir)
	}
	w := &Watcher{
		dir: dir, recursive: cfg.Recursive,
		meta: Sandbox{ContainerID: cfg.ContainerID, Name: cfg.Name},
		rec:  capture.NewRedacting(cfg.Recorder, cfg.Redactor), actor: cfg.Actor,
		log: cfg.Logger, now: cfg.Now,
		dirs: map[string]bool{}, renames: map[string]heldRename{}, selfMoves: map[string]time.Time{},
		modes: map[string]os.FileMode{},
	}
	if w.actor.ID == "" {
		w.actor.ID = "anonymous"
	}
	defaults.Logger(&w.log)
	defaults.Clock(&w.now)
	window := cfg.Window
	if window <= 0 {
		window = defaultWindow
	}
	w.co = newCoalescer(window, w.record)
	if w.fs, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	if err := w.fs.Add(dir); err != nil {
		w.fs.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	w.dirs[dir] = true
	if w.recursive {
		w.addTree(dir, nil)
	}
	return w, nil
}

// Close releases the watches. It is safe to call more than once.
func (w *Watcher) Close() error {
	var err error
	w.closeOnce.Do(func() { err = w.fs.Close() })
	return err
}

// Run records file events until ctx ends, then records what is still held
// and closes the watches. It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := w.expire()
		if !next.IsZero() {
			timer.Reset(max(next.Sub(w.now()), time.Millisecond))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			w.flush()
			return nil
		case ev, ok := <-w.fs.Events:
			if !ok {
				w.flush()
				return nil
			}
			w.handle(ev)
		case err, ok := <-w.fs.Errors:
			if !ok {
				w.flush()
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.lost(ctx, "the kernel's event queue overflowed: file events were lost")
			} else {
				w.log.Warn("watch: "+err.Error(), "dir", w.dir)
			}
		case <-timer.C:
		}
	}
}

// handle turns one notification into coalescer input.
func (w *Watcher) handle(ev fsnotify.Event) {
	rel, ok := w.rel(ev.Name)
	if !ok {
		return
	}
	now := w.now()
	switch {
	case ev.Has(fsnotify.Create):
		delete(w.selfMoves, ev.Name)
		fi, err := os.Lstat(ev.Name)
		isDir := err == nil && fi.IsDir()
		if err == nil {
			w.modes[rel] = fi.Mode().Perm()
		}
		from := renamedFrom(ev)
		if relFrom, ok := w.rel(from); ok {
			if held, ok := w.renames[relFrom]; ok && held.dir {
				w.selfMoves[from] = now
			}
			delete(w.renames, relFrom)
			delete(w.modes, relFrom)
			if isDir && w.recursive {
				w.addTree(ev.Name, nil)
			}
			w.co.rename(relFrom, rel, isDir, now)
			return
		}
		w.co.create(rel, isDir, now)
		if isDir && w.recursive {
			// Files made before the watch was in place send no event.
			w.addTree(ev.Name, func(path string, dir bool) {
				if r, ok := w.rel(path); ok {
					w.co.create(r, dir, now)
				}
			})
		}
	case ev.Has(fsnotify.Write):
		w.co.write(rel, now)
	case ev.Has(fsnotify.Remove):
		// A directory is removed after everything in it, each with its own
		// event, and the kernel drops its watch: only the map entry is left.
		isDir := w.dirs[ev.Name]
		delete(w.dirs, ev.Name)
		delete(w.modes, rel)
		w.co.remove(rel, isDir, now)
	case ev.Has(fsnotify.Rename):
		if _, ok := w.selfMoves[ev.Name]; ok {
			delete(w.selfMoves, ev.Name)
			return
		}
		if _, ok := w.renames[rel]; ok {
			return // the directory's own report of a move out of the tree
		}
		// The watches under a moved directory report its old paths until
		// they are dropped; a move within the tree watches the new ones.
		isDir := w.dirs[ev.Name]
		if isDir {
			w.forgetTree(ev.Name)
		}
		w.renames[rel] = heldRename{at: now, dir: isDir}
	case ev.Has(fsnotify.Chmod):
		fi, err := os.Lstat(ev.Name)
		if err != nil {
			return
		}
		mode := fi.Mode().Perm()
		if old, ok := w.modes[rel]; ok && old == mode {
			return
		}
		w.modes[rel] = mode
		w.co.chmod(rel, fi.IsDir(), now)
	}
}

// expire lets out the held events that are due and the renames no create
// claimed, and returns when the next is due.
func (w *Watcher) expire() time.Time {
	now := w.now()
	next := w.co.expire(now)
	for rel, held := range w.renames {
		due := held.at.Add(renameHold)
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		w.leftTree(rel, held)
	}
	for path, at := range w.selfMoves {
		if now.Sub(at) > selfMoveHold {
			delete(w.selfMoves, path)
		}
	}
	return next
}

func (w *Watcher) flush() {
	for rel, held := range w.renames {
		w.leftTree(rel, held)
	}
	w.co.flushAll()
}

// leftTree records a rename that took rel out of the watched tree.
func (w *Watcher) leftTree(rel string, held heldRename) {
	delete(w.renames, rel)
	w.co.rename(rel, "", held.dir, held.at)
}

// record turns one coalesced file event into an audit event, with the
// file's size and mode after the operation as they are now.
func (w *Watcher) record(fe fileEvent) {
	e := agenttrail.Event{
		Time:         fe.first,
		DurationMS:   float64(fe.last.Sub(fe.first).Microseconds()) / 1000,
		Action:       fe.op,
		ResourceType: "file",
		ResourceID:   fe.path,
		Result:       agenttrail.ResultSuccess,
	}
	m := w.meta
	m.Op, m.Path, m.NewPath, m.Writes, m.Dir, m.Root = fe.op, fe.path, fe.newPath, fe.writes, fe.dir, w.dir
	now := fe.path
	if fe.op == OpFileRename {
		now = fe.newPath
	}
	if fe.op != OpFileDelete && now != "" {
		if fi, err := os.Lstat(filepath.Join(w.dir, filepath.FromSlash(now))); err == nil {
			if !fi.IsDir() {
				size := fi.Size()
				m.Size = &size
			}
			if fe.chmod {
				m.Mode = fmt.Sprintf("%#o", fi.Mode().Perm())
			}
		}
	}
	e.Description = describeFile(fe, m)
	if err := record(context.Background(), w.rec, w.actor, e, m); err != nil {
		w.log.Error("watch: encode metadata", "err", err)
	}
}

// describeFile is one short sentence about a file event.
func describeFile(fe fileEvent, m Sandbox) string {
	what := "file"
	if fe.dir {
		what = "directory"
	}
	var d string
	switch fe.op {
	case OpFileCreate:
		d = "created " + what + " " + fe.path
	case OpFileWrite:
		d = fmt.Sprintf("wrote %s (%d writes)", fe.path, fe.writes)
	case OpFileDelete:
		d = "deleted " + what + " " + fe.path
	case OpFileRename:
		if fe.newPath == "" {
			d = "moved " + fe.path + " out of the watched directory"
		} else {
			d = "renamed " + fe.path + " to " + fe.newPath
		}
	case OpFileChmod:
		d = "changed the mode of " + fe.path
	}
	if m.Mode != "" {
		d += " (mode " + m.Mode + ")"
	}
	if m.Size != nil {
		d += ", now " + capture.Bytes(*m.Size)
	}
	return d + " in " + m.Root
}

// lost records that file events were lost, so the trail shows the gap.
func (w *Watcher) lost(ctx context.Context, why string) {
	w.log.Warn("watch: "+why, "dir", w.dir)
	e := agenttrail.Event{
		Time:         w.now(),
		Action:       "file_events_lost",
		ResourceType: "file",
		Result:       agenttrail.ResultError,
		Description:  why,
	}
	m := w.meta
	m.Op = "file_events_lost"
	if err := record(ctx, w.rec, w.actor, e, m); err != nil {
		w.log.Error("watch: encode metadata", "err", err)
	}
}
