package store

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/swarmsim/swarmsim/engine/api"
)

// Kind names a kind of stored object.
type Kind uint8

const (
	KindNone Kind = iota // not an object kind (a Restore event)
	KindNode
	KindService
	KindTask
	KindNetwork
	KindCluster
	KindSecret
	KindConfig
	KindKV
	NumKinds // the size of arrays indexed by Kind
)

// Kinds lists every object kind, in the order snapshots hold them.
var Kinds = [...]Kind{KindNode, KindService, KindTask, KindNetwork, KindCluster, KindSecret, KindConfig, KindKV}

var kindNames = [NumKinds]string{"none", "node", "service", "task", "network", "cluster", "secret", "config", "kv"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// uniqueName reports whether objects of kind k have unique names.
func (k Kind) uniqueName() bool {
	return k == KindService || k == KindNetwork || k == KindSecret || k == KindConfig
}

// Object is a stored object: *api.Node, *api.Service, *api.Task,
// *api.Network, *api.Cluster, *api.Secret, *api.Config or *api.KV.
type Object interface {
	proto.Message
	GetMeta() *api.Meta
}

// KindOf returns o's kind, or KindNone if o is not a stored kind (or nil).
func KindOf(o Object) Kind {
	switch o.(type) {
	case *api.Node:
		return KindNode
	case *api.Service:
		return KindService
	case *api.Task:
		return KindTask
	case *api.Network:
		return KindNetwork
	case *api.Cluster:
		return KindCluster
	case *api.Secret:
		return KindSecret
	case *api.Config:
		return KindConfig
	case *api.KV:
		return KindKV
	}
	return KindNone
}

// ID returns o's ID (a KV's key). It returns "" for a nil object.
func ID(o Object) string {
	switch v := o.(type) {
	case *api.Node:
		return v.GetId()
	case *api.Service:
		return v.GetId()
	case *api.Task:
		return v.GetId()
	case *api.Network:
		return v.GetId()
	case *api.Cluster:
		return v.GetId()
	case *api.Secret:
		return v.GetId()
	case *api.Config:
		return v.GetId()
	case *api.KV:
		return v.GetKey()
	}
	return ""
}

// Name returns the name o is indexed by (spec.name), or "" for kinds
// without a name index. Empty names are not indexed.
func Name(o Object) string {
	switch v := o.(type) {
	case *api.Node:
		return v.GetSpec().GetName()
	case *api.Service:
		return v.GetSpec().GetName()
	case *api.Network:
		return v.GetSpec().GetName()
	case *api.Secret:
		return v.GetSpec().GetName()
	case *api.Config:
		return v.GetSpec().GetName()
	}
	return ""
}

// metaVersion is o's meta.version, 0 for a nil object.
func metaVersion(o Object) uint64 {
	if o == nil {
		return 0
	}
	return o.GetMeta().GetVersion()
}

// setMeta replaces o's meta. o must be an object the store owns (freshly
// decoded), never a reader's.
func setMeta(o Object, m *api.Meta) {
	switch v := o.(type) {
	case *api.Node:
		v.Meta = m
	case *api.Service:
		v.Meta = m
	case *api.Task:
		v.Meta = m
	case *api.Network:
		v.Meta = m
	case *api.Cluster:
		v.Meta = m
	case *api.Secret:
		v.Meta = m
	case *api.Config:
		v.Meta = m
	case *api.KV:
		v.Meta = m
	}
}

// tombstone returns a new object of kind k carrying only an ID and a
// version: what a DELETE action needs.
func tombstone(k Kind, id string, ver uint64) Object {
	m := &api.Meta{Version: ver}
	switch k {
	case KindNode:
		return &api.Node{Id: id, Meta: m}
	case KindService:
		return &api.Service{Id: id, Meta: m}
	case KindTask:
		return &api.Task{Id: id, Meta: m}
	case KindNetwork:
		return &api.Network{Id: id, Meta: m}
	case KindCluster:
		return &api.Cluster{Id: id, Meta: m}
	case KindSecret:
		return &api.Secret{Id: id, Meta: m}
	case KindConfig:
		return &api.Config{Id: id, Meta: m}
	case KindKV:
		return &api.KV{Key: id, Meta: m}
	}
	return nil
}

// kvAction is a StoreAction of a KV with its target wrapper, allocated
// together.
type kvAction struct {
	a api.StoreAction
	t api.StoreAction_Kv
}

// wrap makes b the action of kind on v and returns it.
func (b *kvAction) wrap(kind api.StoreAction_Kind, v *api.KV) *api.StoreAction {
	b.a.Kind, b.t.Kv = kind, v
	b.a.Target = &b.t
	return &b.a
}

// newAction wraps o in a StoreAction.
func newAction(kind api.StoreAction_Kind, o Object) *api.StoreAction {
	if v, ok := o.(*api.KV); ok {
		// KV writes are the small, frequent ones: one allocation.
		return new(kvAction).wrap(kind, v)
	}
	a := &api.StoreAction{Kind: kind}
	switch v := o.(type) {
	case *api.Node:
		a.Target = &api.StoreAction_Node{Node: v}
	case *api.Service:
		a.Target = &api.StoreAction_Service{Service: v}
	case *api.Task:
		a.Target = &api.StoreAction_Task{Task: v}
	case *api.Network:
		a.Target = &api.StoreAction_Network{Network: v}
	case *api.Cluster:
		a.Target = &api.StoreAction_Cluster{Cluster: v}
	case *api.Secret:
		a.Target = &api.StoreAction_Secret{Secret: v}
	case *api.Config:
		a.Target = &api.StoreAction_Config{Config: v}
	case *api.KV:
		a.Target = &api.StoreAction_Kv{Kv: v}
	}
	return a
}

// actionObject returns the object a full-object action carries, or nil
// when the action carries none (a compact action, or no target). A nil
// pointer inside the oneof also yields nil.
func actionObject(a *api.StoreAction) Object {
	switch t := a.GetTarget().(type) {
	case *api.StoreAction_Node:
		if t.Node != nil {
			return t.Node
		}
	case *api.StoreAction_Service:
		if t.Service != nil {
			return t.Service
		}
	case *api.StoreAction_Task:
		if t.Task != nil {
			return t.Task
		}
	case *api.StoreAction_Network:
		if t.Network != nil {
			return t.Network
		}
	case *api.StoreAction_Cluster:
		if t.Cluster != nil {
			return t.Cluster
		}
	case *api.StoreAction_Secret:
		if t.Secret != nil {
			return t.Secret
		}
	case *api.StoreAction_Config:
		if t.Config != nil {
			return t.Config
		}
	case *api.StoreAction_Kv:
		if t.Kv != nil {
			return t.Kv
		}
	}
	return nil
}
