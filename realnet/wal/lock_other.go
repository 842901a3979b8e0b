//go:build !unix

package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK on systems without flock: nothing stops a
// second process there. Real mode targets Linux.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("wal: %w", err)
	}
	return f, nil
}

func unlockDir(f *os.File) { f.Close() }
