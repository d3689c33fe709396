//go:build !unix

package spoollog

import (
	"fmt"
	"os"
)

// Lock creates dir (mode 0700) when needed. Without flock on this system it
// does not keep other users out: give each process its own directory.
func Lock(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() {}, nil
}
