package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/agenttrail/agenttrail"
)

const producerFile = "producer.json"

// producerState is what a Recorder keeps in its spool directory so that a
// restart continues the same producer: its id, the highest producer_seq it
// assigned, and whether the last run ended with Close. After a crash the
// events still in memory were lost, and their sequence numbers may be higher
// than the last saved one; the next run skips ahead so that the loss shows up
// as a sequence gap instead of being papered over by reused numbers.
type producerState struct {
	ProducerID string `json:"producer_id"`
	Seq        int64  `json:"seq"`
	Clean      bool   `json:"clean"`
	// Boot is the OS boot the state was saved in: the counter mapped in
	// producer.seq is exact after a process crash within the same boot.
	Boot string `json:"boot,omitempty"`
}

// loadProducer reads the state in dir, or makes a new producer when there is
// none. It returns the state to continue from and whether the previous run
// crashed.
func loadProducer(dir string, now time.Time) (st producerState, crashed bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, producerFile))
	if errors.Is(err, os.ErrNotExist) {
		return producerState{ProducerID: agenttrail.NewID(now), Clean: true}, false, nil
	}
	if err != nil {
		return producerState{}, false, fmt.Errorf("read producer state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil || st.ProducerID == "" || st.Seq < 0 {
		return producerState{}, false, fmt.Errorf("read producer state: %s is damaged; remove it to start a new producer", producerFile)
	}
	return st, !st.Clean, nil
}

// saveProducer replaces the state in dir. The rename makes it atomic; the
// fsyncs, wanted only when durable is set, make it survive an OS crash too
// (a process crash keeps what was written without them).
func saveProducer(dir string, st producerState, durable bool) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, producerFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save producer state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, producerFile))
	}
	if err == nil && durable {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("save producer state: %w", err)
	}
	return nil
}
