package sqlite

import (
	"log/slog"
)

// walCheckpointer copies the WAL into the database file (a PASSIVE WAL
// checkpoint) on a connection and goroutine of its own after the writer's
// commits. Left to SQLite's autocheckpoint, the copy and the fsync of the
// database file run on the writer goroutine, which bounds ingest, right
// after a commit; here they overlap with the writer's next batch. A
// checkpoint leaves the WAL's header alone, so the writer keeps its page
// cache (a write by another connection would drop it: see writer).
//
// The writer still checkpoints itself once the WAL reaches walFramesLimit
// frames (its autocheckpoint): SQLite starts the WAL over from its beginning
// only at a write transaction that finds it wholly copied, which the
// writer's next transaction does not when it begins while a checkpoint here
// is still running. The writer's own checkpoint then copies what is left, so
// the WAL stays bounded however busy the writer is.
type walCheckpointer struct {
	c      *rawConn
	st     *rawStmt
	logger *slog.Logger
	kick   chan struct{} // capacity 1: "the writer committed"
	stop   chan struct{}
	done   chan struct{}
}

// walFramesLimit is the writer's wal_autocheckpoint, in pages.
const walFramesLimit = 4000

func startWALCheckpointer(path string, logger *slog.Logger) (*walCheckpointer, error) {
	c, err := openRaw(path, "PRAGMA busy_timeout = 10000")
	if err != nil {
		return nil, err
	}
	st, err := c.prepare("PRAGMA wal_checkpoint(PASSIVE)")
	if err != nil {
		c.close()
		return nil, err
	}
	k := &walCheckpointer{c: c, st: st, logger: logger,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k, nil
}

func (k *walCheckpointer) run() {
	defer close(k.done)
	for {
		select {
		case <-k.stop:
			return
		case <-k.kick:
		}
		if _, err := k.st.exec(); err != nil {
			// The writer's autocheckpoint still bounds the WAL.
			k.logger.Warn("cannot checkpoint the WAL", "err", err)
		}
	}
}

// committed tells the checkpointer the writer committed; it never waits.
func (k *walCheckpointer) committed() {
	select {
	case k.kick <- struct{}{}:
	default: // a checkpoint is due already
	}
}

// close stops the checkpointer and closes its connection.
func (k *walCheckpointer) close() {
	close(k.stop)
	<-k.done
	k.st.close()
	k.c.close()
}
