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
	took, err := FsyncSamples(dir, n)
	if err != nil {
		return 0, 0, err
	}
	return took[(n-1)/2], took[(n*99+99)/100-1], nil
}

// FsyncSamples is MeasureFsync's n timings, sorted, for callers that want
// another statistic of them.
func FsyncSamples(dir string, n int) (took []time.Duration, err error) {
	if n <= 0 {
		return nil, errors.New("wal: MeasureFsync needs n > 0")
	}
	f, err := os.CreateTemp(dir, "fsync-probe-*")
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
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
		return nil, fmt.Errorf("wal: %w", err)
	}
	record := make([]byte, FsyncRecordBytes)
	took = make([]time.Duration, n)
	for i := range took {
		start := time.Now()
		if _, err := f.Write(record); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		// The WAL's own call (hooks.fsync is (*os.File).Sync): the floor
		// is what the log pays, not what a lighter call would.
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("wal: %w", err)
		}
		took[i] = time.Since(start)
	}
	slices.Sort(took)
	return took, nil
}

// FsyncRecordBytes is the size of each record MeasureFsync appends: about
// one small entry with its header.
const FsyncRecordBytes = 256
