// Package crypt keeps a manager's raft state encrypted and authenticated
// on its disk. SealedStorage wraps any env.Storage (the simulator's disk,
// realnet's write-ahead log) and seals every raft entry's Data and every
// snapshot's Data with XChaCha20-Poly1305 under a data key (DEK), so the
// same code encrypts the simulated disk and the real one.
//
// What it owns:
//
//   - The sealed record: version, key ID, nonce, ciphertext and tag. The
//     record is bound to where raft put it (kind, term, index, entry type,
//     a snapshot's membership) as additional data, so a record that was
//     changed, cut short or moved to another index fails authentication
//     and Load returns an error wrapping ErrCorrupt: the node refuses to
//     start rather than apply it. A snapshot's nonce is 24 drawn bytes;
//     entries share 16 drawn bytes while their indexes grow within one
//     term and data key, and end with their index, so that XChaCha20's
//     subkey is computed once per draw rather than once per entry (the
//     records are the same format either way).
//   - The key record (meta "crypt/keys"): the data keys still in use,
//     sealed by a key-encryption key (KEK). Without autolock the KEK is a
//     random key kept in the clear next to the sealed keys, on the same
//     disk; with autolock it is derived from the cluster's unlock key
//     (HKDF-SHA256) or from a passphrase (argon2id), and is never written
//     down: a restarted manager is locked until Unlock is given the key.
//   - Rotation. RotateDataKey draws a new DEK: records written from then
//     on use it; records sealed with an older key stay readable until a
//     snapshot compacts the last of them away, and then that key is
//     dropped from the key record. SetUnlockKey re-wraps the data keys
//     under a new KEK without touching a single record; turning autolock
//     on also draws a new data key, since the old one sat under a KEK
//     stored in the clear and may have been copied with the disk.
//
// What each mode protects against, honestly: without autolock, someone
// who gets the raft log or snapshots without the key record (a copied
// WAL directory, a backup of the snapshot files, a support bundle) learns
// nothing and cannot forge a record; someone with the whole disk has the
// KEK too and reads everything. With autolock, the whole disk of a
// stopped manager is not enough: the unlock key is held by the operator
// (and, replicated, in the memory of running managers: the store keeps it
// in the Cluster object, whose entries are themselves sealed). Neither
// mode protects a running manager's memory, nor the raft hard state (term,
// vote, commit are stored in the clear and not authenticated), nor the
// deletion of whole records at the log's tail (which looks like a crash).
//
// Real mode wires it so: open the WAL, then either pass it as env.Storage
// to node.New, which wraps it and reports Locked, or wrap it first with
// NewSealedStorage (on the node's loop; real mode's env.Rand is seeded
// from crypto/rand) to learn Locked before starting anything. A locked
// node waits for node.Unlock(key) (`swarmd unlock` over the daemon's
// local socket, reading the key or passphrase from the terminal); a
// wrong key returns an error wrapping ErrWrongKey and it stays locked. The
// control API's SetAutolock, GetUnlockKey, RotateUnlockKey and
// RotateDataKey are what `swarmd swarm update --autolock`, `swarmd
// unlock-key [--rotate]` and `swarmd swarm rotate-data-key` call.
//
// What it must never do: do I/O or draw randomness other than from
// env.Rand (nonces, keys and salts; the simulator's draws are seeded, so
// a run replays), log or return key material or plaintext in an error,
// hand raft a record that did not authenticate, or let a data key leave
// the key record before no live record uses it. argon2id computes its
// lanes on goroutines it joins before returning; it is a pure function
// and is only called when a passphrase is set or tried.
package crypt
