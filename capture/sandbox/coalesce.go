package sandbox

import "time"

// The file operations the Watcher records, as metadata.sandbox.op and as
// the event's action. OpFileWrite is shared with `docker cp`.
const (
	OpFileCreate = "file_create"
	OpFileDelete = "file_delete"
	OpFileRename = "file_rename"
	OpFileChmod  = "file_chmod"
)

// fileEvent is one file event the coalescer lets out.
type fileEvent struct {
	op      string
	path    string // relative to the watched directory, slash-separated
	newPath string // of a rename inside the tree
	first   time.Time
	last    time.Time
	writes  int
	dir     bool
	chmod   bool // the mode changed too, within the window
}

// pendingFile is a create or a write held back for the window, collecting
// the writes that follow it.
type pendingFile struct {
	fileEvent
	due time.Time
}

// coalescer turns a file's notifications into events: a create or the
// first write of a burst is held for one window and collects the writes
// that follow within it, so a file written a thousand times in a second is
// one event; removes and renames go out at once, after what was held for
// the file. It is not safe for concurrent use: the Watcher's loop owns it.
type coalescer struct {
	window  time.Duration
	emit    func(fileEvent)
	pending map[string]*pendingFile
	// queue holds the pending entries in the order they fall due (the
	// window is fixed, so that is the order they began); entries flushed
	// early stay behind and are skipped.
	queue []*pendingFile
}

func newCoalescer(window time.Duration, emit func(fileEvent)) *coalescer {
	return &coalescer{window: window, emit: emit, pending: map[string]*pendingFile{}}
}

// create notes that path was created. A create already held for path is
// the same one seen twice (a new directory's scan racing its events).
func (c *coalescer) create(path string, dir bool, now time.Time) {
	if p := c.pending[path]; p != nil {
		if p.op == OpFileCreate {
			return
		}
		c.flush(path)
	}
	c.hold(fileEvent{op: OpFileCreate, path: path, first: now, last: now, dir: dir}, now)
}

// write notes one write notification for path.
func (c *coalescer) write(path string, now time.Time) {
	if p := c.pending[path]; p != nil {
		p.writes++
		p.last = now
		return
	}
	c.hold(fileEvent{op: OpFileWrite, path: path, first: now, last: now, writes: 1}, now)
}

// chmod notes that path's mode changed: part of what is held for it, or an
// event of its own, held for a window like a write.
func (c *coalescer) chmod(path string, dir bool, now time.Time) {
	if p := c.pending[path]; p != nil {
		p.chmod = true
		p.last = now
		return
	}
	c.hold(fileEvent{op: OpFileChmod, path: path, first: now, last: now, dir: dir, chmod: true}, now)
}

// remove lets out what was held for path, then its delete.
func (c *coalescer) remove(path string, dir bool, now time.Time) {
	c.flush(path)
	c.emit(fileEvent{op: OpFileDelete, path: path, first: now, last: now, dir: dir})
}

// rename lets out what was held for path and newPath, then the rename.
// newPath is "" when the file left the watched tree.
func (c *coalescer) rename(path, newPath string, dir bool, now time.Time) {
	c.flush(path)
	if newPath != "" {
		c.flush(newPath)
	}
	c.emit(fileEvent{op: OpFileRename, path: path, newPath: newPath, first: now, last: now, dir: dir})
}

func (c *coalescer) hold(e fileEvent, now time.Time) {
	p := &pendingFile{fileEvent: e, due: now.Add(c.window)}
	c.pending[e.path] = p
	c.queue = append(c.queue, p)
}

func (c *coalescer) flush(path string) {
	if p := c.pending[path]; p != nil {
		delete(c.pending, path)
		c.emit(p.fileEvent)
	}
}

// expire lets out what has been held for a window by now, and returns
// when the next held event falls due (zero when none is held).
func (c *coalescer) expire(now time.Time) time.Time {
	i := 0
	for ; i < len(c.queue); i++ {
		p := c.queue[i]
		if c.pending[p.path] != p {
			continue // flushed early
		}
		if p.due.After(now) {
			break
		}
		delete(c.pending, p.path)
		c.emit(p.fileEvent)
	}
	c.queue = c.queue[i:]
	if len(c.queue) == 0 {
		c.queue = nil // let the backing array go after a burst
		return time.Time{}
	}
	return c.queue[0].due
}

// flushAll lets out everything held, in the order it began.
func (c *coalescer) flushAll() {
	for _, p := range c.queue {
		if c.pending[p.path] == p {
			delete(c.pending, p.path)
			c.emit(p.fileEvent)
		}
	}
	c.queue = nil
}
