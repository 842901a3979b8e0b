package store

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"

	"github.com/swarmsim/swarmsim/engine/api"
)

// checkEncode fails unless encodeProposal gives exactly marshalOptions'
// bytes, or fails where it fails.
func checkEncode(t tb, ts int64, actions []*api.StoreAction) {
	got, err := encodeProposal(ts, actions)
	want, wantErr := marshalOptions.Marshal(&api.Proposal{Timestamp: ts, Actions: actions})
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("encodeProposal error %v, proto error %v", err, wantErr)
	}
	if err == nil && !bytes.Equal(got, want) {
		t.Fatalf("encodeProposal\n%x\nproto.Marshal\n%x", got, want)
	}
}

// The hand encoder writes what proto.Marshal writes, byte for byte, for
// every shape of KV action and any mix with other actions.
func TestEncodeProposal(t *testing.T) {
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)
	withUnknown := func(m proto.Message) proto.Message {
		m.ProtoReflect().SetUnknown(unknown)
		return m
	}
	kvAction := func(kind api.StoreAction_Kind, kv *api.KV) *api.StoreAction {
		return &api.StoreAction{Kind: kind, Target: &api.StoreAction_Kv{Kv: kv}}
	}
	cases := map[string][]*api.StoreAction{
		"none":           nil,
		"create":         {kvAction(api.StoreAction_CREATE, &api.KV{Key: "k", Value: []byte("v")})},
		"update":         {kvAction(api.StoreAction_UPDATE, &api.KV{Key: "k", Meta: &api.Meta{Version: 300}, Value: []byte("v")})},
		"empty meta":     {kvAction(api.StoreAction_UPDATE, &api.KV{Key: "k", Meta: &api.Meta{}})},
		"full meta":      {kvAction(api.StoreAction_DELETE, &api.KV{Key: "k", Meta: &api.Meta{Version: 1, CreatedAt: -5, UpdatedAt: 1 << 40}})},
		"empty kv":       {kvAction(api.StoreAction_CREATE, &api.KV{})},
		"nil kv":         {kvAction(api.StoreAction_CREATE, nil)},
		"odd kind":       {kvAction(-3, &api.KV{Key: "k"}), kvAction(7, &api.KV{Key: "k"})},
		"bad utf-8":      {kvAction(api.StoreAction_CREATE, &api.KV{Key: "\xff"})},
		"utf-8 key":      {kvAction(api.StoreAction_CREATE, &api.KV{Key: "clé"})},
		"empty value":    {kvAction(api.StoreAction_CREATE, &api.KV{Key: "k", Value: []byte{}})},
		"no target":      {{Kind: api.StoreAction_UPDATE}},
		"unknown kv":     {kvAction(api.StoreAction_CREATE, withUnknown(&api.KV{Key: "k"}).(*api.KV))},
		"unknown meta":   {kvAction(api.StoreAction_UPDATE, &api.KV{Key: "k", Meta: withUnknown(&api.Meta{Version: 2}).(*api.Meta)})},
		"unknown action": {withUnknown(kvAction(api.StoreAction_CREATE, &api.KV{Key: "k"})).(*api.StoreAction)},
		"mixed": {
			aCreate(node("n1", "a")),
			kvAction(api.StoreAction_UPDATE, &api.KV{Key: "k", Meta: &api.Meta{Version: 3}, Value: bytes.Repeat([]byte("x"), 200)}),
			aStatus("t1", running, 4),
			aAssign("t1", "n1", 2),
		},
	}
	for name, actions := range cases {
		for _, ts := range []int64{0, 1, -1, 1 << 62} {
			t.Run(name, func(t *testing.T) { checkEncode(t, ts, actions) })
		}
	}
	many := make([]*api.StoreAction, 20) // more than encodeProposal's stack sizes
	for i := range many {
		many[i] = kvAction(api.StoreAction_UPDATE, &api.KV{Key: string(rune('a' + i)), Meta: &api.Meta{Version: uint64(i)}})
	}
	checkEncode(t, 5, many)
}

// Random workloads encode as proto.Marshal encodes them.
func TestEncodeProposalProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		s := baseStore(rt)
		g := gen{c: rapidChooser{rt}, s: s}
		for range 5 {
			p := g.proposal()
			checkEncode(rt, p.Timestamp, p.Actions)
			_, _ = s.Apply(s.AppliedIndex()+1, g.encode(p), nil)
		}
	})
}

// What Update encodes for a KV write, the hand decoder takes: a KV write
// never goes through proto.Unmarshal on apply.
func TestDecodeKVAction(t *testing.T) {
	s := baseStore(t)
	actions := []*api.StoreAction{
		aCreate(&api.KV{Key: "k1", Value: []byte("v")}),
		aUpdate(withVersion(&api.KV{Key: "k2", Value: []byte("w")}, 7)),
		aDelete(KindKV, "k3", 0),
		aCreate(&api.KV{Key: "k4"}),
	}
	data, err := encodeProposal(9, actions)
	if err != nil {
		t.Fatal(err)
	}
	ts, ops, err := s.c.decodeProposal(data, nil)
	if err != nil || ts != 9 || len(ops) != len(actions) {
		t.Fatalf("ts %d, %d ops, %v", ts, len(ops), err)
	}
	for i, o := range ops {
		if o.kind != opKV {
			t.Fatalf("action %d decoded as op kind %d", i, o.kind)
		}
		if !proto.Equal(o.action(), actions[i]) {
			t.Fatalf("action %d: %v, want %v", i, o.action(), actions[i])
		}
	}
}
