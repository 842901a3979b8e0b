package wal

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"
)

// MeasureFsync times n appends of a small record followed by fsync in a
// scratch file in dir, the disk's floor for a durable commit, and returns
// the median and the 99th percentile. A WAL that fsyncs once per batch can
// answer at most about 1/p50 batches per second; group commit is what lets
// it answer more proposals than that.
func MeasureFsync(dir string, n int) (p50, p99 time.Duration, err error) {
	if n <= 0 {
		return 0, 0, errors.New("wal: MeasureFsync needs n > 0")
	}
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	defer func() {
		f.Close()
		if rerr := os.Remove(f.Name()); err == nil && rerr != nil {
			err = fmt.Errorf("wal: %w", rerr)
		}
	}()
	// A first fsync makes the file's creation durable, which a WAL pays
	// once per segment, not per commit.
	if err := f.Sync(); err != nil {
		return 0, 0, fmt.Errorf("wal: %w", err)
	}
	record := make([]byte, 256) // about one small entry with its header
	took := make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if _, err := f.Write(record); err != nil {
			return 0, 0, fmt.Errorf("wal: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, 0, fmt.Errorf("wal: %w", err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took[(n-1)/2], took[(n*99+99)/100-1], nil
}
