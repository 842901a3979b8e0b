package crypt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/sim"
)

// rig is one simulated node's disk under a SealedStorage.
type rig struct {
	t    *testing.T
	k    *sim.Kernel
	n    *sim.Node
	disk *sim.Disk
	s    *SealedStorage
	boot int
}

func newRig(t *testing.T, seed uint64) *rig {
	t.Helper()
	k := sim.NewKernel(seed)
	n := k.AddNode("m1")
	r := &rig{t: t, k: k, n: n, disk: sim.NewDisk(n, sim.Fixed(time.Millisecond))}
	r.s = r.open()
	return r
}

// open wraps the disk afresh, as a restarted node does.
func (r *rig) open() *SealedStorage {
	r.t.Helper()
	r.boot++
	s, err := NewSealedStorage(r.disk, r.n.Rand(fmt.Sprint("crypt/", r.boot)), Options{KDF: FastKDF})
	if err != nil {
		r.t.Fatalf("NewSealedStorage: %v", err)
	}
	return s
}

// restart crashes the node (losing what was not synced) and reopens.
func (r *rig) restart() *SealedStorage {
	r.disk.Crash()
	r.s = r.open()
	return r.s
}

// sync syncs and runs the kernel until the sync is done.
func (r *rig) sync() {
	r.t.Helper()
	done := false
	r.s.Sync(func(err error) {
		if err != nil {
			r.t.Fatalf("sync: %v", err)
		}
		done = true
	})
	r.k.RunUntil(r.k.Now()+time.Second, func() bool { return done })
	if !done {
		r.t.Fatal("sync never finished")
	}
}

// await runs the kernel until an asynchronous call answers.
func (r *rig) await(call func(done func(error))) error {
	r.t.Helper()
	var got error
	done := false
	call(func(err error) { got, done = err, true })
	r.k.RunUntil(r.k.Now()+time.Second, func() bool { return done })
	if !done {
		r.t.Fatal("call never answered")
	}
	return got
}

func (r *rig) append(from, to, term uint64) []env.Entry {
	r.t.Helper()
	var ents []env.Entry
	for i := from; i <= to; i++ {
		ents = append(ents, env.Entry{Term: term, Index: i, Data: fmt.Appendf(nil, "secret-payload-%d", i)})
	}
	if err := r.s.Append(ents); err != nil {
		r.t.Fatal(err)
	}
	return ents
}

func (r *rig) load() env.DiskState {
	r.t.Helper()
	st, err := r.s.Load()
	if err != nil {
		r.t.Fatalf("load: %v", err)
	}
	return st
}

// rawDisk is what is on the simulated disk itself, sealed.
func (r *rig) rawDisk() env.DiskState {
	st, err := r.disk.Load()
	if err != nil {
		r.t.Fatal(err)
	}
	return st
}

func entriesEqual(t *testing.T, got, want []env.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Term != w.Term || g.Index != w.Index || g.Type != w.Type || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("entry %d: got %d/%d %q, want %d/%d %q", i, g.Index, g.Term, g.Data, w.Index, w.Term, w.Data)
		}
	}
}

func TestSealedStorageRoundTrip(t *testing.T) {
	r := newRig(t, 1)
	defer r.k.Activate()()
	ents := r.append(1, 20, 1)
	snap := env.Snapshot{Index: 5, Term: 1, Conf: env.ConfState{Voters: []uint64{1, 2, 3}}, Data: []byte("secret-snapshot-state")}
	if err := r.s.SaveSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if err := r.s.SetHardState(env.HardState{Term: 1, Vote: 1, Commit: 20}); err != nil {
		t.Fatal(err)
	}
	r.sync()

	raw := r.rawDisk()
	if raw.Meta[MetaKey] == nil {
		t.Fatal("no key record on disk")
	}
	for _, e := range raw.Entries {
		if bytes.Contains(e.Data, []byte("secret")) {
			t.Fatalf("entry %d is on disk in the clear", e.Index)
		}
	}
	if bytes.Contains(raw.Snapshot.Data, []byte("secret")) {
		t.Fatal("the snapshot is on disk in the clear")
	}

	r.restart()
	if r.s.Locked() {
		t.Fatal("locked without autolock")
	}
	st := r.load()
	if !bytes.Equal(st.Snapshot.Data, snap.Data) || st.Snapshot.Index != 5 {
		t.Fatalf("snapshot %d %q", st.Snapshot.Index, st.Snapshot.Data)
	}
	entriesEqual(t, st.Entries, ents[5:])
	if st.HardState != (env.HardState{Term: 1, Vote: 1, Commit: 20}) {
		t.Fatalf("hard state %+v", st.HardState)
	}
}

// A crash before the first sync loses the key record with everything
// else; the restarted node starts a new one.
func TestFreshKeyRecordIsDurableWithTheFirstSync(t *testing.T) {
	r := newRig(t, 2)
	defer r.k.Activate()()
	r.append(1, 3, 1)
	r.restart()
	if st := r.load(); len(st.Entries) != 0 {
		t.Fatalf("%d entries survived a crash before any sync", len(st.Entries))
	}
	ents := r.append(1, 3, 1)
	r.sync()
	r.restart()
	entriesEqual(t, r.load().Entries, ents)
}

// tamperDisk hands a changed copy of its inner storage's state to Load.
type tamperDisk struct {
	env.Storage
	change func(st *env.DiskState)
}

func (d *tamperDisk) Load() (env.DiskState, error) {
	st, err := d.Storage.Load()
	if err != nil {
		return st, err
	}
	st.Entries = slices.Clone(st.Entries)
	for i := range st.Entries {
		st.Entries[i].Data = bytes.Clone(st.Entries[i].Data)
	}
	st.Snapshot.Data = bytes.Clone(st.Snapshot.Data)
	meta := make(map[string][]byte, len(st.Meta))
	for k, v := range st.Meta {
		meta[k] = bytes.Clone(v)
	}
	st.Meta = meta
	d.change(&st)
	return st, nil
}

// loadTampered reopens the rig's disk through change and loads it.
func (r *rig) loadTampered(change func(st *env.DiskState)) error {
	s, err := NewSealedStorage(&tamperDisk{Storage: r.disk, change: change}, r.n.Rand("tamper"), Options{KDF: FastKDF})
	if err != nil {
		return err
	}
	_, err = s.Load()
	return err
}

// A node whose disk was tampered with or cut refuses to start: every byte
// of every entry, of the snapshot and of the key record is checked.
func TestTamperedDiskIsRefused(t *testing.T) {
	r := newRig(t, 3)
	defer r.k.Activate()()
	r.append(1, 3, 1)
	if err := r.s.SaveSnapshot(env.Snapshot{Index: 1, Term: 1, Conf: env.ConfState{Voters: []uint64{7}}, Data: []byte("state")}); err != nil {
		t.Fatal(err)
	}
	r.sync()
	if err := r.loadTampered(func(*env.DiskState) {}); err != nil {
		t.Fatalf("untouched disk: %v", err)
	}
	raw := r.rawDisk()
	expectCorrupt := func(what string, change func(st *env.DiskState)) {
		t.Helper()
		err := r.loadTampered(change)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v; want ErrCorrupt", what, err)
		}
	}
	for i := range raw.Entries[0].Data {
		expectCorrupt(fmt.Sprintf("entry byte %d", i), func(st *env.DiskState) { st.Entries[0].Data[i] ^= 0x20 })
	}
	for n := range raw.Entries[1].Data {
		expectCorrupt(fmt.Sprintf("entry cut to %d", n), func(st *env.DiskState) { st.Entries[1].Data = st.Entries[1].Data[:n] })
	}
	for i := range raw.Snapshot.Data {
		expectCorrupt(fmt.Sprintf("snapshot byte %d", i), func(st *env.DiskState) { st.Snapshot.Data[i] ^= 0x01 })
	}
	for n := range raw.Snapshot.Data {
		expectCorrupt(fmt.Sprintf("snapshot cut to %d", n), func(st *env.DiskState) { st.Snapshot.Data = st.Snapshot.Data[:n] })
	}
	expectCorrupt("entries swapped", func(st *env.DiskState) {
		st.Entries[0].Data, st.Entries[1].Data = st.Entries[1].Data, st.Entries[0].Data
	})
	expectCorrupt("entry term changed", func(st *env.DiskState) { st.Entries[0].Term = 2 })
	expectCorrupt("snapshot membership changed", func(st *env.DiskState) { st.Snapshot.Conf.Voters = []uint64{8} })
	for i := range raw.Meta[MetaKey] {
		expectCorrupt(fmt.Sprintf("key record byte %d", i), func(st *env.DiskState) { st.Meta[MetaKey][i] ^= 0x04 })
	}
	for n := range raw.Meta[MetaKey] {
		expectCorrupt(fmt.Sprintf("key record cut to %d", n), func(st *env.DiskState) { st.Meta[MetaKey] = st.Meta[MetaKey][:n] })
	}
	err := r.loadTampered(func(st *env.DiskState) { delete(st.Meta, MetaKey) })
	if !errors.Is(err, ErrNoKeyRecord) {
		t.Fatalf("key record gone: %v; want ErrNoKeyRecord", err)
	}
	if msg := fmt.Sprint(r.loadTampered(func(st *env.DiskState) { st.Entries[0].Data[40] ^= 1 })); !strings.Contains(msg, "entry 2 (term 1)") {
		t.Fatalf("the error does not say which record: %s", msg)
	}
}

func TestAutolockUnlockKey(t *testing.T) {
	r := newRig(t, 4)
	defer r.k.Activate()()
	ents := r.append(1, 10, 1)
	r.sync()
	key := NewUnlockKey(r.n.Rand("key"))
	if err := r.await(func(done func(error)) { r.s.SetUnlockKey(key, done) }); err != nil {
		t.Fatal(err)
	}
	if r.s.UnlockKey() != key {
		t.Fatal("UnlockKey does not say the key")
	}
	if !r.s.KeysDurable() {
		t.Fatal("the new wrapping is not durable after its sync")
	}
	// Turning autolock on retires the data key that sat under a KEK in
	// the clear: new records use a new one.
	if cur, all := r.s.DataKeyIDs(); cur != 2 || !slices.Equal(all, []uint32{1, 2}) {
		t.Fatalf("keys after autolock on: current %d of %v", cur, all)
	}
	if bytes.Contains(r.rawDisk().Meta[MetaKey], []byte(key)) {
		t.Fatal("the unlock key is on disk")
	}
	// The running storage goes on: records and key are unchanged.
	ents = append(ents, r.append(11, 12, 1)...)
	r.sync()

	r.restart()
	if !r.s.Locked() {
		t.Fatal("not locked after a restart with autolock")
	}
	if _, err := r.s.Load(); !errors.Is(err, ErrLocked) {
		t.Fatalf("load while locked: %v", err)
	}
	if err := r.s.Append([]env.Entry{{Term: 1, Index: 13}}); !errors.Is(err, ErrLocked) {
		t.Fatalf("append while locked: %v", err)
	}
	for _, wrong := range []string{NewUnlockKey(r.n.Rand("other")), "", "not a key at all", key[:len(key)-1]} {
		if err := r.s.Unlock(wrong); !errors.Is(err, ErrWrongKey) {
			t.Fatalf("Unlock(%q): %v; want ErrWrongKey", wrong, err)
		}
		if !r.s.Locked() {
			t.Fatal("a wrong key unlocked")
		}
	}
	if err := r.s.Unlock(key); err != nil {
		t.Fatal(err)
	}
	if err := r.s.Unlock(key); !errors.Is(err, ErrNotLocked) {
		t.Fatalf("second unlock: %v", err)
	}
	entriesEqual(t, r.load().Entries, ents)

	// Rotate the unlock key: the old one stops working.
	key2 := NewUnlockKey(r.n.Rand("key2"))
	if err := r.await(func(done func(error)) { r.s.SetUnlockKey(key2, done) }); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if err := r.s.Unlock(key); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("old key after rotation: %v", err)
	}
	if err := r.s.Unlock(key2); err != nil {
		t.Fatal(err)
	}
	entriesEqual(t, r.load().Entries, ents)

	// Autolock off: back to a local KEK, no key needed.
	if err := r.await(func(done func(error)) { r.s.SetUnlockKey("", done) }); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if r.s.Locked() {
		t.Fatal("locked after autolock was turned off")
	}
	entriesEqual(t, r.load().Entries, ents)
}

func TestAutolockPassphrase(t *testing.T) {
	r := newRig(t, 5)
	defer r.k.Activate()()
	ents := r.append(1, 4, 2)
	if err := r.await(func(done func(error)) { r.s.SetUnlockKey("short", done) }); !errors.Is(err, ErrBadPassphrase) {
		t.Fatalf("short passphrase: %v", err)
	}
	const pass = "correct horse battery staple"
	if err := r.await(func(done func(error)) { r.s.SetUnlockKey(pass, done) }); err != nil {
		t.Fatal(err)
	}
	r.restart()
	if !r.s.Locked() {
		t.Fatal("not locked")
	}
	if err := r.s.Unlock("correct horse battery stapler"); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if err := r.s.Unlock(pass); err != nil {
		t.Fatal(err)
	}
	entriesEqual(t, r.load().Entries, ents)
}

// A crash between staging a new wrapping and its sync leaves the old one:
// the disk is always openable with one of the two.
func TestCrashDuringRewrapKeepsTheOldWrapping(t *testing.T) {
	r := newRig(t, 6)
	defer r.k.Activate()()
	ents := r.append(1, 2, 1)
	r.sync()
	r.s.SetUnlockKey(NewUnlockKey(r.n.Rand("k")), func(error) {})
	if r.s.KeysDurable() {
		t.Fatal("durable before its sync")
	}
	r.restart() // before the sync completed
	if r.s.Locked() {
		t.Fatal("locked by a wrapping that never became durable")
	}
	entriesEqual(t, r.load().Entries, ents)
}

// Rotation: new records use the new key, old ones stay readable, and the
// old key leaves the key record once a snapshot compacted its records.
func TestDataKeyRotation(t *testing.T) {
	r := newRig(t, 7)
	defer r.k.Activate()()
	ents := r.append(1, 10, 1)
	r.sync()
	if err := r.await(func(done func(error)) { r.s.RotateDataKey(1, done) }); err != nil {
		t.Fatal(err)
	}
	if cur, all := r.s.DataKeyIDs(); cur != 2 || !slices.Equal(all, []uint32{1, 2}) {
		t.Fatalf("keys after rotation: current %d of %v", cur, all)
	}
	// A rotation already acted on is not done twice.
	if err := r.await(func(done func(error)) { r.s.RotateDataKey(1, done) }); err != nil {
		t.Fatal(err)
	}
	if cur, _ := r.s.DataKeyIDs(); cur != 2 {
		t.Fatalf("rotated twice for one generation: key %d", cur)
	}
	ents = append(ents, r.append(11, 20, 1)...)
	r.sync()
	for _, e := range r.rawDisk().Entries {
		id, _ := recordKeyID(e.Data)
		if want := uint32(1 + e.Index/11); id != want {
			t.Fatalf("entry %d sealed with key %d, want %d", e.Index, id, want)
		}
	}
	r.restart()
	entriesEqual(t, r.load().Entries, ents)
	if r.s.DataKeyGeneration() != 1 {
		t.Fatalf("generation %d after restart", r.s.DataKeyGeneration())
	}

	// A snapshot that leaves a key-1 entry after it keeps key 1.
	if err := r.s.SaveSnapshot(env.Snapshot{Index: 9, Term: 1, Data: []byte("s9")}); err != nil {
		t.Fatal(err)
	}
	r.sync()
	if _, all := r.s.DataKeyIDs(); !slices.Equal(all, []uint32{1, 2}) {
		t.Fatalf("key 1 retired while entry 10 still uses it: %v", all)
	}
	// The next snapshot compacts the last of them: key 1 goes.
	if err := r.s.SaveSnapshot(env.Snapshot{Index: 12, Term: 1, Data: []byte("s12")}); err != nil {
		t.Fatal(err)
	}
	r.sync()
	if _, all := r.s.DataKeyIDs(); !slices.Equal(all, []uint32{2}) {
		t.Fatalf("keys after the compacting snapshot: %v", all)
	}
	if got := r.s.Stats().DataKeysRetired; got != 1 {
		t.Fatalf("DataKeysRetired %d", got)
	}
	r.restart()
	st := r.load()
	if string(st.Snapshot.Data) != "s12" {
		t.Fatalf("snapshot %q", st.Snapshot.Data)
	}
	entriesEqual(t, st.Entries, ents[12:])
	if _, all := r.s.DataKeyIDs(); !slices.Equal(all, []uint32{2}) {
		t.Fatalf("keys on disk after restart: %v", all)
	}
}

// A rotation whose key record never became durable is forgotten with the
// records it sealed; the disk stays readable.
func TestCrashDuringRotation(t *testing.T) {
	r := newRig(t, 8)
	defer r.k.Activate()()
	ents := r.append(1, 5, 1)
	r.sync()
	r.s.RotateDataKey(1, func(error) {})
	r.append(6, 8, 1)
	r.restart()
	entriesEqual(t, r.load().Entries, ents)
	if cur, all := r.s.DataKeyIDs(); cur != 1 || len(all) != 1 {
		t.Fatalf("keys %d of %v", cur, all)
	}
}

// Raft truncating a log suffix sealed with an old key frees that key once
// the snapshot covers the rest.
func TestTruncationAcrossKeys(t *testing.T) {
	r := newRig(t, 9)
	defer r.k.Activate()()
	r.append(1, 6, 1)
	if err := r.await(func(done func(error)) { r.s.RotateDataKey(1, done) }); err != nil {
		t.Fatal(err)
	}
	// A new leader replaces entries 4..6.
	ents := r.append(4, 7, 2)
	if err := r.s.SaveSnapshot(env.Snapshot{Index: 3, Term: 1, Data: []byte("s3")}); err != nil {
		t.Fatal(err)
	}
	r.sync()
	if _, all := r.s.DataKeyIDs(); !slices.Equal(all, []uint32{2}) {
		t.Fatalf("keys: %v", all)
	}
	r.restart()
	entriesEqual(t, r.load().Entries, ents)
}

func TestTooManyDataKeys(t *testing.T) {
	r := newRig(t, 10)
	defer r.k.Activate()()
	for g := uint64(1); g < MaxDataKeys; g++ {
		r.append(g, g, 1)
		if err := r.await(func(done func(error)) { r.s.RotateDataKey(g, done) }); err != nil {
			t.Fatalf("rotation %d: %v", g, err)
		}
	}
	r.append(MaxDataKeys, MaxDataKeys, 1)
	if err := r.await(func(done func(error)) { r.s.RotateDataKey(MaxDataKeys, done) }); !errors.Is(err, ErrTooManyKeys) {
		t.Fatalf("rotation past the bound: %v", err)
	}
	if err := r.s.SaveSnapshot(env.Snapshot{Index: MaxDataKeys, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.await(func(done func(error)) { r.s.RotateDataKey(MaxDataKeys, done) }); err != nil {
		t.Fatalf("rotation after a snapshot: %v", err)
	}
	if _, all := r.s.DataKeyIDs(); len(all) != 2 {
		t.Fatalf("keys: %v", all)
	}
}

func TestReservedMeta(t *testing.T) {
	r := newRig(t, 11)
	defer r.k.Activate()()
	if err := r.s.SetMeta(MetaKey, []byte("x")); !errors.Is(err, ErrReservedMeta) {
		t.Fatalf("SetMeta(%s): %v", MetaKey, err)
	}
	if err := r.s.SetMeta("raft/id", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// One seed, one disk: sealing draws only from the node's seeded stream.
func TestDeterministicDisk(t *testing.T) {
	image := func(seed uint64) []byte {
		r := newRig(t, seed)
		defer r.k.Activate()()
		r.append(1, 5, 1)
		r.await(func(done func(error)) { r.s.RotateDataKey(1, done) })
		r.append(6, 9, 1)
		r.s.SaveSnapshot(env.Snapshot{Index: 2, Term: 1, Data: []byte("x")})
		r.await(func(done func(error)) { r.s.SetUnlockKey(NewUnlockKey(r.n.Rand("k")), done) })
		r.sync()
		raw := r.rawDisk()
		var b []byte
		b = append(b, raw.Meta[MetaKey]...)
		b = append(b, raw.Snapshot.Data...)
		for _, e := range raw.Entries {
			b = append(b, e.Data...)
		}
		return b
	}
	a, b, c := image(1), image(1), image(2)
	if !bytes.Equal(a, b) {
		t.Fatal("one seed gave two disks")
	}
	if bytes.Equal(a, c) {
		t.Fatal("two seeds gave one disk")
	}
}

func TestCheckUnlockKey(t *testing.T) {
	for s, ok := range map[string]bool{
		NewUnlockKey(&fixedRand{}):             true,
		"a sixteen-byte passphrase":            true,
		"short":                                false,
		UnlockKeyPrefix + "not-base64-at-all!": false,
	} {
		if err := CheckUnlockKey(s); (err == nil) != ok {
			t.Errorf("CheckUnlockKey(%q) = %v", s, err)
		}
	}
}

func BenchmarkSealEntry(b *testing.B) {
	k := testKey(1, 1)
	data := make([]byte, 256)
	var nonce [nonceSize]byte
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := range b.N {
		p := entryPosition(&env.Entry{Term: 1, Index: uint64(i)})
		sealRecord(k.aead, k.id, &nonce, &p, data)
	}
}

func BenchmarkOpenEntry(b *testing.B) {
	k := testKey(1, 1)
	p := entryPosition(&env.Entry{Term: 1, Index: 1})
	rec := sealRecord(k.aead, k.id, testNonce(1), &p, make([]byte, 256))
	b.ReportAllocs()
	b.SetBytes(256)
	for range b.N {
		if _, err := openRecord(k.aead, &p, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSealEntries seals entries as Append does: one subkey per draw,
// into one buffer.
func BenchmarkSealEntries(b *testing.B) {
	k := testKey(1, 1)
	data := make([]byte, 256)
	var s entrySealer
	rnd := &fixedRand{}
	buf := make([]byte, 0, Overhead+len(data))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for i := range b.N {
		p := entryPosition(&env.Entry{Term: 1, Index: uint64(i)})
		s.seal(buf[:0], rnd, k, &p, data)
	}
}
