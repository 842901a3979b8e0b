package store

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Field numbers of the KV action, for the hand encoder and decoder.
const (
	fieldActionKV      = 9
	fieldKVKey         = 1
	fieldKVMeta        = 2
	fieldKVValue       = 3
	fieldMetaVersion   = 1
	fieldMetaCreatedAt = 2
	fieldMetaUpdatedAt = 3
)

// cachedSize marshals an action whose size was just computed by
// marshalOptions.Size, without computing it again.
var cachedSize = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// encodeProposal encodes an api.Proposal{Timestamp: ts, Actions: actions}
// into one buffer of the exact size. The output is byte for byte what
// marshalOptions.Marshal gives (TestEncodeProposal checks): KV actions, the
// bulk of small writes, are written by hand; every other action goes
// through proto, whose reflection costs more than the write itself for
// objects this small.
func encodeProposal(ts int64, actions []*api.StoreAction) ([]byte, error) {
	return appendProposal(nil, ts, actions)
}

// appendProposal is encodeProposal writing into buf when the proposal
// fits in its capacity (buf's length is ignored), into a new buffer of
// the exact size otherwise.
func appendProposal(buf []byte, ts int64, actions []*api.StoreAction) ([]byte, error) {
	size := 0
	if ts != 0 {
		size += protowire.SizeTag(fieldProposalTimestamp) + protowire.SizeVarint(uint64(ts))
	}
	// sizes[i] is action i's size, negated for a KV action (never 0).
	var sizes []int
	var sizesBuf [8]int
	if len(actions) <= len(sizesBuf) {
		sizes = sizesBuf[:len(actions)]
	} else {
		sizes = make([]int, len(actions))
	}
	for i, a := range actions {
		n, ok := kvActionSize(a)
		if ok {
			sizes[i] = -n
		} else {
			n = marshalOptions.Size(a)
			sizes[i] = n
		}
		size += protowire.SizeTag(fieldProposalActions) + protowire.SizeBytes(n)
	}
	b := startProposal(buf, size, ts)
	for i, a := range actions {
		n := sizes[i]
		b = append(b, tag1(fieldProposalActions, protowire.BytesType))
		b = appendVarint(b, uint64(max(n, -n)))
		start := len(b)
		if n < 0 { // a KV action: never empty, it holds its target
			b = appendKVAction(b, a)
			n = -n
		} else {
			var err error
			if b, err = cachedSize.MarshalAppend(b, a); err != nil {
				return nil, err
			}
		}
		if len(b)-start != n {
			// A message changed between sizing and writing: a caller broke
			// the rule that handed-over objects are not modified.
			return nil, errSizeChanged
		}
	}
	return b, nil
}

var errSizeChanged = errors.New("store: an action changed while it was encoded")

// startProposal returns buf emptied, or a new buffer where buf has no room
// for size bytes, holding the proposal's timestamp field (none for 0).
func startProposal(buf []byte, size int, ts int64) []byte {
	var b []byte
	if cap(buf) >= size {
		b = buf[:0:size]
	} else {
		b = make([]byte, 0, size)
	}
	if ts != 0 {
		b = append(b, tag1(fieldProposalTimestamp, protowire.VarintType))
		b = appendVarint(b, uint64(ts))
	}
	return b
}

// kvTarget returns a's KV when a is an action the hand encoder writes: a
// non-nil KV target, and no unknown fields in the action, the KV or its
// meta, and a valid UTF-8 key (proto.Marshal fails on an invalid one, and
// is left to say so).
func kvTarget(a *api.StoreAction) (*api.KV, bool) {
	t, ok := a.GetTarget().(*api.StoreAction_Kv)
	if !ok || t.Kv == nil || a.HasUnknownFields() || t.Kv.HasUnknownFields() || !validUTF8String(t.Kv.Key) {
		return nil, false
	}
	if m := t.Kv.Meta; m != nil && m.HasUnknownFields() {
		return nil, false
	}
	return t.Kv, true
}

// kvActionSize is the encoded size of a KV action, when kvTarget takes it.
func kvActionSize(a *api.StoreAction) (int, bool) {
	kv, ok := kvTarget(a)
	if !ok {
		return 0, false
	}
	return kvActionSizeOf(a.Kind, kvSize(kv.Key, kv.Meta, len(kv.Value))), true
}

// kvActionSizeOf is the encoded size of the action of kind on a KV of
// the given encoded size.
func kvActionSizeOf(kind api.StoreAction_Kind, size int) int {
	n := 0
	if kind != 0 {
		n += protowire.SizeTag(fieldActionKind) + protowire.SizeVarint(uint64(int64(kind)))
	}
	return n + protowire.SizeTag(fieldActionKV) + protowire.SizeBytes(size)
}

// appendKVProposal is appendProposal of the one action of kind on the KV
// of key, meta and value, which the hand encoder takes (see kvTarget),
// without building the KV or the action.
func appendKVProposal[V string | []byte](buf []byte, ts int64, kind api.StoreAction_Kind, key string, meta *api.Meta, value V) []byte {
	n := kvActionSizeOf(kind, kvSize(key, meta, len(value)))
	size := protowire.SizeTag(fieldProposalActions) + protowire.SizeBytes(n)
	if ts != 0 {
		size += protowire.SizeTag(fieldProposalTimestamp) + protowire.SizeVarint(uint64(ts))
	}
	b := startProposal(buf, size, ts)
	b = append(b, tag1(fieldProposalActions, protowire.BytesType))
	b = appendVarint(b, uint64(n))
	return appendKV(b, kind, key, meta, value)
}

// kvSize is the encoded size of the KV of key, meta (nil for none) and a
// value of valueLen bytes.
func kvSize(key string, meta *api.Meta, valueLen int) int {
	n := 0
	if key != "" {
		n += protowire.SizeTag(fieldKVKey) + protowire.SizeBytes(len(key))
	}
	if meta != nil {
		n += protowire.SizeTag(fieldKVMeta) + protowire.SizeBytes(metaSize(meta))
	}
	if valueLen > 0 {
		n += protowire.SizeTag(fieldKVValue) + protowire.SizeBytes(valueLen)
	}
	return n
}

func metaSize(m *api.Meta) int {
	n := 0
	if m.Version != 0 {
		n += protowire.SizeTag(fieldMetaVersion) + protowire.SizeVarint(m.Version)
	}
	if m.CreatedAt != 0 {
		n += protowire.SizeTag(fieldMetaCreatedAt) + protowire.SizeVarint(uint64(m.CreatedAt))
	}
	if m.UpdatedAt != 0 {
		n += protowire.SizeTag(fieldMetaUpdatedAt) + protowire.SizeVarint(uint64(m.UpdatedAt))
	}
	return n
}

// appendKVAction appends a KV action (kvTarget took it) as proto.Marshal
// would: fields in number order, proto3 zero values left out.
func appendKVAction(b []byte, a *api.StoreAction) []byte {
	kv := a.GetKv()
	return appendKV(b, a.Kind, kv.Key, kv.Meta, kv.Value)
}

// appendKV appends the action of kind on the KV of key, meta (nil for
// none) and value, as appendKVAction.
func appendKV[V string | []byte](b []byte, kind api.StoreAction_Kind, key string, meta *api.Meta, value V) []byte {
	if kind != 0 {
		b = append(b, tag1(fieldActionKind, protowire.VarintType))
		b = appendVarint(b, uint64(int64(kind)))
	}
	b = append(b, tag1(fieldActionKV, protowire.BytesType))
	b = appendVarint(b, uint64(kvSize(key, meta, len(value))))
	if key != "" {
		b = append(b, tag1(fieldKVKey, protowire.BytesType))
		b = appendVarint(b, uint64(len(key)))
		b = append(b, key...)
	}
	if m := meta; m != nil {
		b = append(b, tag1(fieldKVMeta, protowire.BytesType))
		b = appendVarint(b, uint64(metaSize(m)))
		if m.Version != 0 {
			b = append(b, tag1(fieldMetaVersion, protowire.VarintType))
			b = appendVarint(b, m.Version)
		}
		if m.CreatedAt != 0 {
			b = append(b, tag1(fieldMetaCreatedAt, protowire.VarintType))
			b = appendVarint(b, uint64(m.CreatedAt))
		}
		if m.UpdatedAt != 0 {
			b = append(b, tag1(fieldMetaUpdatedAt, protowire.VarintType))
			b = appendVarint(b, uint64(m.UpdatedAt))
		}
	}
	if len(value) > 0 {
		b = append(b, tag1(fieldKVValue, protowire.BytesType))
		b = appendVarint(b, uint64(len(value)))
		b = append(b, value...)
	}
	return b
}
