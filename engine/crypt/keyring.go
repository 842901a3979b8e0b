package crypt

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// MetaKey is the meta key under which the key record is stored. Callers
// may not write it.
const MetaKey = "crypt/keys"

// MaxDataKeys bounds the data keys a key record holds: the current one and
// older ones that records on disk still use.
const MaxDataKeys = 16

// The key record (meta MetaKey):
//
//	0:4    magic "SWKR"
//	4      version (1)
//	5      KEK kind: 1 local, 2 unlock key, 3 passphrase
//	       local:      32-byte KEK, in the clear
//	       unlock key: 16-byte salt
//	       passphrase: time u32, memory KiB u32, threads u8, 16-byte salt
//	...    24-byte nonce
//	...    the sealed body and its tag
//
// The body, sealed with the KEK (XChaCha20-Poly1305; additional data:
// every byte before the nonce):
//
//	0:4    current key ID
//	4:12   generation: the cluster's data-key rotation this ring acted on
//	12:14  number of keys n
//	...    n × (key ID u32, key 32 bytes), IDs ascending
//
// Integers are big-endian.
var keyRecordMagic = []byte("SWKR")

const keyRecordVersion = 1

// dataKey is one DEK and its cipher.
type dataKey struct {
	id   uint32
	key  [32]byte
	aead cipher.AEAD
}

func newDataKey(id uint32, key [32]byte) *dataKey {
	a, err := chacha20poly1305.NewX(key[:])
	if err != nil {
		panic(err) // only on a wrong key size, which the type rules out
	}
	return &dataKey{id: id, key: key, aead: a}
}

// keyring is the set of data keys.
type keyring struct {
	current    uint32
	generation uint64
	keys       []*dataKey // ascending IDs
}

func (k *keyring) get(id uint32) *dataKey {
	for _, d := range k.keys {
		if d.id == id {
			return d
		}
	}
	return nil
}

func (k *keyring) cur() *dataKey { return k.get(k.current) }

func (k *keyring) ids() []uint32 {
	out := make([]uint32, len(k.keys))
	for i, d := range k.keys {
		out[i] = d.id
	}
	return out
}

func (k *keyring) encode() []byte {
	b := make([]byte, 0, 14+36*len(k.keys))
	b = binary.BigEndian.AppendUint32(b, k.current)
	b = binary.BigEndian.AppendUint64(b, k.generation)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.keys)))
	for _, d := range k.keys {
		b = binary.BigEndian.AppendUint32(b, d.id)
		b = append(b, d.key[:]...)
	}
	return b
}

func decodeKeyring(b []byte) (*keyring, error) {
	if len(b) < 14 {
		return nil, fmt.Errorf("%w: key ring of %d bytes", ErrCorrupt, len(b))
	}
	k := &keyring{current: binary.BigEndian.Uint32(b), generation: binary.BigEndian.Uint64(b[4:])}
	n := int(binary.BigEndian.Uint16(b[12:]))
	b = b[14:]
	if n == 0 || n > MaxDataKeys || len(b) != 36*n {
		return nil, fmt.Errorf("%w: key ring of %d keys in %d bytes", ErrCorrupt, n, len(b))
	}
	for i := range n {
		id := binary.BigEndian.Uint32(b)
		if id == 0 || i > 0 && id <= k.keys[i-1].id {
			return nil, fmt.Errorf("%w: key ring IDs out of order", ErrCorrupt)
		}
		var key [32]byte
		copy(key[:], b[4:36])
		k.keys = append(k.keys, newDataKey(id, key))
		b = b[36:]
	}
	if k.cur() == nil {
		return nil, fmt.Errorf("%w: key ring's current key %d is missing", ErrCorrupt, k.current)
	}
	return k, nil
}

// keyRecord is a parsed key record, its body still sealed.
type keyRecord struct {
	kek    kekSpec
	header []byte // every byte before the nonce: the additional data
	nonce  []byte
	sealed []byte
}

// parseKeyRecord checks a key record's framing. It needs no key.
func parseKeyRecord(b []byte) (*keyRecord, error) {
	bad := func(what string) (*keyRecord, error) {
		return nil, fmt.Errorf("%w: key record: %s", ErrCorrupt, what)
	}
	if len(b) < 6 || !bytes.Equal(b[:4], keyRecordMagic) {
		return bad("no magic")
	}
	if b[4] != keyRecordVersion {
		return bad(fmt.Sprintf("unknown version %d", b[4]))
	}
	r := &keyRecord{}
	r.kek.kind = b[5]
	p := b[6:]
	switch r.kek.kind {
	case kekLocal:
		if len(p) < 32 {
			return bad("short")
		}
		copy(r.kek.local[:], p)
		p = p[32:]
	case kekUnlockKey:
		if len(p) < saltSize {
			return bad("short")
		}
		copy(r.kek.salt[:], p)
		p = p[saltSize:]
	case kekPassphrase:
		if len(p) < 9+saltSize {
			return bad("short")
		}
		r.kek.kdf = KDFParams{Time: binary.BigEndian.Uint32(p), MemoryKiB: binary.BigEndian.Uint32(p[4:]), Threads: p[8]}
		if err := r.kek.kdf.check(); err != nil {
			return nil, fmt.Errorf("%w: key record: %v", ErrCorrupt, err)
		}
		copy(r.kek.salt[:], p[9:])
		p = p[9+saltSize:]
	default:
		return bad(fmt.Sprintf("unknown key-encryption kind %d", r.kek.kind))
	}
	if len(p) < nonceSize+tagSize {
		return bad("short")
	}
	r.header = b[:len(b)-len(p)]
	r.nonce = p[:nonceSize]
	r.sealed = p[nonceSize:]
	return r, nil
}

// open decrypts the body with kek. A failure means the wrong KEK (or a
// damaged record: the two cannot be told apart).
func (r *keyRecord) open(kek [32]byte) (*keyring, error) {
	a, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		return nil, err
	}
	body, err := a.Open(nil, r.nonce, r.sealed, r.header)
	if err != nil {
		return nil, err
	}
	return decodeKeyring(body)
}

// encodeKeyRecord seals ring under kek and frames it as spec says.
func encodeKeyRecord(spec *kekSpec, kek [32]byte, nonce *[nonceSize]byte, ring *keyring) []byte {
	b := slices.Clone(keyRecordMagic)
	b = append(b, keyRecordVersion, spec.kind)
	switch spec.kind {
	case kekLocal:
		b = append(b, spec.local[:]...)
	case kekUnlockKey:
		b = append(b, spec.salt[:]...)
	case kekPassphrase:
		b = binary.BigEndian.AppendUint32(b, spec.kdf.Time)
		b = binary.BigEndian.AppendUint32(b, spec.kdf.MemoryKiB)
		b = append(b, spec.kdf.Threads)
		b = append(b, spec.salt[:]...)
	}
	header := len(b)
	b = append(b, nonce[:]...)
	a, err := chacha20poly1305.NewX(kek[:])
	if err != nil {
		panic(err)
	}
	return a.Seal(b, nonce[:], ring.encode(), b[:header])
}
