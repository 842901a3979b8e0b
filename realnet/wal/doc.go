// Package wal is a manager's raft state on a real disk: an env.Storage made
// of a write-ahead log and snapshot files in one directory.
//
// It owns durability and recovery: staging writes in memory, making them
// durable with write+fsync on one background goroutine per WAL (group
// commit: one fsync answers every Sync that arrived while the previous one
// was in flight), replaying the directory at start-up, telling a torn tail
// (a crash mid-write) from corruption, and deleting what a durable snapshot
// made obsolete. It never interprets Entry.Data or Snapshot.Data: both are
// opaque bytes, so an encrypting layer may seal them above this package.
//
// It must never acknowledge anything before fsync returned, never call a
// Sync callback anywhere but through env.Loop.Post, and never return state
// it could not read in full: corruption is an error naming the file and the
// offset, not a shorter log.
//
// # Directory
//
//	LOCK                                  flock(2) held while open
//	<segment:016x>-<firstbatch:016x>.wal  log segments, consecutive numbers
//	<index:016x>-<term:016x>.snap         snapshot files (the newest 2 kept)
//	*.snap.tmp                            a snapshot being written; ignored
//	                                      and removed at Open
//
// # Records
//
// A segment is a sequence of records. Each has a 24-byte header, all
// integers little-endian:
//
//	0:4    CRC-32C (Castagnoli) of header bytes 4:24
//	4:8    CRC-32C of the payload
//	8:12   payload length
//	12     record type
//	13:16  zero
//	16:24  batch sequence number
//
// Records are grouped into batches: everything one write+fsync carried,
// ended by a commit record that counts the batch's records. Replay applies
// a batch only when its commit record is intact, so a crash never leaves
// half of a batch in effect (raft needs the entries, snapshot marker and
// hard state of one Ready to survive together). Batch numbers rise by one
// from batch to batch, across segments too.
//
// Checksums are per record rather than chained (etcd chains each record's
// CRC to the previous one). A record that verifies on its own is what lets
// recovery look past damage and ask "was anything written after this?":
// an intact record of a later batch proves the damaged batch had been
// fsynced (batches are written one at a time, each after the previous
// fsync returned), so the damage is corruption, not a torn write. Order,
// which chaining would protect, is checked with the batch numbers. The
// header has its own checksum so that a flipped length is caught before it
// is trusted, and so that looking past damage costs one small checksum per
// byte offset.
//
// Record types: segment header (magic, version, segment number, first
// batch), checkpoint (hard state, snapshot index and term, every meta
// value), entry (term, index, type, data: one record per entry), hard
// state, meta (set or delete one key), snapshot marker (index, term, and
// whether the log after it was kept), commit (record count).
//
// Every segment begins with a batch holding its header and a checkpoint of
// the state the earlier segments built. That is what makes deleting old
// segments safe: replay may start at any segment.
//
// # Snapshots
//
// A snapshot file is written whole before its marker enters the log: temp
// file, fsync, rename, fsync of the directory. Load uses only the snapshot
// the newest durable marker names; a snapshot file without a marker (a
// crash before the marker's fsync) is never used. The file holds a magic,
// version, index, term, conf state and data, and ends with a CRC-32C of
// everything before it.
//
// # Recovery
//
// Open replays every segment. In the last segment, damage after the last
// complete batch (a short header or payload, a checksum mismatch, a batch
// without its commit record) is a torn write when no intact record of a
// later batch follows it; the segment is then truncated to its last
// complete batch (removed when it has none, or is empty) and appends
// continue there.
// Anything else is a *CorruptError: damage in an earlier segment, damage
// followed by a later batch, a record whose checksum holds but whose
// content is malformed, a missing segment, a missing or corrupt snapshot
// file. Damage inside the last batch cannot be told from a torn write and
// is dropped like one; that batch may have been acknowledged just before a
// disk corrupted it, a limit every log that truncates torn tails shares.
//
// # Compaction
//
// After a batch carrying a snapshot is durable and its Syncs answered, the
// writer deletes the oldest segments whose entries all sit at or below the
// snapshot's index (never the segment being written), fsyncing the
// directory after each deletion so that a crash leaves a suffix of the
// segments, never a hole. It keeps two snapshot files, the durable one and
// the newest older one; a file newer than the durable snapshot is an orphan
// of a failed Sync and goes too. Open finishes deletions a crash
// interrupted, except in a directory with no segment at all, whose
// snapshot files it leaves alone (Load ignores them). Segments are cut at
// Options.SegmentBytes (64 MiB by default), between batches.
//
// # Back-pressure
//
// Staging is bounded by Options.MaxStagedBytes. When staged data (encoded
// records plus staged snapshot data) would grow past it, Append, SetMeta
// and SaveSnapshot change nothing and return an error wrapping
// ErrBackPressure; SetHardState (one fixed slot) and Sync always work. The
// caller Syncs and retries once the Sync's callback ran. A single item
// larger than the bound is accepted when nothing else is staged, so a large
// snapshot can always be saved. At most one batch is being written while
// another is staged, so memory stays near twice the bound.
//
// # Failure
//
// After a failed write or fsync the WAL stops: the failing Sync and every
// later call return the error. Retrying fsync after a failure can report
// success for data the kernel already dropped, so a restart must reload from
// disk instead.
package wal
