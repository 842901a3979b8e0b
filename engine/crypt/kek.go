package crypt

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/swarmsim/swarmsim/engine/env"
)

// UnlockKeyPrefix starts every unlock key the cluster draws (as SwarmKit's
// do); what follows is 32 random bytes in unpadded base64url.
const UnlockKeyPrefix = "SWMKEY-1-"

// MinPassphraseLen is the shortest passphrase accepted as an unlock key.
// argon2id makes each guess cost, but cannot make a short one strong.
const MinPassphraseLen = 16

// NewUnlockKey draws an unlock key: 256 bits from r.
func NewUnlockKey(r env.Rand) string {
	var b [32]byte
	_, _ = r.Read(b[:])
	return UnlockKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// parseUnlockKey returns the bytes of a drawn unlock key, or false when s
// does not have that form (it is then a passphrase).
func parseUnlockKey(s string) ([]byte, bool) {
	rest, ok := strings.CutPrefix(s, UnlockKeyPrefix)
	if !ok {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) != 32 {
		return nil, false
	}
	return b, true
}

// CheckUnlockKey says whether s may be set as a cluster's unlock key: a
// key NewUnlockKey drew, or a passphrase of MinPassphraseLen bytes or more
// that does not pretend to be a drawn key.
func CheckUnlockKey(s string) error {
	if _, ok := parseUnlockKey(s); ok {
		return nil
	}
	if strings.HasPrefix(s, UnlockKeyPrefix) {
		return fmt.Errorf("%w: it starts like a drawn unlock key (%s) but is not one", ErrBadPassphrase, UnlockKeyPrefix)
	}
	if len(s) < MinPassphraseLen {
		return fmt.Errorf("%w: %d bytes, at least %d needed", ErrBadPassphrase, len(s), MinPassphraseLen)
	}
	return nil
}

// KDFParams are argon2id's costs for deriving a KEK from a passphrase. They
// are stored in the key record, so a record is always opened with the
// costs it was sealed with.
type KDFParams struct {
	Time      uint32 // passes over memory
	MemoryKiB uint32
	Threads   uint8
}

// DefaultKDF is RFC 9106's second recommended setting (64 MiB, 3 passes,
// 4 lanes): about a tenth of a second on a server core, once per start or
// unlock key change.
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// FastKDF is for the simulator and tests: 64 KiB and one pass take tens of
// microseconds, so a simulated cluster that sets passphrases stays fast.
// It is no protection for a real disk.
var FastKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

// Bounds on stored costs, so a tampered key record cannot make Unlock
// allocate gigabytes or spin for minutes.
const (
	maxKDFTime      = 16
	maxKDFMemoryKiB = 1 << 21 // 2 GiB
	maxKDFThreads   = 16
)

func (p KDFParams) check() error {
	if p.Time == 0 || p.Time > maxKDFTime || p.Threads == 0 || p.Threads > maxKDFThreads ||
		p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB {
		return fmt.Errorf("crypt: argon2id costs out of bounds (time %d, memory %d KiB, threads %d)", p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// KEK kinds, as stored in the key record.
const (
	kekLocal      byte = 1 // a random key stored in the clear beside the sealed keys
	kekUnlockKey  byte = 2 // HKDF-SHA256 of a drawn unlock key
	kekPassphrase byte = 3 // argon2id of a passphrase
)

const saltSize = 16

// kekSpec is how a key record's KEK is had: stored (local) or derived.
type kekSpec struct {
	kind  byte
	local [32]byte // kekLocal only
	salt  [saltSize]byte
	kdf   KDFParams // kekPassphrase only
}

// hkdfInfo separates our use of an unlock key from any other.
const hkdfInfo = "swarmsim/crypt kek v1"

// newKEK draws a KEK spec for secret ("" for a local key) and returns it
// with the KEK.
func newKEK(r env.Rand, secret string, kdf KDFParams) (kekSpec, [32]byte, error) {
	var spec kekSpec
	if secret == "" {
		spec.kind = kekLocal
		_, _ = r.Read(spec.local[:])
		return spec, spec.local, nil
	}
	_, _ = r.Read(spec.salt[:])
	if _, ok := parseUnlockKey(secret); ok {
		spec.kind = kekUnlockKey
	} else {
		if err := CheckUnlockKey(secret); err != nil {
			return kekSpec{}, [32]byte{}, err
		}
		if err := kdf.check(); err != nil {
			return kekSpec{}, [32]byte{}, err
		}
		spec.kind = kekPassphrase
		spec.kdf = kdf
	}
	k, err := spec.derive(secret)
	return spec, k, err
}

// derive computes the KEK from secret, as the spec says. A secret of the
// wrong form for the spec is a wrong key.
func (s *kekSpec) derive(secret string) ([32]byte, error) {
	var k [32]byte
	switch s.kind {
	case kekLocal:
		return s.local, nil
	case kekUnlockKey:
		raw, ok := parseUnlockKey(secret)
		if !ok {
			return k, fmt.Errorf("%w: the disk is locked with a drawn unlock key (%s...), and this is not one", ErrWrongKey, UnlockKeyPrefix)
		}
		out, err := hkdf.Key(sha256.New, raw, s.salt[:], hkdfInfo, len(k))
		if err != nil {
			return k, fmt.Errorf("crypt: hkdf: %w", err)
		}
		copy(k[:], out)
		return k, nil
	case kekPassphrase:
		if err := s.kdf.check(); err != nil {
			return k, err
		}
		copy(k[:], argon2.IDKey([]byte(secret), s.salt[:], s.kdf.Time, s.kdf.MemoryKiB, s.kdf.Threads, uint32(len(k))))
		return k, nil
	}
	return k, fmt.Errorf("%w: unknown key-encryption kind %d", ErrCorrupt, s.kind)
}
