//go:build !unix

package shell

import (
	"fmt"
	"os"
	"path/filepath"
)

// SpoolSlot returns base/0. Without flock, concurrent runs are not kept
// apart on this system: give each its own spool.
func SpoolSlot(base string) (dir string, release func(), err error) {
	dir = filepath.Join(base, "0")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("spool slot: %w", err)
	}
	return dir, func() {}, nil
}
