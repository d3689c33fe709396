//go:build unix

package shell

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/agenttrail/agenttrail/internal/private"
)

// SpoolSlot returns a spool directory under base that no other process is
// using, and a function that gives it back. A client spool serves one
// Recorder at a time, and a command wrapper such as `agenttrail exec` runs
// as many processes at once as the agent runs commands: each takes the
// first free slot (base/0, base/1, …, at most MaxSpoolSlots), locked with
// flock for as long as it runs, so the events a run left in a slot are
// replayed by the next run that takes it. The lock dies with the process.
func SpoolSlot(base string) (dir string, release func(), err error) {
	for i := 0; i < MaxSpoolSlots; i++ {
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := private.MkdirAll(dir); err != nil {
			return "", nil, fmt.Errorf("spool slot: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("spool slot: %w", err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return dir, func() { f.Close() }, nil // closing the file drops the lock
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return "", nil, fmt.Errorf("spool slot: lock %s: %w", dir, err)
		}
	}
	return "", nil, fmt.Errorf("spool slot: all %d slots under %s are in use", MaxSpoolSlots, base)
}
