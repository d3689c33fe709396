//go:build !unix

package client

import "errors"

// mapSeq is not available here: the counter stays in memory, and a restart
// after a crash skips numbers instead.
func (c *seqCounter) mapSeq(dir string) (int64, error) {
	return 0, errors.New("producer counter: no shared mappings on this system")
}

func (c *seqCounter) unmap() error { return nil }
