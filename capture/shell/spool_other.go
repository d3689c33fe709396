//go:build !unix

package shell

import (
	"fmt"
	"path/filepath"

	"github.com/agenttrail/agenttrail/internal/private"
)

// SpoolSlot returns base/0. Without flock, concurrent runs are not kept
// apart on this system: give each its own spool.
func SpoolSlot(base string) (dir string, release func(), err error) {
	dir = filepath.Join(base, "0")
	if err := private.MkdirAll(dir); err != nil {
		return "", nil, fmt.Errorf("spool slot: %w", err)
	}
	return dir, func() {}, nil
}
