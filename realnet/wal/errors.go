package wal

import (
	"errors"
	"fmt"
)

var (
	// ErrCorrupt is wrapped by every *CorruptError: the directory holds
	// damage that is not a torn final write, and nothing was loaded.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrBackPressure means staging more would pass Options.MaxStagedBytes.
	// The call changed nothing; Sync, and retry once its callback ran.
	ErrBackPressure = errors.New("wal: too much staged data, sync first")
	// ErrLogGap means appended entries are not consecutive, or would leave
	// a gap after the last entry (or the snapshot).
	ErrLogGap = errors.New("wal: entries leave a gap in the log")
	// ErrTooLarge means one entry or meta value does not fit a record.
	ErrTooLarge = errors.New("wal: record too large")
	// ErrLocked means another WAL holds the directory.
	ErrLocked = errors.New("wal: directory in use by another process")
)

// CorruptError says where replay found damage it may not repair: the file,
// the byte offset in it, and what was wrong.
type CorruptError struct {
	File   string // path of the damaged (or missing) file
	Offset int64  // byte offset of the damage in File; -1 when the whole file is at fault
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Offset < 0 {
		return fmt.Sprintf("wal: corrupt: %s: %s", e.File, e.Reason)
	}
	return fmt.Sprintf("wal: corrupt: %s: offset %d: %s", e.File, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// inFile names the file of a CorruptError that was raised without one, and
// leaves other errors alone.
func inFile(err error, path string) error {
	var ce *CorruptError
	if errors.As(err, &ce) && ce.File == "" {
		ce.File = path
	}
	return err
}
