package crypt

import (
	"errors"
	"fmt"
	"strings"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Options tune a SealedStorage.
type Options struct {
	// KDF is argon2id's cost for passphrases set from now on (DefaultKDF
	// when zero). Records keep the cost they were sealed with.
	KDF KDFParams
	// Rand, when set, is where nonces, keys and salts come from instead
	// of the rnd NewSealedStorage is given: the simulator gives sealing
	// its own named stream, so that how many bytes sealing draws does not
	// shift the draws of the node's other parts.
	Rand env.Rand
}

// Stats are counters for metrics and tests.
type Stats struct {
	RecordsSealed     uint64
	RecordsOpened     uint64
	DataKeyRotations  uint64
	DataKeysRetired   uint64 // old data keys dropped once no record used them
	KEKChanges        uint64 // re-wraps under a new key-encryption key
	KeyRecordsWritten uint64
}

// SealedStorage is an env.Storage that seals raft entries and snapshots
// on the way to an inner storage and opens them on the way back. See the
// package documentation. Like every env.Storage it is used from one
// node's loop only.
type SealedStorage struct {
	inner env.Storage
	rand  env.Rand
	opts  Options

	// locked: the key record's KEK is derived from a secret we do not have
	// yet; rec holds the parsed record until Unlock.
	locked bool
	rec    *keyRecord

	ring      *keyring
	kekSpec   kekSpec
	kek       [32]byte
	unlockKey string // the secret the KEK came from; "" for a local KEK

	// Which data keys live records use, as staged: the newest snapshot's
	// key, and runs of entries by the key that sealed them (entries from
	// run[i].first to run[i+1].first-1, the last run up to lastIndex).
	snapIndex uint64
	snapKey   uint32
	runs      []keyRun
	lastIndex uint64
	loaded    bool

	// keyWrites counts key records staged; keySynced is the count a
	// completed sync made durable.
	keyWrites, keySynced uint64

	entries entrySealer

	stats Stats
}

type keyRun struct {
	first uint64
	key   uint32
}

var _ env.Storage = (*SealedStorage)(nil)

// NewSealedStorage wraps inner. It reads inner's key record: a fresh disk
// gets a new one (a first data key wrapped by a local KEK, staged for the
// next sync); a disk whose key record is wrapped by a local KEK opens at
// once; one wrapped by an unlock key or passphrase is Locked until Unlock.
// A damaged key record, or raft state without one, is an error. Nonces,
// keys and salts are drawn from rnd.
func NewSealedStorage(inner env.Storage, rnd env.Rand, opts Options) (*SealedStorage, error) {
	if opts.KDF == (KDFParams{}) {
		opts.KDF = DefaultKDF
	}
	if err := opts.KDF.check(); err != nil {
		return nil, err
	}
	if opts.Rand != nil {
		rnd = opts.Rand
	}
	s := &SealedStorage{inner: inner, rand: rnd, opts: opts}
	st, err := inner.Load()
	if err != nil {
		return nil, err
	}
	raw, ok := st.Meta[MetaKey]
	if !ok {
		if st.Snapshot.Index > 0 || len(st.Entries) > 0 {
			return nil, ErrNoKeyRecord
		}
		var key [32]byte
		_, _ = rnd.Read(key[:])
		s.ring = &keyring{current: 1, keys: []*dataKey{newDataKey(1, key)}}
		spec, kek, err := newKEK(rnd, "", opts.KDF)
		if err != nil {
			return nil, err
		}
		s.kekSpec, s.kek = spec, kek
		if err := s.writeKeyRecord(); err != nil {
			return nil, err
		}
		return s, nil
	}
	rec, err := parseKeyRecord(raw)
	if err != nil {
		return nil, err
	}
	if rec.kek.kind != kekLocal {
		s.locked, s.rec = true, rec
		return s, nil
	}
	ring, err := rec.open(rec.kek.local)
	if err != nil {
		return nil, fmt.Errorf("%w: the key record does not authenticate under its local key", ErrCorrupt)
	}
	s.ring, s.kekSpec, s.kek = ring, rec.kek, rec.kek.local
	return s, nil
}

// Locked reports whether the storage waits for Unlock.
func (s *SealedStorage) Locked() bool { return s.locked }

// Unlock opens a locked key record with the cluster's unlock key (or the
// passphrase set as one). A wrong key is refused with ErrWrongKey and
// the storage stays locked.
func (s *SealedStorage) Unlock(key string) error {
	if !s.locked {
		return ErrNotLocked
	}
	kek, err := s.rec.kek.derive(key)
	if err != nil {
		return err
	}
	ring, err := s.rec.open(kek)
	if err != nil {
		return ErrWrongKey
	}
	s.ring, s.kekSpec, s.kek, s.unlockKey = ring, s.rec.kek, kek, key
	s.locked, s.rec = false, nil
	return nil
}

// UnlockKey is the secret the data keys are wrapped under now: "" when
// the KEK is local (autolock off), the unlock key or passphrase otherwise.
func (s *SealedStorage) UnlockKey() string { return s.unlockKey }

// SetUnlockKey re-wraps the data keys under a KEK derived from key (a
// drawn unlock key or a passphrase), or under a new local KEK when key is
// "", then syncs; done hears the sync. Records are not rewritten: only the
// key record changes. Setting the key the storage has already is a no-op.
func (s *SealedStorage) SetUnlockKey(key string, done func(error)) {
	if s.locked {
		done(ErrLocked)
		return
	}
	if key == s.unlockKey {
		done(nil)
		return
	}
	spec, kek, err := newKEK(s.rand, key, s.opts.KDF)
	if err != nil {
		done(err)
		return
	}
	if s.kekSpec.kind == kekLocal && spec.kind != kekLocal {
		// Autolock turns on. The data key sat on this disk under a KEK
		// stored beside it, so whoever copied the disk before has it:
		// records written from now on get a new one (as SwarmKit does).
		if err := s.newDataKey(s.ring.generation); err != nil {
			done(err)
			return
		}
	}
	s.kekSpec, s.kek, s.unlockKey = spec, kek, key
	s.stats.KEKChanges++
	if err := s.writeKeyRecord(); err != nil {
		done(err)
		return
	}
	s.Sync(done)
}

// DataKeyGeneration is the cluster data-key rotation the key record last
// acted on (0: none).
func (s *SealedStorage) DataKeyGeneration() uint64 {
	if s.ring == nil {
		return 0
	}
	return s.ring.generation
}

// DataKeyIDs returns the current data key's ID and every ID still in the
// key record (ascending), for tests and status.
func (s *SealedStorage) DataKeyIDs() (current uint32, all []uint32) {
	if s.ring == nil {
		return 0, nil
	}
	return s.ring.current, s.ring.ids()
}

// RotateDataKey switches to a new data key for the cluster's rotation
// number generation, if the key record has not acted on it (or a later
// one) yet, then syncs; done hears the sync. Records written from now on
// use the new key; older keys stay until a snapshot compacts the records
// they sealed.
func (s *SealedStorage) RotateDataKey(generation uint64, done func(error)) {
	switch {
	case s.locked:
		done(ErrLocked)
		return
	case generation <= s.ring.generation:
		done(nil)
		return
	}
	if err := s.newDataKey(generation); err != nil {
		done(err)
		return
	}
	if err := s.writeKeyRecord(); err != nil {
		done(err)
		return
	}
	s.Sync(done)
}

// newDataKey draws a data key and makes it current. It fails when
// MaxDataKeys keys are still in use.
func (s *SealedStorage) newDataKey(generation uint64) error {
	if len(s.ring.keys) >= MaxDataKeys {
		if err := s.retire(); err != nil {
			return err
		}
		if len(s.ring.keys) >= MaxDataKeys {
			return ErrTooManyKeys
		}
	}
	last := s.ring.keys[len(s.ring.keys)-1].id
	var key [32]byte
	_, _ = s.rand.Read(key[:])
	s.ring.keys = append(s.ring.keys, newDataKey(last+1, key))
	s.ring.current = last + 1
	s.ring.generation = generation
	s.stats.DataKeyRotations++
	return nil
}

// Stats returns the counters.
func (s *SealedStorage) Stats() Stats { return s.stats }

func (s *SealedStorage) writeKeyRecord() error {
	var nonce [nonceSize]byte
	_, _ = s.rand.Read(nonce[:])
	s.stats.KeyRecordsWritten++
	s.keyWrites++
	return s.inner.SetMeta(MetaKey, encodeKeyRecord(&s.kekSpec, s.kek, &nonce, s.ring))
}

// KeysDurable reports whether the key record as it is now (wrapping, data
// keys) has reached the disk: a crash from now on comes back with it.
func (s *SealedStorage) KeysDurable() bool { return s.keySynced == s.keyWrites }

// ---- env.Storage

// Load returns what inner has durable, every record opened. A record that
// does not authenticate, or names a key the key record lacks, is an error
// wrapping ErrCorrupt.
func (s *SealedStorage) Load() (env.DiskState, error) {
	if s.locked {
		return env.DiskState{}, ErrLocked
	}
	st, err := s.inner.Load()
	if err != nil {
		return st, err
	}
	// The first Load learns which keys the records on disk use; later
	// ones (a manager reads its raft ID before raft loads) must not forget
	// what was staged since.
	track := !s.loaded
	s.loaded = true
	if st.Snapshot.Index > 0 {
		p := snapshotPosition(&st.Snapshot)
		data, id, err := s.open(&p, st.Snapshot.Data)
		if err != nil {
			return env.DiskState{}, err
		}
		st.Snapshot.Data = data
		if track {
			s.snapIndex, s.snapKey, s.lastIndex = st.Snapshot.Index, id, st.Snapshot.Index
		}
	}
	if len(st.Entries) > 0 {
		ents := make([]env.Entry, len(st.Entries))
		for i := range st.Entries {
			e := st.Entries[i]
			p := entryPosition(&e)
			data, id, err := s.open(&p, e.Data)
			if err != nil {
				return env.DiskState{}, err
			}
			e.Data = data
			ents[i] = e
			if track {
				s.noteEntries(e.Index, e.Index, id)
			}
		}
		st.Entries = ents
	}
	return st, nil
}

func (s *SealedStorage) open(p *position, b []byte) ([]byte, uint32, error) {
	id, err := recordKeyID(b)
	if err != nil {
		return nil, 0, fmt.Errorf("crypt: %s: %w", p, err)
	}
	k := s.ring.get(id)
	if k == nil {
		return nil, 0, fmt.Errorf("crypt: %s: %w: sealed with data key %d, which the key record does not hold", p, ErrCorrupt, id)
	}
	out, err := openRecord(k.aead, p, b)
	if err != nil {
		return nil, 0, fmt.Errorf("crypt: %s: %w", p, err)
	}
	s.stats.RecordsOpened++
	return out, id, nil
}

func (s *SealedStorage) seal(p *position, data []byte) []byte {
	var nonce [nonceSize]byte
	_, _ = s.rand.Read(nonce[:])
	k := s.ring.cur()
	s.stats.RecordsSealed++
	return sealRecord(k.aead, k.id, &nonce, p, data)
}

// Append seals the entries and stages them.
func (s *SealedStorage) Append(ents []env.Entry) error {
	if s.locked {
		return ErrLocked
	}
	if len(ents) == 0 {
		return s.inner.Append(ents)
	}
	// One buffer holds every record of the append, each sliced to its
	// own capacity.
	size := 0
	for i := range ents {
		size += Overhead + len(ents[i].Data)
	}
	buf := make([]byte, 0, size)
	k := s.ring.cur()
	out := make([]env.Entry, len(ents))
	for i := range ents {
		e := ents[i]
		p := entryPosition(&e)
		n := len(buf)
		buf = s.entries.seal(buf, s.rand, k, &p, e.Data)
		e.Data = buf[n:len(buf):len(buf)]
		out[i] = e
	}
	s.stats.RecordsSealed += uint64(len(ents))
	if err := s.inner.Append(out); err != nil {
		return err
	}
	s.noteEntries(ents[0].Index, ents[len(ents)-1].Index, s.ring.current)
	return s.retire()
}

// SetHardState stages the hard state (not sealed: three numbers).
func (s *SealedStorage) SetHardState(hs env.HardState) error {
	if s.locked {
		return ErrLocked
	}
	return s.inner.SetHardState(hs)
}

// SaveSnapshot seals the snapshot and stages it.
func (s *SealedStorage) SaveSnapshot(snap env.Snapshot) error {
	if s.locked {
		return ErrLocked
	}
	p := snapshotPosition(&snap)
	snap.Data = s.seal(&p, snap.Data)
	if err := s.inner.SaveSnapshot(snap); err != nil {
		return err
	}
	if snap.Index > s.snapIndex {
		s.snapIndex, s.snapKey = snap.Index, s.ring.current
		s.lastIndex = max(s.lastIndex, snap.Index)
	}
	return s.retire()
}

// SetMeta stages a named value. The key record's name is reserved.
func (s *SealedStorage) SetMeta(key string, value []byte) error {
	if key == MetaKey || strings.HasPrefix(key, MetaKey+"/") {
		return fmt.Errorf("%w: %q", ErrReservedMeta, key)
	}
	return s.inner.SetMeta(key, value)
}

// Sync makes everything staged durable.
func (s *SealedStorage) Sync(done func(error)) {
	w := s.keyWrites
	s.inner.Sync(func(err error) {
		if err == nil && w > s.keySynced {
			s.keySynced = w
		}
		done(err)
	})
}

// noteEntries records that entries first..last are now sealed with key,
// replacing any staged from first on (raft's log truncation).
func (s *SealedStorage) noteEntries(first, last uint64, key uint32) {
	i := len(s.runs)
	for i > 0 && s.runs[i-1].first >= first {
		i--
	}
	s.runs = s.runs[:i]
	if i == 0 || s.runs[i-1].key != key {
		s.runs = append(s.runs, keyRun{first: first, key: key})
	}
	s.lastIndex = last
}

// retire drops from the key record the data keys no live record uses: not
// the current key, not the newest snapshot's, not one that sealed an
// entry after that snapshot. It runs after a stage that may have made the
// last use of a key obsolete; the key record it writes is staged after
// that stage, so it becomes durable only once the records it no longer
// covers are gone from the disk too.
func (s *SealedStorage) retire() error {
	if len(s.ring.keys) == 1 {
		return nil
	}
	// Forget runs the snapshot covers entirely.
	drop := 0
	for drop < len(s.runs) {
		end := s.lastIndex
		if drop+1 < len(s.runs) {
			end = s.runs[drop+1].first - 1
		}
		if end > s.snapIndex {
			break
		}
		drop++
	}
	if drop > 0 {
		s.runs = append(s.runs[:0], s.runs[drop:]...)
	}
	used := func(id uint32) bool {
		if id == s.ring.current || s.snapIndex > 0 && id == s.snapKey {
			return true
		}
		for _, r := range s.runs {
			if r.key == id {
				return true
			}
		}
		return false
	}
	keep := s.ring.keys[:0:0]
	for _, k := range s.ring.keys {
		if used(k.id) {
			keep = append(keep, k)
		}
	}
	if len(keep) == len(s.ring.keys) {
		return nil
	}
	s.stats.DataKeysRetired += uint64(len(s.ring.keys) - len(keep))
	s.ring.keys = keep
	return s.writeKeyRecord()
}

// IsLocked reports whether err says that a storage is locked.
func IsLocked(err error) bool { return errors.Is(err, ErrLocked) }
