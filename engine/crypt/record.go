package crypt

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/swarmsim/swarmsim/engine/env"
)

// A sealed record replaces an entry's or a snapshot's Data on disk:
//
//	0      version (1)
//	1:5    key ID, big-endian: which data key sealed it
//	5:29   nonce (XChaCha20-Poly1305, 24 bytes)
//	29:    ciphertext, then the 16-byte Poly1305 tag
//
// The additional data is the record's first 5 bytes and its position (see
// position), so the header cannot be changed and the record cannot be
// moved to another index, term, entry type or snapshot without failing
// authentication.
const (
	recordVersion = 1
	nonceSize     = chacha20poly1305.NonceSizeX
	headerSize    = 1 + 4 + nonceSize
	tagSize       = chacha20poly1305.Overhead
	// Overhead is how many bytes sealing adds to a record.
	Overhead = headerSize + tagSize
)

// Record kinds, in the additional data.
const (
	kindEntry    byte = 'E'
	kindSnapshot byte = 'S'
)

// position is where raft put a record.
type position struct {
	kind        byte
	term, index uint64
	entryType   byte
	conf        [sha256.Size]byte // a snapshot's membership, digested
}

func entryPosition(e *env.Entry) position {
	return position{kind: kindEntry, term: e.Term, index: e.Index, entryType: byte(e.Type)}
}

func snapshotPosition(s *env.Snapshot) position {
	return position{kind: kindSnapshot, term: s.Term, index: s.Index, conf: confDigest(&s.Conf)}
}

func (p *position) String() string {
	if p.kind == kindSnapshot {
		return fmt.Sprintf("snapshot at %d (term %d)", p.index, p.term)
	}
	return fmt.Sprintf("entry %d (term %d)", p.index, p.term)
}

// aadSize: header prefix (5), kind, term, index, entry type, conf digest.
const aadSize = 5 + 1 + 8 + 8 + 1 + sha256.Size

func (p *position) aad(dst *[aadSize]byte, hdr []byte) []byte {
	b := dst[:0]
	b = append(b, hdr[:5]...)
	b = append(b, p.kind)
	b = binary.BigEndian.AppendUint64(b, p.term)
	b = binary.BigEndian.AppendUint64(b, p.index)
	b = append(b, p.entryType)
	b = append(b, p.conf[:]...)
	return b
}

// confDigest is a digest of a snapshot's membership, so that the voters
// stored next to a sealed snapshot cannot be changed either.
func confDigest(c *env.ConfState) [sha256.Size]byte {
	var b []byte
	for _, l := range [][]uint64{c.Voters, c.Learners, c.VotersOutgoing, c.LearnersNext} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(l)))
		for _, id := range l {
			b = binary.BigEndian.AppendUint64(b, id)
		}
	}
	if c.AutoLeave {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return sha256.Sum256(b)
}

// sealRecord seals plaintext for position p with the data key aead (whose
// ID is keyID). nonce holds 24 random bytes; the record's term and index
// are folded into them, so that even a random stream that repeats (a
// seeded one, replayed) gives distinct nonces to distinct positions.
func sealRecord(aead cipher.AEAD, keyID uint32, nonce *[nonceSize]byte, p *position, plaintext []byte) []byte {
	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	out[0] = recordVersion
	binary.BigEndian.PutUint32(out[1:5], keyID)
	n := out[5:headerSize]
	copy(n, nonce[:])
	n[0] ^= p.kind
	for i := range 8 {
		n[8+i] ^= byte(p.term >> (56 - 8*i))
		n[16+i] ^= byte(p.index >> (56 - 8*i))
	}
	var ad [aadSize]byte
	return aead.Seal(out, n, plaintext, p.aad(&ad, out))
}

// entrySealer seals raft entries as sealRecord does, without computing
// XChaCha20's subkey (HChaCha20 of the key and the nonce's first 16
// bytes) for every record. XChaCha20-Poly1305 under nonce n is
// ChaCha20-Poly1305 under the subkey HChaCha20(key, n[0:16]) with the
// 12-byte nonce 0000 || n[16:24]. The sealer draws the first 16 bytes once
// (the term and kind folded in, as sealRecord folds them) and gives each
// entry the remaining 8 as its index, so the subkey is computed once per
// draw. The records are byte for byte XChaCha20-Poly1305 records with a
// 24-byte nonce, which openRecord (and every earlier version) opens.
//
// Nonces never repeat: within one draw the indexes sealed strictly
// increase (an entry at or below the last one sealed, as after raft's log
// truncation, or another term or data key, draws again), and draws are
// random 16 bytes. Distinct positions get distinct nonces even from a
// random stream that repeats, as with sealRecord: the term and kind are in
// the first 16 bytes, the index in the last 8.
type entrySealer struct {
	key  *dataKey // the data key of the current draw (nil: none yet)
	term uint64
	next uint64 // the lowest index the current draw may still seal

	nonce [nonceSize]byte // drawn prefix; the last 8 bytes are per record
	aead  cipher.AEAD     // ChaCha20-Poly1305 under HChaCha20(key, nonce[0:16])

	// Scratch kept here rather than on the stack, where passing it to
	// the AEAD would move it to the heap on every record.
	n12 [chacha20poly1305.NonceSize]byte
	ad  [aadSize]byte
}

// seal appends to dst the record sealing plaintext for the entry position
// p with data key k, drawing a new nonce prefix from rnd when it must.
func (s *entrySealer) seal(dst []byte, rnd env.Rand, k *dataKey, p *position, plaintext []byte) []byte {
	if s.key != k || s.term != p.term || p.index < s.next {
		_, _ = rnd.Read(s.nonce[:16])
		s.nonce[0] ^= p.kind
		for i := range 8 {
			s.nonce[8+i] ^= byte(p.term >> (56 - 8*i))
		}
		sub, err := chacha20.HChaCha20(k.key[:], s.nonce[:16])
		if err != nil {
			panic(err) // only on wrong key or nonce sizes, which the types rule out
		}
		a, err := chacha20poly1305.New(sub)
		if err != nil {
			panic(err)
		}
		s.key, s.term, s.aead = k, p.term, a
	}
	s.next = p.index + 1
	binary.BigEndian.PutUint64(s.nonce[16:], p.index)
	start := len(dst)
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint32(dst, k.id)
	dst = append(dst, s.nonce[:]...)
	copy(s.n12[4:], s.nonce[16:])
	return s.aead.Seal(dst, s.n12[:], plaintext, p.aad(&s.ad, dst[start:]))
}

// recordKeyID checks a record's framing and returns the ID of the key
// that sealed it.
func recordKeyID(b []byte) (uint32, error) {
	switch {
	case len(b) < Overhead:
		return 0, fmt.Errorf("%w: %d bytes, shorter than the %d of an empty record", ErrCorrupt, len(b), Overhead)
	case b[0] != recordVersion:
		return 0, fmt.Errorf("%w: unknown record version %d", ErrCorrupt, b[0])
	}
	return binary.BigEndian.Uint32(b[1:5]), nil
}

// openRecord authenticates and decrypts a record sealed for position p.
// The plaintext is a new slice; b is not changed.
func openRecord(aead cipher.AEAD, p *position, b []byte) ([]byte, error) {
	if _, err := recordKeyID(b); err != nil {
		return nil, err
	}
	var ad [aadSize]byte
	out, err := aead.Open(make([]byte, 0, len(b)-Overhead), b[5:headerSize], b[headerSize:], p.aad(&ad, b))
	if err != nil {
		return nil, fmt.Errorf("%w: it does not authenticate", ErrCorrupt)
	}
	if len(out) == 0 {
		return nil, nil // as raft wrote it: an empty entry has no data
	}
	return out, nil
}
