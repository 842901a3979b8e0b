// Package realwrites measures durable committed writes per second on real
// swarmd managers (realnet/daemon, in this process) talking gRPC on
// loopback, with their write-ahead logs on a real disk, beside the fsync
// latency of that same disk measured in the same run: the physical floor
// of a log that fsyncs once per write.
//
// Clients write fresh keys through the Control service's KVPut, which
// answers once the write is committed (fsynced on a quorum) and applied
// on the manager asked. Every client waits for its answer before its next
// write, so the clients are the writes in flight.
//
// What it must never do: count a write that was not acknowledged, or
// compare with an fsync latency measured on another disk or in another
// run.
package realwrites

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/rpc"
	"github.com/swarmsim/swarmsim/realnet/wal"
)

// Config is one measurement.
type Config struct {
	// Dir holds the managers' data directories and the fsync probe's
	// file; "" is a new directory under os.TempDir(), removed after.
	Dir string
	// Managers is the raft group's size (default 3).
	Managers int
	// Clients lists the concurrent clients of each step, one step after
	// another on the same cluster (default 1, 16, 64).
	Clients []int
	// Warmup runs before each step's measured Duration (defaults 1s, 5s).
	Warmup, Duration time.Duration
	// FsyncSamples is how many fsyncs the probe times before the cluster
	// starts and again after it stopped (default 200 each).
	FsyncSamples int
	// ValueBytes is each write's value size (default 64).
	ValueBytes int
}

func (c *Config) setDefaults() {
	if c.Managers <= 0 {
		c.Managers = 3
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{1, 16, 64}
	}
	if c.Warmup <= 0 {
		c.Warmup = time.Second
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.FsyncSamples <= 0 {
		c.FsyncSamples = 200
	}
	if c.ValueBytes <= 0 {
		c.ValueBytes = 64
	}
}

// Step is what one client count measured.
type Step struct {
	Clients int
	// Writes were acknowledged within the measured window, which lasted
	// Elapsed; Failed were answered with an error in it (none on a
	// healthy run).
	Writes, Failed int
	Elapsed        time.Duration
	// Latencies are the acknowledged writes' times from request to
	// answer, sorted.
	Latencies []time.Duration
	// LeaderFsyncs is how many fsyncs the leader's log made in the
	// window (every batch it wrote).
	LeaderFsyncs uint64
	// LeaderFsyncTime is the time those fsyncs took, summed.
	LeaderFsyncTime time.Duration
	// CPU is the CPU time this process (managers and clients) used in
	// the window, user and system.
	CPU time.Duration
}

// LeaderFsyncMean is the leader's mean fsync in the window: the disk's
// latency under the cluster's load, where the probe times it idle.
func (s Step) LeaderFsyncMean() time.Duration {
	if s.LeaderFsyncs == 0 {
		return 0
	}
	return s.LeaderFsyncTime / time.Duration(s.LeaderFsyncs)
}

// LeaderFsyncBusy is the fraction of the window the leader's log spent
// in fsync.
func (s Step) LeaderFsyncBusy() float64 { return s.LeaderFsyncTime.Seconds() / s.Elapsed.Seconds() }

// CoresBusy is the process's CPU time per second of the window: how many
// cores the managers and clients kept busy.
func (s Step) CoresBusy() float64 { return s.CPU.Seconds() / s.Elapsed.Seconds() }

// WritesPerSecond is the step's committed writes per second.
func (s Step) WritesPerSecond() float64 { return float64(s.Writes) / s.Elapsed.Seconds() }

// WritesPerFsync is how many writes one leader fsync carried on average.
func (s Step) WritesPerFsync() float64 {
	if s.LeaderFsyncs == 0 {
		return 0
	}
	return float64(s.Writes) / float64(s.LeaderFsyncs)
}

// Result is a whole measurement.
type Result struct {
	Dir string // where the logs and the probe were
	// Fsync are the probe's timings, before and after the cluster ran,
	// sorted together.
	Fsync []time.Duration
	Steps []Step
}

// FsyncP50 is the median fsync.
func (r *Result) FsyncP50() time.Duration { return quantile(r.Fsync, 0.5) }

// FsyncMean is the mean fsync.
func (r *Result) FsyncMean() time.Duration { return Mean(r.Fsync) }

// FloorWritesPerSecond is 1/fsync p50: the most writes per second a log
// could make durable one fsync at a time, writing nothing else.
func (r *Result) FloorWritesPerSecond() float64 { return 1 / r.FsyncP50().Seconds() }

// quantile is the smallest sample at or above fraction q of sorted xs.
func quantile(xs []time.Duration, q float64) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	i := int(q*float64(len(xs))+0.999999) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// Quantile is the smallest sample at or above fraction q of sorted xs.
func Quantile(xs []time.Duration, q float64) time.Duration { return quantile(xs, q) }

// Mean of xs.
func Mean(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range xs {
		sum += x
	}
	return sum / time.Duration(len(xs))
}

// Measure probes the disk, starts the cluster in cfg.Dir, runs each step,
// stops the cluster and probes the disk again.
func Measure(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "realwrites-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	res := &Result{Dir: dir}
	before, err := wal.FsyncSamples(dir, cfg.FsyncSamples)
	if err != nil {
		return nil, err
	}
	c, err := startCluster(ctx, dir, cfg.Managers)
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.Clients {
		s, err := c.step(ctx, n, cfg)
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("%d clients: %w", n, err)
		}
		res.Steps = append(res.Steps, s)
	}
	c.stop()
	after, err := wal.FsyncSamples(dir, cfg.FsyncSamples)
	if err != nil {
		return nil, err
	}
	res.Fsync = append(before, after...)
	sortDurations(res.Fsync)
	return res, nil
}

type cluster struct {
	daemons []*daemon.Daemon
	dirs    []string // their data directories
	conns   []*grpc.ClientConn
}

func (c *cluster) stop() {
	for _, cc := range c.conns {
		cc.Close()
	}
	for _, d := range c.daemons {
		d.Stop()
	}
}

// freeAddr picks a loopback port nothing listens on now. A node's
// address must be known before it listens: it is written into its data
// directory and its peers dial it.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func startCluster(ctx context.Context, dir string, managers int) (*cluster, error) {
	c := &cluster{}
	start := func(i int, mode daemon.Mode, join, token string) error {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("m%d", i+1)
		d, err := daemon.Start(ctx, daemon.Options{
			Mode: mode, DataDir: filepath.Join(dir, name), Listen: addr, Hostname: name,
			Executor: daemon.ExecutorMemory, JoinAddr: join, Token: token,
		})
		if err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		c.daemons = append(c.daemons, d)
		c.dirs = append(c.dirs, filepath.Join(dir, name))
		return nil
	}
	if err := start(0, daemon.ModeInit, "", ""); err != nil {
		return nil, err
	}
	first := c.daemons[0]
	// A joiner asks the leader to add it: wait for the first to lead.
	if _, err := c.waitReady(ctx, 1); err != nil {
		c.stop()
		return nil, err
	}
	for i := 1; i < managers; i++ {
		if err := start(i, daemon.ModeJoin, first.Addr(), first.JoinTokens().GetManager()); err != nil {
			c.stop()
			return nil, err
		}
		if _, err := c.waitReady(ctx, i+1); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// dial connects to daemon i's local socket, as its CLI does (the network
// port serves only callers with a certificate of the cluster; the
// managers' raft traffic between themselves stays on mutual TLS).
func (c *cluster) dial(i int) (*grpc.ClientConn, error) {
	sock, err := filepath.Abs(daemon.SocketPath(c.dirs[i]))
	if err != nil {
		return nil, err
	}
	return grpc.NewClient("unix://"+sock, realnet.DialOptions(nil, 0)...)
}

// conn returns a client connection to daemon i.
func (c *cluster) conn(i int) (*grpc.ClientConn, error) {
	cc, err := c.dial(i)
	if err != nil {
		return nil, err
	}
	c.conns = append(c.conns, cc)
	return cc, nil
}

// waitReady waits until the first manager sees voters voters and a
// leader that a write through it reaches; it returns the leader's index.
func (c *cluster) waitReady(ctx context.Context, voters int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		if i, err := c.ready(ctx, voters); err == nil {
			return i, nil
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("cluster of %d never ready: %w", voters, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *cluster) ready(ctx context.Context, voters int) (int, error) {
	leader := -1
	for i, d := range c.daemons {
		cc, err := c.dial(i)
		if err != nil {
			return 0, err
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := rpc.NewDaemonClient(cc).Status(sctx, &rpc.Empty{})
		cancel()
		cc.Close()
		if err != nil {
			return 0, err
		}
		n := 0
		for _, m := range st.GetMembers() {
			if !m.GetLearner() {
				n++
			}
		}
		if n != voters {
			return 0, fmt.Errorf("%s sees %d voters", d.ID(), n)
		}
		if st.GetIsLeader() {
			leader = i
		}
	}
	if leader < 0 {
		return 0, errors.New("no leader")
	}
	cc, err := c.dial(leader)
	if err != nil {
		return 0, err
	}
	defer cc.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = rpc.NewControlClient(cc).KVPut(wctx, &rpc.KVPutRequest{Key: "ready", Value: "1"})
	return leader, err
}

// step runs n clients against the leader for cfg.Warmup, then measures
// for cfg.Duration.
func (c *cluster) step(ctx context.Context, n int, cfg Config) (Step, error) {
	leader, err := c.waitReady(ctx, len(c.daemons))
	if err != nil {
		return Step{}, err
	}
	// A connection per client, as separate clients would have.
	clients := make([]rpc.ControlClient, n)
	for i := range clients {
		cc, err := c.conn(leader)
		if err != nil {
			return Step{}, err
		}
		clients[i] = rpc.NewControlClient(cc)
	}
	value := strings.Repeat("v", cfg.ValueBytes)
	var (
		measuring, stop atomic.Bool
		mu              sync.Mutex
		s               = Step{Clients: n}
		wg              sync.WaitGroup
		firstErr        error
	)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			writes, failed := 0, 0
			for seq := 0; !stop.Load(); seq++ {
				key := fmt.Sprintf("c%d-%03d-%09d", n, i, seq)
				t0 := time.Now()
				wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := cl.KVPut(wctx, &rpc.KVPutRequest{Key: key, Value: value})
				cancel()
				took := time.Since(t0)
				// Writes answered inside the window count.
				if !measuring.Load() || stop.Load() {
					continue
				}
				if err != nil {
					failed++
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				writes++
				lat = append(lat, took)
			}
			mu.Lock()
			s.Writes += writes
			s.Failed += failed
			s.Latencies = append(s.Latencies, lat...)
			mu.Unlock()
		}()
	}
	time.Sleep(cfg.Warmup)
	ds0, cpu0 := c.daemons[leader].DiskStats(), cpuTime()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(cfg.Duration)
	stop.Store(true)
	s.Elapsed = time.Since(t0)
	ds1 := c.daemons[leader].DiskStats()
	s.LeaderFsyncs, s.LeaderFsyncTime = ds1.Fsyncs-ds0.Fsyncs, ds1.FsyncTime-ds0.FsyncTime
	s.CPU = cpuTime() - cpu0
	wg.Wait()
	sortDurations(s.Latencies)
	if s.Writes == 0 {
		return s, fmt.Errorf("no write acknowledged in %v (%d failed: %v)", cfg.Duration, s.Failed, firstErr)
	}
	return s, nil
}

func sortDurations(xs []time.Duration) { slices.Sort(xs) }

// cpuTime is this process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
