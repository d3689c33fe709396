//go:build unix

package client

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// mapSeq maps dir's seqFile (made when missing) into c and returns the value
// it held. On failure c stays in memory.
func (c *seqCounter) mapSeq(dir string) (int64, error) {
	f, err := os.OpenFile(filepath.Join(dir, seqFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("open producer counter: %w", err)
	}
	defer f.Close() // the mapping outlives the descriptor
	if err := f.Truncate(8); err != nil {
		return 0, fmt.Errorf("size producer counter: %w", err)
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, 8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("map producer counter: %w", err)
	}
	c.mem, c.p = mem, (*int64)(unsafe.Pointer(&mem[0]))
	return c.Load(), nil
}

// unmap releases the mapping; the counter reads as its last value after.
func (c *seqCounter) unmap() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mem == nil {
		return nil
	}
	c.heap = c.Load()
	c.p = &c.heap
	mem := c.mem
	c.mem = nil
	return syscall.Munmap(mem)
}
