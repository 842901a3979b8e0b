package store

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Field numbers of store.proto, for the hand decoder.
const (
	fieldProposalTimestamp = 1
	fieldProposalActions   = 2
	fieldActionKind        = 1
	fieldActionTask        = 4
	fieldActionTaskStatus  = 10
	fieldActionAssignment  = 11
	fieldStatusTaskID      = 1
	fieldStatusStatus      = 2
	fieldAssignTaskID      = 1
	fieldAssignNodeID      = 2
	fieldAssignVersion     = 3
	fieldTaskSpec          = 6
	fieldSnapshotNodes     = 1
	fieldSnapshotTasks     = 3
	fieldSnapshotKVs       = 8
)

type opKind uint8

const (
	opFull opKind = iota
	opStatus
	opAssign
	opKV
)

// op is one decoded action. A compact action in canonical form (what
// Update writes) is decoded by hand without allocating its protobuf
// messages; its IDs alias the entry's bytes and are valid only while Apply
// runs. So is a KV action in canonical form: taskID holds its key, value
// its value and meta its meta's fields; Apply builds the stored object,
// or updates the stored one in place. Anything else is decoded by
// proto.Unmarshal into full.
type op struct {
	kind    opKind
	full    *api.StoreAction
	taskID  []byte
	nodeID  []byte
	version uint64
	status  *api.TaskStatus
	akind   api.StoreAction_Kind
	value   []byte
	meta    kvMeta
	// own is the store's own KV write (see Store.Apply), applied from
	// what WriteKV was asked instead of from the entry.
	own *pendingKV
}

// kvMeta is a decoded KV action's meta: its fields, and whether it had
// one at all.
type kvMeta struct {
	version              uint64
	createdAt, updatedAt int64
	set                  bool
}

// fail resets a partly decoded op and reports false.
func fail(o *op) bool {
	*o = op{}
	return false
}

// kvWithMeta allocates a KV with its meta: one allocation.
type kvWithMeta struct {
	kv   api.KV
	meta api.Meta
}

// kvInlineValue is the largest value allocated with its KV and meta.
// The block takes the smallest of three sizes that holds the value: a KV
// and its meta fill 152 bytes, so 8, 16 and 32 bytes of value land in the
// 160, 176 and 192-byte size classes. A value updated in place (see
// applyKV) reuses the room its block has, up to that size.
const kvInlineValue = 32

type (
	kvWithValue8 struct {
		kvWithMeta
		value [8]byte
	}
	kvWithValue16 struct {
		kvWithMeta
		value [16]byte
	}
	kvWithValue32 struct {
		kvWithMeta
		value [kvInlineValue]byte
	}
)

// newKV allocates a KV and its meta holding a copy of value: in one
// allocation up to kvInlineValue bytes of value, in two beyond. An empty
// value stays nil.
func newKV[T string | []byte](value T) *kvWithMeta {
	switch n := len(value); {
	case n == 0:
		return new(kvWithMeta)
	case n <= kvInlineValue:
		return newKVWithValue(value)
	default:
		blk := new(kvWithMeta)
		blk.kv.Value = make([]byte, n)
		copy(blk.kv.Value, value)
		return blk
	}
}

// copyKV returns a copy of kv (nil for nil) that shares no memory with
// it: what a reader of a stored KV gets (see kvTable).
func copyKV(kv *api.KV) *api.KV {
	if kv == nil {
		return nil
	}
	if kv.HasUnknownFields() || (kv.Meta != nil && kv.Meta.HasUnknownFields()) {
		return proto.Clone(kv).(*api.KV)
	}
	blk := newKV(kv.Value)
	blk.kv.Key = kv.Key
	// The value's capacity ends with it, so that appending to the value
	// read cannot write into the block it shares with its KV.
	blk.kv.Value = blk.kv.Value[:len(kv.Value):len(kv.Value)]
	if m := kv.Meta; m != nil {
		blk.kv.Meta = fillMeta(&blk.meta, m.Version, m.CreatedAt, m.UpdatedAt)
	}
	return &blk.kv
}

// newKVWithValue allocates a KV and its meta with room for value (at most
// kvInlineValue bytes), and copies value in.
func newKVWithValue[T string | []byte](value T) *kvWithMeta {
	var blk *kvWithMeta
	var room []byte
	switch n := len(value); {
	case n <= 8:
		b := new(kvWithValue8)
		blk, room = &b.kvWithMeta, b.value[:n]
	case n <= 16:
		b := new(kvWithValue16)
		blk, room = &b.kvWithMeta, b.value[:n]
	default:
		b := new(kvWithValue32)
		blk, room = &b.kvWithMeta, b.value[:n]
	}
	copy(room, value)
	blk.kv.Value = room
	return blk
}

// decodeProposal decodes an api.Proposal into ops (reusing its storage).
// It accepts and rejects exactly the inputs proto.Unmarshal does, with the
// same meaning (FuzzDecode checks): the hand decoder takes only the
// canonical shape of a compact action and hands every other shape to
// proto.Unmarshal.
func (c *content) decodeProposal(data []byte, ops []op) (int64, []op, error) {
	// The commonest entry, one KV write, in one pass.
	ops = append(ops, op{})
	if ts, ok := decodeLoneKV(data, &ops[len(ops)-1]); ok {
		return ts, ops, nil
	}
	ops = ops[:len(ops)-1]
	// A batch of 100,000 grows no slice; a small entry (most of them) is
	// not worth a counting pass: ops is reused from one entry to the next.
	if len(data) > 4096 {
		if n := countActions(data); cap(ops) < n {
			ops = make([]op, 0, n)
		}
	}
	var ts int64
	b := data
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return 0, ops, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldProposalTimestamp && typ == protowire.VarintType:
			var v uint64
			v, n = consumeVarint(b)
			ts = int64(v)
		case num == fieldProposalActions && typ == protowire.BytesType:
			var v []byte
			v, n = consumeBytes(b)
			if n >= 0 {
				ops = append(ops, op{})
				if err := c.decodeAction(v, &ops[len(ops)-1]); err != nil {
					return 0, ops, err
				}
			}
		default: // unknown to this version: skipped, as proto does
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return 0, ops, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return ts, ops, nil
}

// One-byte tags of the fields decodeLoneKV reads.
const (
	tagProposalTimestamp = fieldProposalTimestamp<<3 | byte(protowire.VarintType)
	tagProposalAction    = fieldProposalActions<<3 | byte(protowire.BytesType)
	tagActionKind        = fieldActionKind<<3 | byte(protowire.VarintType)
	tagActionKV          = fieldActionKV<<3 | byte(protowire.BytesType)
	tagKVKey             = fieldKVKey<<3 | byte(protowire.BytesType)
	tagKVMeta            = fieldKVMeta<<3 | byte(protowire.BytesType)
	tagKVValue           = fieldKVValue<<3 | byte(protowire.BytesType)
)

// decodeLoneKV decodes, into o (zero), a proposal of the exact shape
// Update writes for one KV write: an optional timestamp, then one action
// holding an optional kind and a KV of a non-empty key, an optional meta
// (of an optional version, creation and update time) and an optional
// value, every field once and in field order. It is decodeKV's outcome
// for those bytes, reached in one pass instead of a loop per message; o
// aliases b. It reports false for any other input, valid or not (o stays
// zero): the general decoder takes it.
func decodeLoneKV(b []byte, o *op) (ts int64, ok bool) {
	if len(b) > 0 && b[0] == tagProposalTimestamp {
		v, n := shortVarint(b[1:])
		if n < 0 {
			return 0, false
		}
		ts, b = int64(v), b[1+n:]
	}
	a, rest := shortField(b, tagProposalAction)
	if a == nil || len(rest) != 0 { // no action, or not alone
		return 0, false
	}
	var kind uint64
	if len(a) > 0 && a[0] == tagActionKind {
		v, n := shortVarint(a[1:])
		if n < 0 {
			return 0, false
		}
		kind, a = v, a[1+n:]
	}
	kv, rest := shortField(a, tagActionKV)
	if kv == nil || len(rest) != 0 {
		return 0, false
	}
	key, kv := shortField(kv, tagKVKey)
	if len(key) == 0 || !validUTF8(key) {
		return 0, false
	}
	meta, kv := shortField(kv, tagKVMeta)
	value, kv := shortField(kv, tagKVValue)
	if len(kv) != 0 {
		return 0, false
	}
	var m [fieldMetaUpdatedAt + 1]uint64
	for f, b := fieldMetaVersion, meta; len(b) > 0; f++ {
		if f > fieldMetaUpdatedAt {
			return 0, false // a field out of order, twice, or unknown
		}
		if b[0] != byte(f)<<3|byte(protowire.VarintType) {
			continue // field f is absent
		}
		v, n := shortVarint(b[1:])
		if n < 0 {
			return 0, false
		}
		m[f], b = v, b[1+n:]
	}
	o.kind, o.akind, o.taskID, o.value = opKV, api.StoreAction_Kind(int32(kind)), key, value
	o.meta = kvMeta{m[fieldMetaVersion], int64(m[fieldMetaCreatedAt]), int64(m[fieldMetaUpdatedAt]), meta != nil}
	return ts, true
}

// shortField reads the field of one-byte tag tag and a length below 128
// at the front of b: its payload (non-nil, even when empty) and what
// follows it. When b does not start so, payload is nil and rest is b.
func shortField(b []byte, tag byte) (payload, rest []byte) {
	if len(b) < 2 || b[0] != tag || b[1] >= 0x80 || int(b[1]) > len(b)-2 {
		return nil, b
	}
	end := 2 + int(b[1])
	return b[2:end:end], b[end:]
}

// countActions counts the top-level action fields of a proposal, stopping
// at the first malformed field (decodeProposal reports it).
func countActions(b []byte) int {
	count := 0
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			break
		}
		b = b[n:]
		if num == fieldProposalActions && typ == protowire.BytesType {
			count++
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			break
		}
		b = b[n:]
	}
	return count
}

// decodeAction decodes one action into o, which is zero. Compact and KV
// actions of the shape Update writes are decoded by hand, a task action's
// spec is shared through the registry, and anything else (or a hand
// decoder's refusal) goes to proto.Unmarshal.
func (c *content) decodeAction(b []byte, o *op) error {
	kind, num, payload, ok := actionShape(b)
	if ok {
		switch num {
		case fieldActionTaskStatus:
			ok = decodeStatusUpdate(payload, o)
		case fieldActionAssignment:
			ok = decodeAssignment(payload, o)
		case fieldActionKV:
			ok = c.decodeKV(payload, kind, o)
		case fieldActionTask:
			t, err := c.decodeTask(payload)
			if err != nil {
				return fmt.Errorf("action: %w", err)
			}
			o.full = &api.StoreAction{
				Kind:   api.StoreAction_Kind(int32(kind)), // as proto decodes an enum
				Target: &api.StoreAction_Task{Task: t},
			}
		}
		if ok {
			return nil
		}
	}
	a := &api.StoreAction{}
	if err := proto.Unmarshal(b, a); err != nil {
		return fmt.Errorf("action: %w", err)
	}
	o.full = a
	return nil
}

// decodeKV decodes the payload of a KV action of the given kind into o: a
// KV holding a key, a meta and a value, each at most once, whose meta holds
// a version, a creation and an update time, each at most once: all with
// the right wire types, and a valid UTF-8 key; o aliases payload. It
// reports false for any other shape, valid or not (o stays zero).
func (c *content) decodeKV(payload []byte, kind uint64, o *op) bool {
	var b []byte
	var key, value, meta []byte
	var seen [fieldKVValue + 1]bool
	for b = payload; len(b) > 0; {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldKVValue || seen[num] || typ != protowire.BytesType {
			return false
		}
		seen[num] = true
		b = b[n:]
		var v []byte
		if num == fieldKVKey {
			v, n = consumeString(b)
		} else {
			v, n = consumeBytes(b)
		}
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case fieldKVKey:
			key = v
		case fieldKVMeta:
			meta = v
		case fieldKVValue:
			value = v
		}
	}
	var m [fieldMetaUpdatedAt + 1]uint64
	var seenMeta [fieldMetaUpdatedAt + 1]bool
	for b = meta; len(b) > 0; {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldMetaUpdatedAt || seenMeta[num] || typ != protowire.VarintType {
			return false
		}
		seenMeta[num] = true
		b = b[n:]
		if m[num], n = consumeVarint(b); n < 0 {
			return false
		}
		b = b[n:]
	}
	o.kind, o.akind, o.taskID, o.value = opKV, api.StoreAction_Kind(int32(kind)), key, value
	o.meta = kvMeta{m[fieldMetaVersion], int64(m[fieldMetaCreatedAt]), int64(m[fieldMetaUpdatedAt]), seen[fieldKVMeta]}
	return true
}

func decodeAssignment(b []byte, o *op) bool {
	o.kind = opAssign
	var seen [4]bool
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldAssignVersion || seen[num] {
			return fail(o)
		}
		seen[num] = true
		b = b[n:]
		switch {
		case num == fieldAssignTaskID && typ == protowire.BytesType:
			o.taskID, n = consumeString(b)
		case num == fieldAssignNodeID && typ == protowire.BytesType:
			o.nodeID, n = consumeString(b)
		case num == fieldAssignVersion && typ == protowire.VarintType:
			o.version, n = consumeVarint(b)
		default:
			return fail(o)
		}
		if n < 0 {
			return fail(o)
		}
		b = b[n:]
	}
	return true
}

func decodeStatusUpdate(b []byte, o *op) bool {
	o.kind = opStatus
	var seen [3]bool
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldStatusStatus || seen[num] {
			return fail(o)
		}
		seen[num] = true
		b = b[n:]
		switch {
		case num == fieldStatusTaskID && typ == protowire.BytesType:
			o.taskID, n = consumeString(b)
		case num == fieldStatusStatus && typ == protowire.BytesType:
			var v []byte
			v, n = consumeBytes(b)
			if n >= 0 {
				o.status = &api.TaskStatus{}
				if proto.Unmarshal(v, o.status) != nil {
					return fail(o)
				}
			}
		default:
			return fail(o)
		}
		if n < 0 {
			return fail(o)
		}
		b = b[n:]
	}
	return true
}

// action rebuilds the StoreAction an op stands for, but for the kind of a
// compact (status or assignment) action, which means nothing (tests compare it with what
// proto.Unmarshal gives).
func (o *op) action() *api.StoreAction {
	switch o.kind {
	case opStatus:
		return &api.StoreAction{Target: &api.StoreAction_TaskStatus{TaskStatus: &api.TaskStatusUpdate{
			TaskId: string(o.taskID), Status: o.status}}}
	case opAssign:
		return &api.StoreAction{Target: &api.StoreAction_TaskAssignment{TaskAssignment: &api.TaskAssignment{
			TaskId: string(o.taskID), NodeId: string(o.nodeID), ExpectedVersion: o.version}}}
	case opKV:
		kv := &api.KV{Key: string(o.taskID), Value: bytes.Clone(o.value)}
		if m := o.meta; m.set {
			kv.Meta = &api.Meta{Version: m.version, CreatedAt: m.createdAt, UpdatedAt: m.updatedAt}
		}
		return &api.StoreAction{Kind: o.akind, Target: &api.StoreAction_Kv{Kv: kv}}
	}
	return o.full
}

// actionShape returns the kind, the target's field number and the target's
// payload of a StoreAction holding only a kind and one target among task,
// KV, status update and assignment, each at most once and with the right
// wire types (the shapes Update writes). It reports false for any other
// shape, valid or not: the hand decoders take only these.
func actionShape(b []byte) (kind uint64, num protowire.Number, payload []byte, ok bool) {
	seenKind := false
	for len(b) > 0 {
		n, typ, l := consumeTag(b)
		if l < 0 {
			return 0, 0, nil, false
		}
		b = b[l:]
		switch {
		case n == fieldActionKind && typ == protowire.VarintType && !seenKind:
			seenKind = true
			kind, l = consumeVarint(b)
		case (n == fieldActionTask || n == fieldActionKV || n == fieldActionTaskStatus || n == fieldActionAssignment) &&
			typ == protowire.BytesType && payload == nil:
			num = n
			payload, l = consumeBytes(b)
			if payload == nil {
				payload = []byte{}
			}
		default:
			return 0, 0, nil, false
		}
		if l < 0 {
			return 0, 0, nil, false
		}
		b = b[l:]
	}
	return kind, num, payload, payload != nil
}

// decodeTask decodes an encoded Task, taking its spec from the registry
// when its bytes are known (see specRegistry), and registering it
// otherwise. A task whose spec field is not one well-formed occurrence is
// decoded whole, unshared.
func (c *content) decodeTask(b []byte) (*api.Task, error) {
	t := &api.Task{}
	start, end, ok := findField(b, fieldTaskSpec)
	if !ok {
		return t, proto.Unmarshal(b, t)
	}
	payload, _ := protowire.ConsumeBytes(b[start+protowire.SizeTag(fieldTaskSpec):])
	spec := c.taskIdx.specs.lookup(payload)
	if spec == nil {
		spec = &api.TaskSpec{}
		if err := proto.Unmarshal(payload, spec); err != nil {
			return nil, err
		}
		c.taskIdx.specs.register(payload, spec)
	}
	// A message is the merge of its fields in any split: decode what comes
	// before the spec, then merge what comes after.
	if err := proto.Unmarshal(b[:start], t); err != nil {
		return nil, err
	}
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b[end:], t); err != nil {
		return nil, err
	}
	t.Spec = spec
	return t, nil
}

// findField returns where the one occurrence of the length-delimited field
// num lies in the encoded message b, tag included. It reports false when
// the field is absent, occurs twice or with another wire type, or b is
// malformed.
func findField(b []byte, num protowire.Number) (start, end int, ok bool) {
	found := false
	for pos := 0; pos < len(b); {
		n, typ, tagLen := consumeTag(b[pos:])
		if tagLen < 0 {
			return 0, 0, false
		}
		valLen := protowire.ConsumeFieldValue(n, typ, b[pos+tagLen:])
		if valLen < 0 {
			return 0, 0, false
		}
		if n == num {
			if found || typ != protowire.BytesType {
				return 0, 0, false
			}
			found, start, end = true, pos, pos+tagLen+valLen
		}
		pos += tagLen + valLen
	}
	return start, end, found
}

// decodeSnapshot decodes an api.StoreSnapshot as proto.Unmarshal would,
// sharing task specs through the registry.
func (c *content) decodeSnapshot(data []byte) (*api.StoreSnapshot, error) {
	snap := &api.StoreSnapshot{}
	b := data
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if typ != protowire.BytesType || num < fieldSnapshotNodes || num > fieldSnapshotKVs {
			// unknown to this version: skipped, as proto does
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return nil, protowire.ParseError(n)
			}
			b = b[n:]
			continue
		}
		v, n := consumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		var err error
		switch num {
		case 1:
			snap.Nodes, err = appendDecoded(snap.Nodes, v)
		case 2:
			snap.Services, err = appendDecoded(snap.Services, v)
		case 3:
			var t *api.Task
			if t, err = c.decodeTask(v); err == nil {
				snap.Tasks = append(snap.Tasks, t)
			}
		case 4:
			snap.Networks, err = appendDecoded(snap.Networks, v)
		case 5:
			snap.Clusters, err = appendDecoded(snap.Clusters, v)
		case 6:
			snap.Secrets, err = appendDecoded(snap.Secrets, v)
		case 7:
			snap.Configs, err = appendDecoded(snap.Configs, v)
		case 8:
			snap.Kvs, err = appendDecoded(snap.Kvs, v)
		}
		if err != nil {
			return nil, err
		}
	}
	return snap, nil
}

func appendDecoded[T any, P interface {
	*T
	proto.Message
}](list []P, b []byte) ([]P, error) {
	o := P(new(T))
	if err := proto.Unmarshal(b, o); err != nil {
		return list, err
	}
	return append(list, o), nil
}
