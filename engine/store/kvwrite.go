package store

import (
	"errors"
	"fmt"

	"github.com/swarmsim/swarmsim/engine/api"
)

// ErrContended: a write of one key lost its race with other writes of
// that key every time it was tried; nothing of it applied.
var ErrContended = errors.New("key written concurrently too often; nothing applied")

// WriteKV sets key to value in a proposal of its own: a creation when the
// key is absent, else an update of the version stored when the write is
// made. It proposes what Update would for a transaction of one
// Tx.WriteKV(key, value, store.KV(key)), byte for byte, without the
// transaction: a blind write of one key needs none, and this is the
// scenario clients' hot write.
//
// A write that loses its race with another write of the key (the key
// appeared, vanished or changed before it applied: nothing applied) is
// made again, against the version then stored, tries times in all; the
// last loss fails with ErrContended. done is called as Update's is: once,
// with nil once the write applied on this node, or an error (and may be
// nil).
func (s *Store) WriteKV(key, value string, tries int, done func(error)) {
	if done == nil {
		done = func(error) {}
	}
	w := &pendingKV{s: s, key: key, value: value, tries: max(tries, 1), done: done}
	w.propose()
}

// pendingKV is one WriteKV call: its key and value, the try in flight,
// and room for its encoded proposal, in one allocation.
type pendingKV struct {
	s          *Store
	key, value string
	tries      int // tries left, the one in flight included
	done       func(error)
	// The try in flight, for Apply on this store: its action's kind, the
	// version it is based on, and the proposal's timestamp.
	flying bool
	kind   api.StoreAction_Kind
	base   uint64
	ts     int64
	buf    [inlineProposalBytes]byte
}

// propose makes one try: reads the stored version and hands the
// proposal to the proposer.
func (w *pendingKV) propose() {
	s := w.s
	if s.proposer == nil {
		w.done(ErrNoProposer)
		return
	}
	if w.key == "" {
		w.done(objectError(KindKV, "", ErrInvalid))
		return
	}
	kind, base := api.StoreAction_CREATE, uint64(0)
	var meta *api.Meta
	if r := s.c.kvs.rec(w.key); r != nil {
		kind, base = api.StoreAction_UPDATE, r.obj.GetMeta().GetVersion()
		meta = &api.Meta{Version: base}
	}
	ts := s.clock.Now().UnixNano()
	var data []byte
	if validUTF8String(w.key) {
		data = appendKVProposal(w.buf[:0], ts, kind, w.key, meta, w.value)
	} else {
		// proto.Marshal refuses it, with the error Update would give.
		// kv escapes: it gets a meta of its own, so that meta, on the hot
		// path above, stays on the stack.
		kv := &api.KV{Key: w.key, Value: []byte(w.value)}
		if meta != nil {
			kv.Meta = &api.Meta{Version: base}
		}
		var err error
		if data, err = appendProposal(w.buf[:0], ts, []*api.StoreAction{newAction(kind, kv)}); err != nil {
			w.done(fmt.Errorf("store: encode proposal: %w", err))
			return
		}
	}
	if len(data) > s.maxProposalBytes {
		w.done(fmt.Errorf("store: 1 actions encode to %d bytes, over %d: %w", len(data), s.maxProposalBytes, ErrProposalTooLarge))
		return
	}
	w.flying, w.kind, w.base, w.ts = true, kind, base, ts
	s.proposer.Propose(data, w)
}

// Done takes the proposer's answer: done's, or another try after a lost
// race.
func (w *pendingKV) Done(result any, err error) {
	w.flying = false
	if err == nil {
		err, _ = result.(error)
	}
	if LostRace(err) {
		if w.tries--; w.tries > 0 {
			w.propose()
			return
		}
		err = fmt.Errorf("write %q: %w", w.key, ErrContended)
	}
	w.done(err)
}

// LostRace reports whether err says a write found the key created,
// deleted or changed since it was read: nothing of it applied.
func LostRace(err error) bool {
	return err != nil && (errors.Is(err, ErrSequenceConflict) || errors.Is(err, ErrExist) || errors.Is(err, ErrNotExist))
}
