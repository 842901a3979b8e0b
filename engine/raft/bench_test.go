package raft_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// counter is the cheapest state machine: the benchmarks measure raft and
// the driver, not the store.
type counter struct{ n uint64 }

func (c *counter) Apply(uint64, []byte, raft.Proposal) (any, error) { c.n++; return nil, nil }
func (c *counter) Snapshot() ([]byte, error)                        { return []byte(fmt.Sprint(c.n)), nil }
func (c *counter) Restore([]byte) error                             { return nil }

const (
	benchWindow  = 256 // proposals kept in flight
	benchPayload = 128 // bytes per proposal, about one small store write
)

// BenchmarkDriverWrites measures committed writes through the driver on
// simulated managers (network latency 0.5-2ms, disk sync 1-3ms), with a
// window of proposals in flight on the leader. writes/s is per second of
// real time (the cost of the code); virtual-writes/s is per simulated
// second (what the protocol achieves under the simulated latencies).
func BenchmarkDriverWrites(b *testing.B) {
	for _, nodes := range []int{3, 5} {
		for _, pack := range []bool{false, true} {
			name := fmt.Sprintf("nodes=%d/unbatched", nodes)
			if pack {
				name = fmt.Sprintf("nodes=%d/batched", nodes)
			}
			b.Run(name, func(b *testing.B) { benchDriver(b, nodes, pack) })
		}
	}
}

func benchDriver(b *testing.B, nodes int, pack bool) {
	k := sim.NewKernel(1)
	defer k.Activate()()
	cfg := testConfig()
	cfg.EntryPerProposal = !pack
	c := buildCluster(b, k, nodes, cfg, func() raft.StateMachine { return &counter{} })
	l := c.waitLeader()
	payload := make([]byte, benchPayload)
	inflight, completed, issued := 0, 0, 0
	var failed error
	done := func(_ any, err error) {
		inflight--
		completed++
		if err != nil && failed == nil {
			failed = err
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := k.Now()
	for completed < b.N {
		for inflight < benchWindow && issued < b.N {
			l.r.Propose(payload, raft.DoneFunc(done))
			inflight++
			issued++
		}
		if !k.Step() {
			b.Fatal("simulation ran out of events")
		}
	}
	b.StopTimer()
	if failed != nil {
		b.Fatalf("a write failed: %v", failed)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	b.ReportMetric(float64(b.N)/(k.Now()-start).Seconds(), "virtual-writes/s")
	b.ReportMetric(float64(l.r.Stats().EntriesCommitted)/float64(b.N), "entries/write")
}

// BenchmarkRawNodeBaseline is the floor the driver is compared with: raw
// RawNodes over MemoryStorage handing each other messages directly in
// memory, with no driver, no disk, no latency and no simulator, the same
// window of proposals and one entry per proposal. propose-each calls
// RawNode.Propose per write, which makes raft broadcast an append per
// write; one-msgprop steps each refill of the window as one MsgProp, as
// the driver does with the proposals of a loop turn.
func BenchmarkRawNodeBaseline(b *testing.B) {
	for _, nodes := range []int{3, 5} {
		b.Run(fmt.Sprintf("nodes=%d/propose-each", nodes), func(b *testing.B) { benchRaw(b, nodes, false) })
		b.Run(fmt.Sprintf("nodes=%d/one-msgprop", nodes), func(b *testing.B) { benchRaw(b, nodes, true) })
	}
}

type rawPeer struct {
	id    uint64
	rn    *etcdraft.RawNode
	ms    *etcdraft.MemoryStorage
	inbox []*pb.Message
}

func benchRaw(b *testing.B, nodes int, oneMsg bool) {
	peers := make([]*rawPeer, nodes)
	var ps []etcdraft.Peer
	for i := range peers {
		ps = append(ps, etcdraft.Peer{ID: uint64(i + 1)})
	}
	byID := map[uint64]*rawPeer{}
	for i := range peers {
		ms := etcdraft.NewMemoryStorage()
		rn, err := etcdraft.NewRawNode(&etcdraft.Config{
			ID: uint64(i + 1), ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, CheckQuorum: true, PreVote: true,
			Logger: quiet{},
		})
		if err != nil {
			b.Fatal(err)
		}
		if err := rn.Bootstrap(ps); err != nil {
			b.Fatal(err)
		}
		peers[i] = &rawPeer{id: uint64(i + 1), rn: rn, ms: ms}
		byID[peers[i].id] = peers[i]
	}
	leader := peers[0]
	var committed int
	pump := func() bool {
		moved := false
		for _, p := range peers {
			for _, m := range p.inbox {
				_ = p.rn.Step(m)
			}
			if len(p.inbox) > 0 {
				moved = true
			}
			p.inbox = p.inbox[:0]
			for p.rn.HasReady() {
				moved = true
				rd := p.rn.Ready()
				if !etcdraft.IsEmptySnap(rd.Snapshot) {
					_ = p.ms.ApplySnapshot(rd.Snapshot)
				}
				_ = p.ms.Append(rd.Entries)
				if !etcdraft.IsEmptyHardState(rd.HardState) {
					_ = p.ms.SetHardState(rd.HardState)
				}
				for _, m := range rd.Messages {
					t := byID[m.GetTo()]
					t.inbox = append(t.inbox, m)
				}
				for _, e := range rd.CommittedEntries {
					switch e.GetType() {
					case pb.EntryConfChange:
						var cc pb.ConfChange
						_ = proto.Unmarshal(e.GetData(), &cc)
						p.rn.ApplyConfChange(&cc)
					case pb.EntryNormal:
						if p == leader && len(e.GetData()) > 0 {
							committed++
						}
					}
				}
				if n := len(rd.CommittedEntries); n > 0 {
					if last := rd.CommittedEntries[n-1].GetIndex(); last%10000 == 0 && last > 1000 {
						_ = p.ms.Compact(last - 1000)
					}
				}
				p.rn.Advance(rd)
			}
		}
		return moved
	}
	for pump() { // apply the bootstrap entries: raft will not campaign before
	}
	_ = leader.rn.Campaign()
	for i := 0; i < 100 && leader.rn.BasicStatus().RaftState != etcdraft.StateLeader; i++ {
		pump()
	}
	if leader.rn.BasicStatus().RaftState != etcdraft.StateLeader {
		b.Fatal("no leader")
	}
	for pump() {
	}
	payload := make([]byte, benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	issued := 0
	for committed < b.N {
		var ents []*pb.Entry
		for issued < b.N && issued-committed < benchWindow {
			if oneMsg {
				ents = append(ents, &pb.Entry{Data: payload})
			} else if err := leader.rn.Propose(payload); err != nil {
				b.Fatal(err)
			}
			issued++
		}
		if len(ents) > 0 {
			if err := leader.rn.Step(&pb.Message{Type: pb.MsgProp.Enum(), From: new(leader.id), Entries: ents}); err != nil {
				b.Fatal(err)
			}
		}
		pump()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

type quiet struct{}

func (quiet) Debug(...any)            {}
func (quiet) Debugf(string, ...any)   {}
func (quiet) Info(...any)             {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Warning(...any)          {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Error(...any)            {}
func (quiet) Errorf(string, ...any)   {}
func (quiet) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (quiet) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (quiet) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (quiet) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
