package crypt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

// testKey is a fixed data key for record tests.
func testKey(id uint32, fill byte) *dataKey {
	var k [32]byte
	for i := range k {
		k[i] = fill + byte(i)
	}
	return newDataKey(id, k)
}

func testNonce(fill byte) *[nonceSize]byte {
	var n [nonceSize]byte
	for i := range n {
		n[i] = fill ^ byte(i*7)
	}
	return &n
}

func TestRecordRoundTrip(t *testing.T) {
	k := testKey(3, 1)
	for _, size := range []int{0, 1, 15, 16, 17, 1000, 70000} {
		data := bytes.Repeat([]byte{0xab}, size)
		for _, p := range []position{
			entryPosition(&env.Entry{Term: 2, Index: 9, Type: env.EntryNormal}),
			entryPosition(&env.Entry{Term: 1, Index: 1, Type: env.EntryConfChangeV2}),
			snapshotPosition(&env.Snapshot{Index: 100, Term: 4, Conf: env.ConfState{Voters: []uint64{1, 2, 3}}}),
		} {
			rec := sealRecord(k.aead, k.id, testNonce(5), &p, data)
			if len(rec) != size+Overhead {
				t.Fatalf("%s, %d bytes: sealed to %d bytes, want %d", &p, size, len(rec), size+Overhead)
			}
			if size >= 8 && bytes.Contains(rec, data[:8]) {
				t.Fatalf("%s: the plaintext shows in the record", &p)
			}
			id, err := recordKeyID(rec)
			if err != nil || id != 3 {
				t.Fatalf("key ID %d, %v; want 3", id, err)
			}
			got, err := openRecord(k.aead, &p, rec)
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", &p, size, err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("%s, %d bytes: opened to other bytes", &p, size)
			}
		}
	}
}

// Every single-byte change, every truncation and every extension of a
// sealed record is detected: nothing of a damaged record is ever handed
// back.
func TestRecordTamperAndTruncateAtEveryByte(t *testing.T) {
	k := testKey(1, 9)
	p := entryPosition(&env.Entry{Term: 3, Index: 42})
	rec := sealRecord(k.aead, k.id, testNonce(1), &p, []byte("store transaction: create secret db-password"))
	for i := range rec {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(rec)
			bad[i] ^= flip
			if got, err := openRecord(k.aead, &p, bad); !errors.Is(err, ErrCorrupt) || got != nil {
				t.Fatalf("byte %d ^ %#x: got %q, %v; want ErrCorrupt", i, flip, got, err)
			}
		}
	}
	for n := range len(rec) {
		if got, err := openRecord(k.aead, &p, rec[:n]); !errors.Is(err, ErrCorrupt) || got != nil {
			t.Fatalf("cut to %d bytes: got %q, %v; want ErrCorrupt", n, got, err)
		}
	}
	if _, err := openRecord(k.aead, &p, append(bytes.Clone(rec), 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one byte appended: %v; want ErrCorrupt", err)
	}
}

// A record opens only where it was sealed: moved to another index, term,
// entry type or snapshot membership, it fails.
func TestRecordBoundToItsPosition(t *testing.T) {
	k := testKey(1, 2)
	e := env.Entry{Term: 3, Index: 42, Type: env.EntryNormal}
	p := entryPosition(&e)
	rec := sealRecord(k.aead, k.id, testNonce(3), &p, []byte("x"))
	for name, q := range map[string]env.Entry{
		"index": {Term: 3, Index: 43},
		"term":  {Term: 4, Index: 42},
		"type":  {Term: 3, Index: 42, Type: env.EntryConfChange},
	} {
		pq := entryPosition(&q)
		if _, err := openRecord(k.aead, &pq, rec); !errors.Is(err, ErrCorrupt) {
			t.Errorf("moved (%s): %v; want ErrCorrupt", name, err)
		}
	}
	s := env.Snapshot{Index: 42, Term: 3, Conf: env.ConfState{Voters: []uint64{1, 2, 3}}}
	ps := snapshotPosition(&s)
	if _, err := openRecord(k.aead, &ps, rec); !errors.Is(err, ErrCorrupt) {
		t.Errorf("an entry opened as a snapshot: %v", err)
	}
	srec := sealRecord(k.aead, k.id, testNonce(3), &ps, []byte("state"))
	s2 := s
	s2.Conf.Voters = []uint64{1, 2, 4}
	ps2 := snapshotPosition(&s2)
	if _, err := openRecord(k.aead, &ps2, srec); !errors.Is(err, ErrCorrupt) {
		t.Errorf("snapshot membership changed: %v; want ErrCorrupt", err)
	}
	other := testKey(1, 3)
	if _, err := openRecord(other.aead, &ps, srec); !errors.Is(err, ErrCorrupt) {
		t.Errorf("another key with the same ID: %v; want ErrCorrupt", err)
	}
}

// A seeded random stream that repeats still gives distinct positions
// distinct nonces.
func TestNonceFoldsPosition(t *testing.T) {
	k := testKey(1, 4)
	seen := map[string]bool{}
	for i := uint64(1); i <= 100; i++ {
		p := entryPosition(&env.Entry{Term: 1 + i%3, Index: i})
		rec := sealRecord(k.aead, k.id, testNonce(0), &p, nil)
		n := string(rec[5:headerSize])
		if seen[n] {
			t.Fatalf("nonce repeated at entry %d", i)
		}
		seen[n] = true
	}
}

// FuzzOpenRecord feeds the sealed-record decoder arbitrary bytes: it
// never panics, and whatever it accepts is exactly what sealing its
// plaintext under the record's own nonce gives (no malleability).
func FuzzOpenRecord(f *testing.F) {
	k := testKey(7, 11)
	p := entryPosition(&env.Entry{Term: 2, Index: 5})
	for _, d := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte("swarm"), 40)} {
		rec := sealRecord(k.aead, k.id, testNonce(byte(len(d))), &p, d)
		f.Add(rec)
		f.Add(rec[:len(rec)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{recordVersion, 0, 0, 0, 7})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, idErr := recordKeyID(b)
		got, err := openRecord(k.aead, &p, b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			if got != nil {
				t.Fatal("data returned with an error")
			}
			return
		}
		if idErr != nil || id != k.id {
			t.Fatalf("opened a record whose header says key %d (%v)", id, idErr)
		}
		var ad [aadSize]byte
		again := k.aead.Seal(bytes.Clone(b[:headerSize]), b[5:headerSize], got, p.aad(&ad, b))
		if !bytes.Equal(again, b) {
			t.Fatal("accepted a record that sealing its plaintext does not give")
		}
	})
}

// FuzzKeyRecord feeds the key-record decoder arbitrary bytes: parsing
// never panics, never accepts absurd argon2 costs, and a record that
// opens under its local KEK decodes to a usable key ring.
func FuzzKeyRecord(f *testing.F) {
	ring := &keyring{current: 2, generation: 5, keys: []*dataKey{testKey(1, 1), testKey(2, 2)}}
	local, _, _ := newKEK(&fixedRand{}, "", FastKDF)
	f.Add(encodeKeyRecord(&local, local.local, testNonce(1), ring))
	unlock, kek, _ := newKEK(&fixedRand{}, NewUnlockKey(&fixedRand{b: 9}), FastKDF)
	f.Add(encodeKeyRecord(&unlock, kek, testNonce(2), ring))
	pass, kek2, _ := newKEK(&fixedRand{}, "correct horse battery staple", FastKDF)
	f.Add(encodeKeyRecord(&pass, kek2, testNonce(3), ring))
	f.Add([]byte("SWKR"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseKeyRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if rec.kek.kind == kekPassphrase && rec.kek.kdf.check() != nil {
			t.Fatal("accepted out-of-bounds argon2 costs")
		}
		if rec.kek.kind != kekLocal {
			return
		}
		r, err := rec.open(rec.kek.local)
		if err != nil {
			return
		}
		if r.cur() == nil || len(r.keys) == 0 || len(r.keys) > MaxDataKeys {
			t.Fatal("decoded an unusable key ring")
		}
	})
}

// fixedRand is a deterministic env.Rand for tests that need no kernel.
type fixedRand struct{ b byte }

func (r *fixedRand) Int63n(n int64) int64 { r.b++; return int64(r.b) % n }
func (r *fixedRand) Float64() float64     { r.b++; return float64(r.b) / 256 }
func (r *fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		r.b++
		p[i] = r.b * 31
	}
	return len(p), nil
}

// The entry sealer writes exactly the records sealRecord writes for the
// same nonce (first 16 bytes drawn, last 8 zero before the fold), so
// every decoder of the record format opens them.
func TestEntrySealerIsXChaCha20Poly1305(t *testing.T) {
	k := testKey(2, 9)
	var s entrySealer
	rnd := &fixedRand{}
	for _, e := range []env.Entry{{Term: 1, Index: 1}, {Term: 1, Index: 2, Data: []byte("a")}, {Term: 1, Index: 3, Data: bytes.Repeat([]byte("b"), 300)}, {Term: 2, Index: 4, Type: 1, Data: []byte("c")}} {
		p := entryPosition(&e)
		rec := s.seal([]byte("prefix"), rnd, k, &p, e.Data)
		if string(rec[:6]) != "prefix" {
			t.Fatal("seal did not append to dst")
		}
		rec = rec[6:]
		var nonce [nonceSize]byte
		copy(nonce[:16], rec[5:21])
		nonce[0] ^= p.kind
		for i := range 8 {
			nonce[8+i] ^= byte(p.term >> (56 - 8*i))
		}
		if want := sealRecord(k.aead, k.id, &nonce, &p, e.Data); !bytes.Equal(rec, want) {
			t.Fatalf("entry %d: sealer and sealRecord differ", e.Index)
		}
		got, err := openRecord(k.aead, &p, rec)
		if err != nil || !bytes.Equal(got, e.Data) {
			t.Fatalf("entry %d: %q, %v", e.Index, got, err)
		}
	}
}

// The entry sealer never gives two records one nonce: not after raft
// truncates the log and seals the same indexes again, not across terms
// or data keys, and not when its random stream repeats.
func TestEntrySealerNeverRepeatsANonce(t *testing.T) {
	k1, k2 := testKey(1, 1), testKey(2, 2)
	seen := map[string]bool{}
	var s entrySealer
	rnd := &fixedRand{}
	seal := func(k *dataKey, term, index uint64) {
		t.Helper()
		p := entryPosition(&env.Entry{Term: term, Index: index})
		rec := s.seal(nil, rnd, k, &p, nil)
		n := string(rec[1:headerSize]) // key ID and nonce
		if seen[n] {
			t.Fatalf("nonce repeated at key %d term %d index %d", k.id, term, index)
		}
		seen[n] = true
	}
	for i := uint64(1); i <= 10; i++ {
		seal(k1, 1, i)
	}
	for i := uint64(6); i <= 12; i++ { // truncated at 6, same term
		seal(k1, 1, i)
	}
	for i := uint64(12); i <= 20; i++ {
		seal(k1, 2, i)
	}
	for i := uint64(21); i <= 25; i++ {
		seal(k2, 2, i)
	}
	// A stream that repeats from the start: positions not sealed yet
	// still get fresh nonces.
	s, rnd = entrySealer{}, &fixedRand{}
	for i := uint64(26); i <= 30; i++ {
		seal(k1, 1, i)
	}
}
