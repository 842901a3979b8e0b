package crypt

import "errors"

// Sentinel errors; the errors returned wrap them with context.
var (
	// ErrLocked: the data keys are wrapped by a key derived from the
	// cluster's unlock key, which this process does not have yet. Nothing
	// can be read or written until Unlock.
	ErrLocked = errors.New("crypt: locked: the disk's data keys are sealed by the cluster's unlock key (swarmd unlock)")
	// ErrWrongKey: Unlock was given a key or passphrase that does not open
	// the key record.
	ErrWrongKey = errors.New("crypt: wrong unlock key")
	// ErrNotLocked: Unlock was called on a storage that is not locked.
	ErrNotLocked = errors.New("crypt: not locked")
	// ErrCorrupt: a sealed record or the key record was changed, cut
	// short or moved; it is never applied.
	ErrCorrupt = errors.New("crypt: sealed record failed authentication (tampered or truncated)")
	// ErrNoKeyRecord: the disk holds raft entries or a snapshot but no key
	// record to open them with (written without encryption, or the key
	// record was lost).
	ErrNoKeyRecord = errors.New("crypt: the disk holds raft state but no key record")
	// ErrTooManyKeys: a data-key rotation was refused because MaxDataKeys
	// keys are still in use; a snapshot retires the old ones.
	ErrTooManyKeys = errors.New("crypt: too many data keys in use: wait for a snapshot")
	// ErrBadPassphrase: a passphrase too short to be set as an unlock key.
	ErrBadPassphrase = errors.New("crypt: passphrase too short")
	// ErrReservedMeta: a caller tried to write the key record's meta key.
	ErrReservedMeta = errors.New("crypt: meta key reserved for the key record")
)
