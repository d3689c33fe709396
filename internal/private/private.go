// Package private keeps the directories that hold audit data, tokens and
// spooled events readable by their owner only.
package private

import (
	"fmt"
	"os"
)

// MkdirAll creates dir and its parents as os.MkdirAll does, with mode 0700,
// and narrows dir to 0700 when it exists with a wider mode (os.MkdirAll
// leaves an existing directory as it is): a data directory made by hand or
// by a package manager with 0755 would show the names and sizes of what it
// holds to every user.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, fi.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("narrow %s to its owner: %w", dir, err)
		}
	}
	return nil
}
