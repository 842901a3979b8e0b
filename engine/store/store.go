package store

import (
	"iter"

	"github.com/swarmsim/swarmsim/engine/api"
	"github.com/swarmsim/swarmsim/engine/env"
)

// Proposer takes an encoded proposal towards raft. It is implemented by the
// raft driver (engine/raft) and by Loopback. Propose never blocks; p.Done
// is called exactly once, on the node's loop: with the result Apply
// returned for the entry once it is applied on this node, or with an error
// if the entry will not be applied here (leadership lost, proposal
// dropped). A proposal whose Done reports an error may still have been
// committed. Until then, the proposer may hand p back to Apply as own.
type Proposer interface {
	Propose(data []byte, p Proposal)
}

// Proposal is one proposal's owner, as the proposer sees it: the same type
// as raft.Proposal (both are aliases), named here so that the store does
// not depend on the raft driver.
type Proposal = interface {
	Done(result any, err error)
}

// DefaultMaxProposalBytes bounds an encoded proposal unless
// SetMaxProposalBytes says otherwise. 100,000 task assignments take about
// 6 MiB; a transaction larger than the bound fails with ErrProposalTooLarge
// and must be split.
const DefaultMaxProposalBytes = 64 << 20

// Store is the in-memory store of one node. Reads are direct method calls;
// writes go through Update and come back through Apply. See the package
// documentation.
type Store struct {
	clock            env.Clock
	proposer         Proposer
	maxProposalBytes int

	c       *content
	applied uint64

	// apply state, reused from one proposal to the next
	ops     []op
	log     []Event
	slab    []Event // what newLog carves logs from
	touched map[kindID]uint64
	// logKinds is the kinds of the events in log.
	logKinds KindSet
	// lone: the proposal applying has one action, which never needs
	// undoing (every check comes before its change).
	lone bool

	watchers []*watcher
	// watchKinds is the kinds some watcher looks at (a cancelled one's
	// too, until the watchers are compacted).
	watchKinds  KindSet
	dispatching int
	dirty       bool // a watcher was cancelled during a dispatch

	stats Stats
}

// content is everything a snapshot holds, with its indexes. Restore builds
// a new content and swaps it in.
type content struct {
	nodes     *table[*api.Node]
	services  *table[*api.Service]
	tasks     *table[*api.Task]
	networks  *table[*api.Network]
	clusters  *table[*api.Cluster]
	secrets   *table[*api.Secret]
	configs   *table[*api.Config]
	kvs       kvTable
	tables    [NumKinds]anyTable // indexed by Kind; tables[KindNone] is nil
	taskIdx   *taskIndex
	nodeNames nodeNameIndex
	// removedNodes is how many node objects are marked removed, so that
	// the admission check of every inbound message skips its lookup while
	// there are none.
	removedNodes int
	// nodeWrites counts the writes to node objects; Restore starts the new
	// content past the old one's count, so it never goes back.
	nodeWrites uint64
}

func newContent() *content {
	c := &content{
		nodes:     newTable[*api.Node](KindNode),
		services:  newTable[*api.Service](KindService),
		tasks:     newTable[*api.Task](KindTask),
		networks:  newTable[*api.Network](KindNetwork),
		clusters:  newTable[*api.Cluster](KindCluster),
		secrets:   newTable[*api.Secret](KindSecret),
		configs:   newTable[*api.Config](KindConfig),
		kvs:       kvTable{newTable[*api.KV](KindKV)},
		taskIdx:   newTaskIndex(),
		nodeNames: make(nodeNameIndex),
	}
	c.tasks.onChange = c.taskIdx.change
	c.nodes.onChange = func(r *rec[*api.Node], old, new *api.Node) {
		c.nodeWrites++
		if old.GetRemoved() {
			c.removedNodes--
		}
		if new.GetRemoved() {
			c.removedNodes++
		}
		c.nodeNames.change(r, old, new)
	}
	c.tables = [NumKinds]anyTable{
		KindNode:    c.nodes,
		KindService: c.services,
		KindTask:    c.tasks,
		KindNetwork: c.networks,
		KindCluster: c.clusters,
		KindSecret:  c.secrets,
		KindConfig:  c.configs,
		KindKV:      c.kvs,
	}
	return c
}

// New returns an empty store whose transactions take their timestamps from
// clock. Call SetProposer before the first Update.
func New(clock env.Clock) *Store {
	return &Store{clock: clock, maxProposalBytes: DefaultMaxProposalBytes, c: newContent()}
}

// SetProposer sets where Update sends proposals: the raft driver, or a
// Loopback.
func (s *Store) SetProposer(p Proposer) { s.proposer = p }

// SetMaxProposalBytes bounds the size of an encoded proposal; n <= 0 means
// DefaultMaxProposalBytes.
func (s *Store) SetMaxProposalBytes(n int) {
	if n <= 0 {
		n = DefaultMaxProposalBytes
	}
	s.maxProposalBytes = n
}

// AppliedIndex is the index of the last entry given to Apply. After Restore
// it is the highest meta.version in the snapshot, a lower bound of the
// snapshot's index (the snapshot bytes do not carry the index).
func (s *Store) AppliedIndex() uint64 { return s.applied }

// Stats are counters for metrics.
type Stats struct {
	AppliedIndex uint64
	// Objects counts the stored objects by kind (Objects[KindTask]...).
	Objects [NumKinds]int
	// Proposals counts the proposals Apply decoded, applied or rejected;
	// Actions sums their actions (Actions/Proposals is the mean batch).
	Proposals, Actions uint64
	// Conflicts counts proposals rejected as a whole (a version, existence
	// or name check failed).
	Conflicts uint64
	// SkippedActions counts compact actions applied as no-ops: status
	// updates that would move a task backwards or name a gone task, and
	// assignments whose guard failed.
	SkippedActions uint64
	// OwnApplied counts the proposals applied from the WriteKV call that
	// made them, on the store that proposed them, instead of decoded (see
	// Apply).
	OwnApplied uint64
	// DecodeErrors counts entries Apply could not decode.
	DecodeErrors uint64
	Restores     uint64
	Watchers     int
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := s.stats
	st.AppliedIndex = s.applied
	for _, k := range Kinds {
		st.Objects[k] = s.c.tables[k].len()
	}
	st.Watchers = 0
	for _, w := range s.watchers {
		if !w.cancelled {
			st.Watchers++
		}
	}
	return st
}

// Reader is the read side shared by the Store and a Tx, so that code that
// computes what to write can run against either. Objects returned must not
// be modified. Lists are in ID order and are new slices the caller owns
// (the objects in them are still shared and immutable).
type Reader interface {
	Get(k Kind, id string) Object

	Node(id string) *api.Node
	Service(id string) *api.Service
	Task(id string) *api.Task
	Network(id string) *api.Network
	Cluster(id string) *api.Cluster
	Secret(id string) *api.Secret
	Config(id string) *api.Config
	KV(key string) *api.KV

	ServiceByName(name string) *api.Service
	NetworkByName(name string) *api.Network
	SecretByName(name string) *api.Secret
	ConfigByName(name string) *api.Config
	// NodesByName lists the nodes named name (node names are not unique).
	NodesByName(name string) []*api.Node

	Nodes() []*api.Node
	Services() []*api.Service
	Tasks() []*api.Task
	Networks() []*api.Network
	Clusters() []*api.Cluster
	Secrets() []*api.Secret
	Configs() []*api.Config
	KVs() []*api.KV

	TasksByService(serviceID string) []*api.Task
	// TasksByNode lists the tasks on a node. The empty node ID lists the
	// tasks on no node, by scanning every task: O(all tasks).
	TasksByNode(nodeID string) []*api.Task
	// TasksBySlot lists a service's tasks for one slot (several, when old
	// tasks of the slot are kept as history).
	TasksBySlot(serviceID string, slot uint64) []*api.Task
}

var _ Reader = (*Store)(nil)
var _ Reader = (*Tx)(nil)

// Get returns the object of kind k with the given ID, or nil.
func (s *Store) Get(k Kind, id string) Object {
	if k == KindNone || k >= NumKinds {
		return nil
	}
	return s.c.tables[k].get(id)
}

func (s *Store) Node(id string) *api.Node { return s.c.nodes.lookup(id) }

// NodeWrites changes whenever a node object is created, updated or
// deleted, or the store restored: what was read of nodes at one count
// still holds while the count is the same.
func (s *Store) NodeWrites() uint64 { return s.c.nodeWrites }

// NodeRemoved reports whether the node with the given ID is stored and
// marked removed; while no node is, it answers without a lookup.
func (s *Store) NodeRemoved(id string) bool {
	if s.c.removedNodes == 0 {
		return false
	}
	return s.c.nodes.lookup(id).GetRemoved()
}
func (s *Store) Service(id string) *api.Service { return s.c.services.lookup(id) }
func (s *Store) Task(id string) *api.Task       { return s.c.tasks.lookup(id) }
func (s *Store) Network(id string) *api.Network { return s.c.networks.lookup(id) }
func (s *Store) Cluster(id string) *api.Cluster { return s.c.clusters.lookup(id) }
func (s *Store) Secret(id string) *api.Secret   { return s.c.secrets.lookup(id) }
func (s *Store) Config(id string) *api.Config   { return s.c.configs.lookup(id) }
func (s *Store) KV(key string) *api.KV          { return s.c.kvs.lookup(key) }

func (s *Store) ServiceByName(name string) *api.Service { return s.c.services.byName(name) }
func (s *Store) NetworkByName(name string) *api.Network { return s.c.networks.byName(name) }
func (s *Store) SecretByName(name string) *api.Secret   { return s.c.secrets.byName(name) }
func (s *Store) ConfigByName(name string) *api.Config   { return s.c.configs.byName(name) }
func (s *Store) NodesByName(name string) []*api.Node {
	if name == "" {
		return nil
	}
	return s.c.nodeNames[name].list()
}

func (s *Store) Nodes() []*api.Node       { return s.c.nodes.all.list() }
func (s *Store) Services() []*api.Service { return s.c.services.all.list() }
func (s *Store) Tasks() []*api.Task       { return s.c.tasks.all.list() }
func (s *Store) Networks() []*api.Network { return s.c.networks.all.list() }
func (s *Store) Clusters() []*api.Cluster { return s.c.clusters.all.list() }
func (s *Store) Secrets() []*api.Secret   { return s.c.secrets.all.list() }
func (s *Store) Configs() []*api.Config   { return s.c.configs.all.list() }
func (s *Store) KVs() []*api.KV           { return s.c.kvs.list() }

func (s *Store) TasksByService(serviceID string) []*api.Task {
	return s.c.taskIdx.byService[serviceID].list()
}

func (s *Store) TasksByNode(nodeID string) []*api.Task {
	if nodeID == "" {
		var out []*api.Task
		for t := range s.EachTaskByNode("") {
			out = append(out, t)
		}
		return out
	}
	return s.c.taskIdx.byNode[nodeID].list()
}

func (s *Store) TasksBySlot(serviceID string, slot uint64) []*api.Task {
	if slot == 0 {
		var out []*api.Task
		for t := range s.EachTaskByService(serviceID) {
			if t.Slot == 0 {
				out = append(out, t)
			}
		}
		return out
	}
	return s.c.taskIdx.bySlot[slotKey{serviceID, slot}].list()
}

// Iterators walk an index in ID order without allocating a slice. The
// store must not change while one runs: do not apply entries (a
// synchronous Loopback would) from inside the loop.

// EachNode yields every node in ID order.
func (s *Store) EachNode() iter.Seq[*api.Node] { return s.c.nodes.all.all() }

// EachService yields every service in ID order.
func (s *Store) EachService() iter.Seq[*api.Service] { return s.c.services.all.all() }

// EachTask yields every task in ID order.
func (s *Store) EachTask() iter.Seq[*api.Task] { return s.c.tasks.all.all() }

// EachTaskByService yields a service's tasks in ID order.
func (s *Store) EachTaskByService(serviceID string) iter.Seq[*api.Task] {
	return eachIn(s.c.taskIdx.byService[serviceID])
}

// EachTaskByNode yields a node's tasks in ID order. The empty node ID
// yields the tasks on no node, by scanning every task.
func (s *Store) EachTaskByNode(nodeID string) iter.Seq[*api.Task] {
	if nodeID == "" {
		return func(yield func(*api.Task) bool) {
			for t := range s.EachTask() {
				if t.NodeId == "" && !yield(t) {
					return
				}
			}
		}
	}
	return eachIn(s.c.taskIdx.byNode[nodeID])
}

// CountTasksByService returns the number of a service's tasks, in O(1).
func (s *Store) CountTasksByService(serviceID string) int {
	return s.c.taskIdx.byService[serviceID].lenOrZero()
}

// CountTasksByNode returns the number of tasks on a node, in O(1) (for the
// empty node ID, in O(all tasks)).
func (s *Store) CountTasksByNode(nodeID string) int {
	if nodeID == "" {
		n := 0
		for range s.EachTaskByNode("") {
			n++
		}
		return n
	}
	return s.c.taskIdx.byNode[nodeID].lenOrZero()
}

func eachIn[T any](set *recSet[T]) iter.Seq[T] {
	if set == nil {
		return func(func(T) bool) {}
	}
	return set.all()
}

func (s *recSet[T]) lenOrZero() int {
	if s == nil {
		return 0
	}
	return s.n
}
