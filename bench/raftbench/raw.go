package raftbench

import (
	"errors"
	"fmt"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"

	"google.golang.org/protobuf/proto"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// RawCluster is etcd raft alone: RawNodes over MemoryStorage handing each
// other messages directly, with no driver, no disk, no network model and
// no simulator, one entry per write. It is the floor the store path is
// compared with.
type RawCluster struct {
	peers   []*rawPeer
	byID    map[uint64]*rawPeer
	leader  *rawPeer
	payload []byte
	window  int
	// committed counts the normal entries with data the leader applied.
	committed int
}

type rawPeer struct {
	id    uint64
	rn    *etcdraft.RawNode
	ms    *etcdraft.MemoryStorage
	inbox []*pb.Message
}

// NewRawCluster boots nodes RawNodes, elects the first, and prepares
// writes of payloadBytes each, window in flight.
func NewRawCluster(nodes, payloadBytes, window int) (*RawCluster, error) {
	if nodes <= 0 || payloadBytes <= 0 || window <= 0 {
		return nil, fmt.Errorf("raftbench: raw cluster of %d nodes, %d-byte writes, window %d", nodes, payloadBytes, window)
	}
	r := &RawCluster{byID: map[uint64]*rawPeer{}, payload: make([]byte, payloadBytes), window: window}
	var ps []etcdraft.Peer
	for i := range nodes {
		ps = append(ps, etcdraft.Peer{ID: uint64(i + 1)})
	}
	for i := range nodes {
		ms := etcdraft.NewMemoryStorage()
		// The driver's settings, so that raft does the same work per write.
		rn, err := etcdraft.NewRawNode(&etcdraft.Config{
			ID: uint64(i + 1), ElectionTick: 10, HeartbeatTick: 1, Storage: ms,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, MaxUncommittedEntriesSize: 64 << 20,
			CheckQuorum: true, PreVote: true, Logger: quiet{},
		})
		if err != nil {
			return nil, fmt.Errorf("raftbench: %w", err)
		}
		if err := rn.Bootstrap(ps); err != nil {
			return nil, fmt.Errorf("raftbench: %w", err)
		}
		p := &rawPeer{id: uint64(i + 1), rn: rn, ms: ms}
		r.peers = append(r.peers, p)
		r.byID[p.id] = p
	}
	r.leader = r.peers[0]
	for r.pump() { // apply the bootstrap entries: raft will not campaign before
	}
	if err := r.leader.rn.Campaign(); err != nil {
		return nil, fmt.Errorf("raftbench: %w", err)
	}
	for i := 0; i < 100 && r.leader.rn.BasicStatus().RaftState != etcdraft.StateLeader; i++ {
		r.pump()
	}
	if r.leader.rn.BasicStatus().RaftState != etcdraft.StateLeader {
		return nil, errors.New("raftbench: raw cluster elected no leader")
	}
	for r.pump() {
	}
	return r, nil
}

// Write commits n writes, Window in flight: each refill of the window is
// stepped into the leader as one MsgProp of one entry per write, as the
// driver steps the proposals of one loop turn.
func (r *RawCluster) Write(n int) (Measurement, error) {
	start := r.committed
	issued := 0
	var err error
	cpu0 := cpuTime()
	w0 := time.Now()
	thread := cpuprof.OnThread(func() {
		for r.committed-start < n {
			var ents []*pb.Entry
			for issued < n && issued-(r.committed-start) < r.window {
				ents = append(ents, &pb.Entry{Data: r.payload})
				issued++
			}
			if len(ents) > 0 {
				m := &pb.Message{Type: pb.MsgProp.Enum(), From: new(r.leader.id), Entries: ents}
				if e := r.leader.rn.Step(m); e != nil {
					err = fmt.Errorf("raftbench: raw propose: %w", e)
					return
				}
			}
			if !r.pump() && issued == n && r.committed-start < n {
				err = fmt.Errorf("raftbench: raw cluster stalled at %d of %d writes", r.committed-start, n)
				return
			}
		}
	})
	m := Measurement{Writes: r.committed - start, Wall: time.Since(w0), CPU: cpuTime() - cpu0, Thread: thread}
	return m, err
}

// pump delivers every queued message and handles every Ready once; it
// reports whether anything moved.
func (r *RawCluster) pump() bool {
	moved := false
	for _, p := range r.peers {
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
				t := r.byID[m.GetTo()]
				t.inbox = append(t.inbox, m)
			}
			for _, e := range rd.CommittedEntries {
				switch e.GetType() {
				case pb.EntryConfChange:
					var cc pb.ConfChange
					_ = proto.Unmarshal(e.GetData(), &cc)
					p.rn.ApplyConfChange(&cc)
				case pb.EntryNormal:
					if p == r.leader && len(e.GetData()) > 0 {
						r.committed++
					}
				}
			}
			// Keep the log bounded as the driver does (it compacts after
			// snapshots); MemoryStorage would otherwise grow with every write.
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

type quiet struct{}

func (quiet) Debug(...any)              {}
func (quiet) Debugf(string, ...any)     {}
func (quiet) Info(...any)               {}
func (quiet) Infof(string, ...any)      {}
func (quiet) Warning(...any)            {}
func (quiet) Warningf(string, ...any)   {}
func (quiet) Error(...any)              {}
func (quiet) Errorf(string, ...any)     {}
func (quiet) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (quiet) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (quiet) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (quiet) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
