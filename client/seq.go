package client

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// seqFile is where a Recorder with a spool keeps its producer_seq counter.
const seqFile = "producer.seq"

// seqCounter is the producer_seq counter. With a spool on a unix system its
// word lives in seqFile mapped shared into memory: every number Record takes
// is in the kernel's page cache at once, at the cost of an atomic add, so
// when the process is killed the next run on the same spool knows exactly
// the last number taken, and the events lost in memory are exactly the
// numbers missing from the server. The zero value counts in memory.
//
// Add, Load and Store must not run concurrently with unmap (the Recorder
// stops every caller first); loadLocked may, for Stats.
type seqCounter struct {
	mu   sync.RWMutex // held for writing by unmap
	p    *int64       // the counter: the word of mem, or heap
	heap int64
	mem  []byte // the mapping; nil when the counter is in memory
}

// loadLocked is Load, safe beside unmap.
func (c *seqCounter) loadLocked() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.Load()
}

func (c *seqCounter) ptr() *int64 {
	if c.p == nil {
		return &c.heap
	}
	return c.p
}

// Add adds d and returns the new value.
func (c *seqCounter) Add(d int64) int64 { return atomic.AddInt64(c.ptr(), d) }

// Load returns the value.
func (c *seqCounter) Load() int64 { return atomic.LoadInt64(c.ptr()) }

// Store sets the value.
func (c *seqCounter) Store(v int64) { atomic.StoreInt64(c.ptr(), v) }

// bootID names the running boot of the OS, or "" where it cannot be told.
// A mapped counter survives the process, not the machine: after a reboot
// its last writes may be gone, and the Recorder falls back to skipping.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
