package capture

import (
	"net"
	"sync"
)

// Tracker holds a proxy's open long-lived exchanges (CONNECT tunnels,
// hijacked streams) so that the proxy's Close can end them and wait until
// each has been recorded, and the goroutines that record the others. The
// zero Tracker is ready to use.
type Tracker[T comparable] struct {
	mu     sync.Mutex
	open   map[T]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Track registers x so that Close ends it; it reports false once Close
// was called. Every x tracked must be untracked once its event is recorded.
func (k *Tracker[T]) Track(x T) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return false
	}
	if k.open == nil {
		k.open = map[T]struct{}{}
	}
	k.open[x] = struct{}{}
	k.wg.Add(1)
	return true
}

// Untrack removes x, which Track registered.
func (k *Tracker[T]) Untrack(x T) {
	k.mu.Lock()
	delete(k.open, x)
	k.mu.Unlock()
	k.wg.Done()
}

// Go runs f on a goroutine of its own, which Close waits for; once Close
// was called it runs f before it returns.
func (k *Tracker[T]) Go(f func()) {
	k.mu.Lock()
	closed := k.closed
	if !closed {
		k.wg.Add(1)
	}
	k.mu.Unlock()
	if closed {
		f()
		return
	}
	go func() {
		defer k.wg.Done()
		f()
	}()
}

// Close refuses new exchanges, calls end for every open one and waits until
// each is untracked. It is safe to call more than once.
func (k *Tracker[T]) Close(end func(T)) {
	k.mu.Lock()
	k.closed = true
	for x := range k.open {
		end(x)
	}
	k.mu.Unlock()
	k.wg.Wait()
}

// Relay is the pair of connections a proxy copies between for a CONNECT
// tunnel or a hijacked stream.
type Relay struct {
	Client, Upstream net.Conn
	once             sync.Once
}

// Abort closes both connections, which ends the copying both ways. Only
// its first call closes.
func (r *Relay) Abort() {
	r.once.Do(func() {
		r.Client.Close()
		r.Upstream.Close()
	})
}
