package raftbench

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/swarmsim/swarmsim/bench/cpuprof"
	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/manager"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
	"github.com/swarmsim/swarmsim/sim/cluster"
)

// Config is one store-path workload.
type Config struct {
	Managers int
	// Latency is every link's one-way network latency, fixed.
	Latency time.Duration
	// DiskSync is how long one fsync takes on every manager (1ms).
	DiskSync time.Duration
	// Batched packs the proposals of one loop turn into shared raft
	// entries, as raft.Config does by default; unbatched gives each its
	// own (raft.Config.EntryPerProposal).
	Batched bool
	// Window is how many writes are in flight at once (256): a closed
	// loop of Window clients, each writing its own key again as soon as
	// its previous write is acknowledged.
	Window int
	// ValueBytes is the size of each written value (16).
	ValueBytes int
	Seed       uint64
}

func (c *Config) setDefaults() {
	if c.Managers <= 0 {
		c.Managers = 3
	}
	if c.DiskSync <= 0 {
		c.DiskSync = time.Millisecond
	}
	if c.Window <= 0 {
		c.Window = 256
	}
	if c.ValueBytes <= 0 {
		c.ValueBytes = 16
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Mode names the batching mode for reports.
func (c Config) Mode() string {
	if c.Batched {
		return "batched"
	}
	return "unbatched"
}

// Measurement is what one run of writes measured.
type Measurement struct {
	Writes int
	// Wall and CPU are real time and process CPU time (every thread: the
	// garbage collector's too) spent running the writes; Thread is the CPU
	// time of the thread that ran them (cpuprof.OnThread): what an idle
	// machine would show as wall time, whatever else runs on this one.
	Wall, CPU, Thread time.Duration
	// Virtual is the simulated time the writes took.
	Virtual time.Duration
	// Latencies are each write's commit latency in virtual time: from
	// KVWrite to its acknowledgement on the leader, after it applied.
	Latencies []time.Duration
	// Entries is the raft entries the leader applied meanwhile; Bytes
	// their data bytes (driver headers and packing included).
	Entries, Bytes uint64
	// Events is the simulator events run.
	Events uint64
}

// WallRate is committed writes per second of real time.
func (m Measurement) WallRate() float64 { return float64(m.Writes) / m.Wall.Seconds() }

// CPURate is committed writes per second of process CPU time.
func (m Measurement) CPURate() float64 { return float64(m.Writes) / m.CPU.Seconds() }

// ThreadRate is committed writes per second of the running thread's CPU
// time (0 where the platform cannot say).
func (m Measurement) ThreadRate() float64 {
	if m.Thread <= 0 {
		return 0
	}
	return float64(m.Writes) / m.Thread.Seconds()
}

// VirtualRate is committed writes per simulated second.
func (m Measurement) VirtualRate() float64 { return float64(m.Writes) / m.Virtual.Seconds() }

// StoreCluster is a simulated cluster of managers with an elected leader,
// ready to take writes. It owns crypto/rand.Reader until Close.
type StoreCluster struct {
	cfg     Config
	k       *sim.Kernel
	c       *cluster.Cluster
	restore func()
	leader  *cluster.Machine
	obs     *entryCounter
	keys    []string
	value   string
	written int
}

// entryCounter sees every applied entry (raft.Observer) and counts the
// leader's.
type entryCounter struct {
	leader         env.NodeID
	entries, bytes uint64
}

func (e *entryCounter) EntryApplied(a raft.AppliedEntry) {
	if a.Node == e.leader {
		e.entries++
		e.bytes += uint64(len(a.Data))
	}
}
func (e *entryCounter) StateChanged(raft.StateChange)               {}
func (e *entryCounter) SnapshotRestored(env.NodeID, uint64, uint64) {}

// NewStoreCluster boots cfg.Managers managers (m1...) on a fresh kernel and
// runs it until one leads.
func NewStoreCluster(cfg Config) (*StoreCluster, error) {
	cfg.setDefaults()
	k := sim.NewKernel(cfg.Seed)
	s := &StoreCluster{cfg: cfg, k: k, obs: &entryCounter{}, restore: k.Activate()}
	s.c = cluster.NewCluster(k, cluster.ClusterConfig{
		Network:      sim.LinkModel{Latency: sim.Fixed(cfg.Latency)},
		DiskSync:     sim.Fixed(cfg.DiskSync),
		Raft:         raft.Config{EntryPerProposal: !cfg.Batched},
		RaftObserver: s.obs,
	})
	var names []string
	for i := 1; i <= cfg.Managers; i++ {
		names = append(names, "m"+strconv.Itoa(i))
	}
	if err := s.c.Bootstrap(names, nil, nil); err != nil {
		s.Close()
		return nil, fmt.Errorf("raftbench: %w", err)
	}
	k.RunUntil(time.Minute, func() bool {
		m, ok := s.c.Leader()
		if ok {
			s.leader = m
		}
		return ok
	})
	if s.leader == nil {
		s.Close()
		return nil, errors.New("raftbench: no leader within a simulated minute")
	}
	s.obs.leader = env.NodeID(s.leader.Name)
	for i := range cfg.Window {
		s.keys = append(s.keys, fmt.Sprintf("key-%04d", i))
	}
	v := make([]byte, cfg.ValueBytes)
	for i := range v {
		v[i] = 'a' + byte(i%26)
	}
	s.value = string(v)
	return s, nil
}

// Close gives crypto/rand.Reader back.
func (s *StoreCluster) Close() {
	if s.restore != nil {
		s.restore()
		s.restore = nil
	}
}

// Write runs n writes through the leader's store, Window at a time, and
// measures them. Each key is written by one client at a time, so no write
// loses a race and every one commits on the first try.
func (s *StoreCluster) Write(n int) (Measurement, error) {
	mgr := s.leader.Engine.Manager()
	k := s.k
	lat := make([]time.Duration, 0, n)
	issued, completed := 0, 0
	var failed error
	// Each slot is one client with its own callback, made once: the
	// benchmark's own bookkeeping allocates nothing per write.
	issue := make([]func(), s.cfg.Window)
	start := make([]time.Duration, s.cfg.Window)
	for slot := range issue {
		var acked func(error)
		acked = func(err error) {
			if err != nil {
				if failed == nil {
					failed = fmt.Errorf("raftbench: write %d on %s: %w", completed, s.leader.Name, err)
				}
				return
			}
			completed++
			lat = append(lat, k.Now()-start[slot])
			issue[slot]()
		}
		issue[slot] = func() {
			if issued >= n || failed != nil {
				return
			}
			issued++
			start[slot] = k.Now()
			mgr.KVWrite(s.keys[slot], s.value, acked)
		}
	}
	e0, b0 := s.obs.entries, s.obs.bytes
	ev0 := k.Processed()
	v0 := k.Now()
	cpu0 := cpuTime()
	w0 := time.Now()
	s.leader.Kernel.Post(func() {
		for slot := range min(s.cfg.Window, n) {
			issue[slot]()
		}
	})
	thread := cpuprof.OnThread(func() {
		k.RunUntil(k.Now()+time.Hour, func() bool { return completed >= n || failed != nil })
	})
	m := Measurement{
		Writes:    completed,
		Thread:    thread,
		Wall:      time.Since(w0),
		CPU:       cpuTime() - cpu0,
		Virtual:   k.Now() - v0,
		Latencies: lat,
		Entries:   s.obs.entries - e0,
		Bytes:     s.obs.bytes - b0,
		Events:    k.Processed() - ev0,
	}
	s.written += completed
	if failed != nil {
		return m, failed
	}
	if completed < n {
		return m, fmt.Errorf("raftbench: %d of %d writes committed within a simulated hour", completed, n)
	}
	if st := mgr.Raft().Status(); !st.IsLeader {
		return m, fmt.Errorf("raftbench: %s lost leadership during the run (term %d)", s.leader.Name, st.Term)
	}
	return m, nil
}

// Leader is the leading manager.
func (s *StoreCluster) Leader() *manager.Manager { return s.leader.Engine.Manager() }

// cpuTime is the CPU time the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
