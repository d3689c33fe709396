package cluster

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/agenttrail/agenttrail/internal/defaults"
	"github.com/agenttrail/agenttrail/internal/wait"
)

// Exclusive runs work on one node of many at a time: the node that holds
// Lock. The others stand by and poll the lock, so one of them takes over
// within about Poll of the holder's death. The writer of the stream is one;
// the sinks and the periodic checkpoints of a cluster are another.
type Exclusive struct {
	Lock Lock
	// Poll is how often a standby tries the lock (default 2 s).
	Poll time.Duration
	// What names the work in logs ("this writer is active").
	What string
	Log  *slog.Logger

	active atomic.Bool
}

// Active reports whether this node holds the lock and runs the work.
func (e *Exclusive) Active() bool { return e.active.Load() }

// Run waits for the lock and runs work while it holds it, until ctx ends;
// then it releases the lock and returns nil. work gets held, which returns
// nil while the lock is still held, and must return once held fails (or
// ctx ends); Run then releases the lock and waits for it again.
func (e *Exclusive) Run(ctx context.Context, work func(ctx context.Context, held func(context.Context) error) error) error {
	poll, log := e.Poll, e.Log
	defaults.Positive(&poll, 2*time.Second)
	defaults.Logger(&log)
	defer e.Lock.Release()
	held := func(ctx context.Context) error {
		hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return e.Lock.Held(hctx)
	}
	standbyLogged := false
	for {
		ok, err := e.Lock.TryAcquire(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn(e.What+": lock unavailable", "err", err)
		case ok:
			standbyLogged = false
			e.active.Store(true)
			log.Info(e.What + ": active on this node")
			err := work(ctx, held)
			e.active.Store(false)
			e.Lock.Release()
			if ctx.Err() != nil {
				return nil
			}
			log.Warn(e.What+": no longer active on this node", "err", err)
		case !standbyLogged:
			standbyLogged = true
			log.Info(e.What + ": active on another node; standing by")
		}
		if !sleep(ctx, poll) {
			return nil
		}
	}
}

// WhileHeld runs run until ctx ends or the lock is lost, checking held
// every poll: a work function for Exclusive.Run of work that does not
// check the lock itself. run's context ends when the lock is lost.
func WhileHeld(poll time.Duration, run func(context.Context) error) func(context.Context, func(context.Context) error) error {
	defaults.Positive(&poll, 2*time.Second)
	return func(ctx context.Context, held func(context.Context) error) error {
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case err := <-done:
				cancel()
				return err
			case <-t.C:
				if err := held(ctx); err != nil && ctx.Err() == nil {
					cancel()
					<-done
					return err
				}
			}
		}
	}
}

// sleep waits d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	return wait.Sleep(ctx, d, nil)
}
