package wal

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Snapshot file: magic, version, index, term, conf state, data length,
// data, and a CRC-32C of every byte before it. Names carry index and term,
// fixed-width hex, so they sort by index.
const (
	snapSuffix    = ".snap"
	snapTmpSuffix = ".snap.tmp"
)

var snapMagic = [8]byte{'s', 'w', 'a', 'r', 'm', 'S', 'N', 'P'}

func snapName(index, term uint64) string {
	return fmt.Sprintf("%016x-%016x%s", index, term, snapSuffix)
}

func parseSnapName(name string) (index, term uint64, ok bool) {
	base, found := strings.CutSuffix(name, snapSuffix)
	if !found || len(base) != 33 || base[16] != '-' {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(base[:16], 16, 64)
	term, err2 := strconv.ParseUint(base[17:], 16, 64)
	return index, term, err1 == nil && err2 == nil
}

func appendConf(b []byte, c *env.ConfState) []byte {
	for _, ids := range [][]uint64{c.Voters, c.Learners, c.VotersOutgoing, c.LearnersNext} {
		b = appendU32(b, uint32(len(ids)))
		for _, id := range ids {
			b = appendU64(b, id)
		}
	}
	if c.AutoLeave {
		return append(b, 1)
	}
	return append(b, 0)
}

// snapshotHead encodes everything in a snapshot file before its data.
func snapshotHead(s *env.Snapshot) []byte {
	b := append([]byte{}, snapMagic[:]...)
	b = appendU32(b, formatVersion)
	b = appendU64(b, s.Index)
	b = appendU64(b, s.Term)
	b = appendConf(b, &s.Conf)
	return appendU64(b, uint64(len(s.Data)))
}

// writeSnapshotFile puts s in dir atomically: a temp file written and
// fsynced, renamed into place, and the directory fsynced, so that a crash
// leaves either no file or the whole file (a leftover temp file is ignored).
func writeSnapshotFile(dir string, s *env.Snapshot, sync *ioHooks) (err error) {
	f, err := os.CreateTemp(dir, "*"+snapTmpSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	h := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err = w.Write(snapshotHead(s)); err != nil {
		return err
	}
	if _, err = w.Write(s.Data); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if _, err = f.Write(binary.LittleEndian.AppendUint32(nil, h.Sum32())); err != nil {
		return err
	}
	if err = sync.fsync(f); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, filepath.Join(dir, snapName(s.Index, s.Term))); err != nil {
		return err
	}
	return sync.syncDir(dir)
}

// readSnapshotFile loads the snapshot file path and checks that it is whole
// and is the snapshot (index, term) the log names. Data aliases the file's
// buffer, which is little more than the data itself.
func readSnapshotFile(path string, index, term uint64) (env.Snapshot, error) {
	buf, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return env.Snapshot{}, &CorruptError{File: path, Offset: -1, Reason: fmt.Sprintf(
			"snapshot file missing, though the log says snapshot %d (term %d) is durable", index, term)}
	}
	if err != nil {
		return env.Snapshot{}, err
	}
	s, off, err := decodeSnapshotFile(buf)
	if err != nil {
		return env.Snapshot{}, &CorruptError{File: path, Offset: int64(off), Reason: err.Error()}
	}
	if s.Index != index || s.Term != term {
		return env.Snapshot{}, &CorruptError{File: path, Offset: -1, Reason: fmt.Sprintf(
			"holds snapshot %d (term %d), the log wants %d (term %d)", s.Index, s.Term, index, term)}
	}
	return s, nil
}

// decodeSnapshotFile parses a whole snapshot file. On error it also returns
// the offset the problem was found at.
func decodeSnapshotFile(buf []byte) (env.Snapshot, int, error) {
	var s env.Snapshot
	if len(buf) < 4 {
		return s, 0, fmt.Errorf("snapshot file of %d bytes is too short", len(buf))
	}
	body := buf[:len(buf)-4]
	if got, want := crc(body), binary.LittleEndian.Uint32(buf[len(body):]); got != want {
		return s, len(body), fmt.Errorf("snapshot checksum mismatch (file says %#08x, content gives %#08x)", want, got)
	}
	r := reader{b: body}
	magic := r.bytes(8)
	version := r.u32()
	if r.bad || string(magic) != string(snapMagic[:]) {
		return s, 0, fmt.Errorf("not a swarmsim snapshot file")
	}
	if version != formatVersion {
		return s, 8, fmt.Errorf("snapshot format version %d, this build reads %d", version, formatVersion)
	}
	s.Index, s.Term = r.u64(), r.u64()
	lists := []*[]uint64{&s.Conf.Voters, &s.Conf.Learners, &s.Conf.VotersOutgoing, &s.Conf.LearnersNext}
	for _, l := range lists {
		n := uint64(r.u32())
		if n > uint64(len(r.b))/8 {
			return s, len(body) - len(r.b), fmt.Errorf("conf state list overruns the file")
		}
		for range n {
			*l = append(*l, r.u64())
		}
	}
	switch r.u8() {
	case 0:
	case 1:
		s.Conf.AutoLeave = true
	default:
		return s, len(body) - len(r.b) - 1, fmt.Errorf("conf state auto-leave flag not 0 or 1")
	}
	n := r.u64()
	if r.bad || n != uint64(len(r.b)) {
		return s, len(body) - len(r.b), fmt.Errorf("snapshot data length %d does not match the file", n)
	}
	if n > 0 {
		s.Data = r.b
	}
	return s, 0, nil
}

// syncDir fsyncs a directory, making renames, creations and removals in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
