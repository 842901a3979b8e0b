package store

import (
	"fmt"
	"unicode/utf8"

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
// runs. A KV action in canonical form is decoded by hand into kv, whose
// meta Apply may fill in place (meta: the one allocated with kv, whether or
// not the action had a meta). Anything else is decoded by proto.Unmarshal
// into full.
type op struct {
	kind    opKind
	full    *api.StoreAction
	taskID  []byte
	nodeID  []byte
	version uint64
	status  *api.TaskStatus
	akind   api.StoreAction_Kind
	kv      *api.KV
	meta    *api.Meta
}

// kvWithMeta allocates a decoded KV with its meta: one allocation.
type kvWithMeta struct {
	kv   api.KV
	meta api.Meta
}

// decodeProposal decodes an api.Proposal into ops (reusing its storage).
// It accepts and rejects exactly the inputs proto.Unmarshal does, with the
// same meaning (FuzzDecode checks): the hand decoder takes only the
// canonical shape of a compact action and hands every other shape to
// proto.Unmarshal.
func (c *content) decodeProposal(data []byte, ops []op) (int64, []op, error) {
	if n := countActions(data); cap(ops) < n {
		ops = make([]op, 0, n) // a batch of 100,000 grows no slice
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
			v, n = protowire.ConsumeVarint(b)
			ts = int64(v)
		case num == fieldProposalActions && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				o, err := c.decodeAction(v)
				if err != nil {
					return 0, ops, err
				}
				ops = append(ops, o)
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

func (c *content) decodeAction(b []byte) (op, error) {
	if o, ok := decodeCompact(b); ok {
		return o, nil
	}
	if o, ok := c.decodeKVAction(b); ok {
		return o, nil
	}
	if payload, kind, ok := taskAction(b); ok {
		t, err := c.decodeTask(payload)
		if err != nil {
			return op{}, fmt.Errorf("action: %w", err)
		}
		return op{kind: opFull, full: &api.StoreAction{
			Kind:   api.StoreAction_Kind(int32(kind)), // as proto decodes an enum
			Target: &api.StoreAction_Task{Task: t},
		}}, nil
	}
	a := &api.StoreAction{}
	if err := proto.Unmarshal(b, a); err != nil {
		return op{}, fmt.Errorf("action: %w", err)
	}
	return op{kind: opFull, full: a}, nil
}

// decodeCompact decodes a StoreAction holding only a kind and one compact
// target, each field once, with the right wire types and valid UTF-8. It
// reports false for any other shape, valid or not.
func decodeCompact(b []byte) (op, bool) {
	var target []byte
	var targetNum protowire.Number
	seenKind := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
		switch {
		case num == fieldActionKind && typ == protowire.VarintType && !seenKind:
			seenKind = true
			_, n = protowire.ConsumeVarint(b) // kind means nothing to compact actions
		case (num == fieldActionTaskStatus || num == fieldActionAssignment) && typ == protowire.BytesType && target == nil:
			target, n = protowire.ConsumeBytes(b)
			targetNum = num
			if target == nil {
				target = []byte{}
			}
		default:
			return op{}, false
		}
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
	}
	switch targetNum {
	case fieldActionTaskStatus:
		return decodeStatusUpdate(target)
	case fieldActionAssignment:
		return decodeAssignment(target)
	}
	return op{}, false
}

// decodeKVAction decodes a StoreAction holding only a kind and a KV, each
// at most once, whose KV holds a key, a meta and a value, each at most once,
// and whose meta holds a version, a creation and an update time, each at
// most once: all with the right wire types, and a valid UTF-8 key. It
// reports false for any other shape, valid or not, and allocates nothing
// then. A key the store holds is shared with the stored object.
func (c *content) decodeKVAction(b []byte) (op, bool) {
	var payload []byte
	var kind uint64
	seenKind := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
		switch {
		case num == fieldActionKind && typ == protowire.VarintType && !seenKind:
			seenKind = true
			kind, n = protowire.ConsumeVarint(b)
		case num == fieldActionKV && typ == protowire.BytesType && payload == nil:
			payload, n = protowire.ConsumeBytes(b)
			if payload == nil {
				payload = []byte{}
			}
		default:
			return op{}, false
		}
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
	}
	if payload == nil {
		return op{}, false
	}
	var key, value, meta []byte
	var seen [fieldKVValue + 1]bool
	for b = payload; len(b) > 0; {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldKVValue || seen[num] || typ != protowire.BytesType {
			return op{}, false
		}
		seen[num] = true
		b = b[n:]
		var v []byte
		if num == fieldKVKey {
			v, n = consumeString(b)
		} else {
			v, n = protowire.ConsumeBytes(b)
		}
		if n < 0 {
			return op{}, false
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
			return op{}, false
		}
		seenMeta[num] = true
		b = b[n:]
		if m[num], n = protowire.ConsumeVarint(b); n < 0 {
			return op{}, false
		}
		b = b[n:]
	}
	blk := new(kvWithMeta)
	kv := &blk.kv
	if r := c.kvs.recBytes(key); r != nil {
		kv.Key = r.id
	} else {
		kv.Key = string(key)
	}
	if seen[fieldKVMeta] {
		blk.meta.Version = m[fieldMetaVersion]
		blk.meta.CreatedAt = int64(m[fieldMetaCreatedAt])
		blk.meta.UpdatedAt = int64(m[fieldMetaUpdatedAt])
		kv.Meta = &blk.meta
	}
	if len(value) > 0 {
		kv.Value = append([]byte(nil), value...)
	}
	return op{kind: opKV, akind: api.StoreAction_Kind(int32(kind)), kv: kv, meta: &blk.meta}, true
}

func decodeAssignment(b []byte) (op, bool) {
	o := op{kind: opAssign}
	var seen [4]bool
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldAssignVersion || seen[num] {
			return op{}, false
		}
		seen[num] = true
		b = b[n:]
		switch {
		case num == fieldAssignTaskID && typ == protowire.BytesType:
			o.taskID, n = consumeString(b)
		case num == fieldAssignNodeID && typ == protowire.BytesType:
			o.nodeID, n = consumeString(b)
		case num == fieldAssignVersion && typ == protowire.VarintType:
			o.version, n = protowire.ConsumeVarint(b)
		default:
			return op{}, false
		}
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
	}
	return o, true
}

func decodeStatusUpdate(b []byte) (op, bool) {
	o := op{kind: opStatus}
	var seen [3]bool
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 || num > fieldStatusStatus || seen[num] {
			return op{}, false
		}
		seen[num] = true
		b = b[n:]
		switch {
		case num == fieldStatusTaskID && typ == protowire.BytesType:
			o.taskID, n = consumeString(b)
		case num == fieldStatusStatus && typ == protowire.BytesType:
			var v []byte
			v, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				o.status = &api.TaskStatus{}
				if proto.Unmarshal(v, o.status) != nil {
					return op{}, false
				}
			}
		default:
			return op{}, false
		}
		if n < 0 {
			return op{}, false
		}
		b = b[n:]
	}
	return o, true
}

// consumeString is protowire.ConsumeBytes for a proto3 string: invalid
// UTF-8 fails, as proto.Unmarshal fails on it.
func consumeString(b []byte) ([]byte, int) {
	v, n := protowire.ConsumeBytes(b)
	if n >= 0 && !utf8.Valid(v) {
		return nil, -1
	}
	return v, n
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
		return &api.StoreAction{Kind: o.akind, Target: &api.StoreAction_Kv{Kv: o.kv}}
	}
	return o.full
}

// consumeTag is protowire.ConsumeTag, failing as proto.Unmarshal does on a
// field number above the valid range.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// taskAction returns the Task payload and the kind of a StoreAction holding
// only a kind and one task, each at most once and with the right wire types
// (the shape Update writes), and reports false for any other shape.
func taskAction(b []byte) (payload []byte, kind uint64, ok bool) {
	seenKind := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, 0, false
		}
		b = b[n:]
		switch {
		case num == fieldActionKind && typ == protowire.VarintType && !seenKind:
			seenKind = true
			kind, n = protowire.ConsumeVarint(b)
		case num == fieldActionTask && typ == protowire.BytesType && payload == nil:
			payload, n = protowire.ConsumeBytes(b)
			if payload == nil {
				payload = []byte{}
			}
		default:
			return nil, 0, false
		}
		if n < 0 {
			return nil, 0, false
		}
		b = b[n:]
	}
	return payload, kind, payload != nil
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
		v, n := protowire.ConsumeBytes(b)
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
