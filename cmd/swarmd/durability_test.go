package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/swarmsim/swarmsim/realnet"
	"github.com/swarmsim/swarmsim/realnet/daemon"
	"github.com/swarmsim/swarmsim/realnet/rpc"
)

// The durability tests SIGKILL swarmd managers while clients write to the
// key space, restart them from their data directories, and then demand
// that every write a client saw acknowledged is there with its value.
// Writes that failed or timed out are ambiguous: each may be there or
// not, but if it is, with the value written. Every write has its own key,
// so the check is exact.
//
// A SIGKILL loses nothing the process had handed to the kernel (the page
// cache survives it), so these tests catch acknowledgements sent before
// the write reached the WAL, recovery that drops or refuses what it
// wrote, and followers that do not catch up. Losing unsynced pages is
// realnet/wal's crash and torn-tail tests' part.
//
// The kill points come from a seed (SWARMSIM_DURABILITY_SEED replays its
// choices; the timing of a real cluster does not replay).

const durabilitySeedEnv = "SWARMSIM_DURABILITY_SEED"

func durabilitySeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(durabilitySeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 0, 64); err != nil {
			t.Fatalf("%s: %v", durabilitySeedEnv, err)
		}
	}
	t.Logf("kill points from seed %#x (%s=%#x replays them)", seed, durabilitySeedEnv, seed)
	return seed
}

// kvConn is a client connection to one manager.
type kvConn struct {
	p       *proc
	conn    *grpc.ClientConn
	control rpc.ControlClient
	daemon  rpc.DaemonClient
}

func dialKV(t *testing.T, p *proc) *kvConn {
	t.Helper()
	// The daemon's own socket: its network port serves only callers with
	// a certificate of the cluster.
	sock, err := filepath.Abs(daemon.SocketPath(p.dir))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+sock, realnet.DialOptions(nil, 0)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &kvConn{p: p, conn: conn, control: rpc.NewControlClient(conn), daemon: rpc.NewDaemonClient(conn)}
}

func (c *kvConn) status() (*rpc.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.daemon.Status(ctx, &rpc.Empty{})
}

// appliedDigests remembers the digest of each block of applied entries
// the managers reported (Daemon.AppliedDigests): a manager must report the
// same as every other, and as itself before it was killed and re-applied
// its log.
type appliedDigests struct {
	seen     map[uint64]string // block's last index → "hash by manager"
	compared int
}

func (a *appliedDigests) check(t *testing.T, conns []*kvConn) {
	t.Helper()
	if a.seen == nil {
		a.seen = map[uint64]string{}
	}
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.daemon.AppliedDigests(ctx, &rpc.Empty{})
		cancel()
		if err != nil {
			continue
		}
		for _, d := range r.GetDigests() {
			got := fmt.Sprintf("%016x", d.GetHash())
			prev, ok := a.seen[d.GetLastIndex()]
			if !ok {
				a.seen[d.GetLastIndex()] = got + " by " + c.p.name
				continue
			}
			a.compared++
			if !strings.HasPrefix(prev, got+" ") {
				t.Errorf("%s applied entries %d to %d as %s, unlike %s", c.p.name, d.GetLastIndex()-r.GetBlock()+1, d.GetLastIndex(), got, prev)
			}
		}
	}
}

// ledTerms remembers which manager said it led each term
// (Daemon.LedTerms): no two may have led one. A killed manager forgets
// the terms it led, so they are read before every kill as well as after.
type ledTerms struct {
	by map[uint64]string
}

func (l *ledTerms) check(t *testing.T, conns []*kvConn) {
	t.Helper()
	if l.by == nil {
		l.by = map[uint64]string{}
	}
	for _, c := range conns {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, err := c.daemon.LedTerms(ctx, &rpc.Empty{})
		cancel()
		if err != nil {
			continue
		}
		for _, term := range r.GetTerms() {
			if prev, ok := l.by[term]; ok && prev != c.p.name {
				t.Errorf("%s and %s both led term %d", prev, c.p.name, term)
			}
			l.by[term] = c.p.name
		}
	}
}

// write is one KVPut as the client saw it.
type write struct {
	key, value string
	acked      bool
	err        error
}

// writers run concurrent clients, each writing fresh keys to a manager
// picked at random, until stop.
type writers struct {
	conns []*kvConn
	acks  atomic.Int64 // acknowledged writes so far

	mu  sync.Mutex
	log []write

	stop atomic.Bool
	wg   sync.WaitGroup
}

func startWriters(conns []*kvConn, n int, seed uint64) *writers {
	w := &writers{conns: conns}
	for i := range n {
		w.wg.Add(1)
		go w.run(i, rand.New(rand.NewPCG(seed, uint64(i)+1)))
	}
	return w
}

func (w *writers) run(id int, rnd *rand.Rand) {
	defer w.wg.Done()
	for seq := 0; !w.stop.Load(); seq++ {
		c := w.conns[rnd.IntN(len(w.conns))]
		key := fmt.Sprintf("w%02d-%06d", id, seq)
		value := fmt.Sprintf("%s=%x", key, rnd.Uint64())
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := c.control.KVPut(ctx, &rpc.KVPutRequest{Key: key, Value: value})
		cancel()
		w.mu.Lock()
		w.log = append(w.log, write{key: key, value: value, acked: err == nil, err: err})
		w.mu.Unlock()
		if err == nil {
			w.acks.Add(1)
		} else {
			// A dead or leaderless manager answers at once: do not spin.
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// halt stops the writers and returns every write they made.
func (w *writers) halt() []write {
	w.stop.Store(true)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log
}

// waitAcks waits until n more writes than before were acknowledged.
func (w *writers) waitAcks(h *harness, n int64) {
	h.t.Helper()
	target := w.acks.Load() + n
	h.eventually(fmt.Sprintf("%d more acknowledged writes", n), func() bool { return w.acks.Load() >= target })
}

// sigkill kills the managers at once and waits for them to be gone.
func sigkill(t *testing.T, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %s: %v", p.name, err)
		}
	}
	for _, p := range ps {
		<-p.exited
	}
}

// leaderOf returns the connection to the manager that leads now, when all
// of conns answer and agree on it.
func leaderOf(conns []*kvConn) (*kvConn, bool) {
	var leader string
	var lc *kvConn
	for _, c := range conns {
		st, err := c.status()
		if err != nil || st.GetLeader() == "" || (leader != "" && st.GetLeader() != leader) {
			return nil, false
		}
		leader = st.GetLeader()
		if st.GetIsLeader() {
			lc = c
		}
	}
	return lc, lc != nil
}

// checkWrites reads every write back through c (a linearizable read) and
// fails the test for an acknowledged write that is missing or changed, or
// an ambiguous one whose key holds something it never wrote. It returns
// how many acknowledged and ambiguous writes it checked.
func checkWrites(t *testing.T, c *kvConn, log []write) (acked, ambiguous int) {
	t.Helper()
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	jobs := make(chan write)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				got, err := kvReadBack(c, w.key)
				var problem string
				switch {
				case err != nil:
					problem = fmt.Sprintf("read %s on %s: %v", w.key, c.p.name, err)
				case w.acked && got != w.value:
					problem = fmt.Sprintf("acknowledged write %s=%q: %s reads %q", w.key, w.value, c.p.name, got)
				case !w.acked && got != "" && got != w.value:
					problem = fmt.Sprintf("ambiguous write %s=%q (%v): %s reads %q, which nobody wrote", w.key, w.value, w.err, c.p.name, got)
				}
				if problem != "" {
					mu.Lock()
					bad = append(bad, problem)
					mu.Unlock()
				}
			}
		}()
	}
	for _, w := range log {
		if w.acked {
			acked++
		} else {
			ambiguous++
		}
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	for i, b := range bad {
		if i == 20 {
			t.Errorf("... and %d more", len(bad)-i)
			break
		}
		t.Error(b)
	}
	return acked, ambiguous
}

// readKey reads a key linearizably, retrying while the cluster settles
// (a read has no effect, so retrying is safe).
func kvReadBack(c *kvConn, key string) (string, error) {
	var err error
	for range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		var v *rpc.KVValue
		v, err = c.control.KVGet(ctx, &rpc.KVGetRequest{Key: key})
		cancel()
		if err == nil {
			return v.GetValue(), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", err
}

// TestKillNineManagers runs three managers under a load of concurrent
// writes and, round after round, SIGKILLs the leader, a follower, two
// managers or all three at once at a random moment, then restarts them from their data
// directories. Every acknowledged write must survive, on every manager.
func TestKillNineManagers(t *testing.T) {
	h := newHarness(t)
	seed := durabilitySeed(t)
	rnd := rand.New(rand.NewPCG(seed, 0))

	// Frequent snapshots put kills in the middle of snapshotting and
	// compaction too, and make a follower that was down long enough
	// catch up from a snapshot rather than from the log.
	snap := []string{"--snapshot-every", "200"}
	m1 := h.start("m1", freePort(t), append([]string{"init"}, snap...)...)
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	mtok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "manager"))
	m2 := h.start("m2", freePort(t), append(append([]string{"join", "--token", mtok}, snap...), m1.addr)...)
	m3 := h.start("m3", freePort(t), append(append([]string{"join", "--token", mtok}, snap...), m1.addr)...)
	managers := []*proc{m1, m2, m3}
	var conns []*kvConn
	for _, m := range managers {
		conns = append(conns, dialKV(t, m))
	}
	h.eventually("three voters", func() bool {
		st, err := conns[0].status()
		if err != nil || len(st.GetMembers()) != 3 {
			return false
		}
		for _, m := range st.GetMembers() {
			if m.GetLearner() {
				return false
			}
		}
		_, ok := leaderOf(conns)
		return ok
	})

	w := startWriters(conns, 6, seed)
	digests := appliedDigests{}
	led := ledTerms{}
	// Each kind of kill, in a random order. Only losing a quorum at once
	// (two or three managers) puts an acknowledged write at the mercy of
	// what the killed managers had written; one manager at a time tests
	// recovery and catching up.
	const (
		killLeader = iota
		killFollower
		killTwo
		killAll
	)
	kinds := []int{killLeader, killLeader, killFollower, killFollower, killTwo, killAll, killAll, killAll}
	rnd.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	for round, kind := range kinds {
		// A random moment during the writes: after some acknowledged
		// writes, at once or after a random delay (kills land while
		// requests are in flight either way).
		w.waitAcks(h, 5+rnd.Int64N(150))
		if rnd.IntN(2) == 0 {
			time.Sleep(time.Duration(rnd.Int64N(int64(150 * time.Millisecond))))
		}
		leader, ok := leaderOf(conns)
		if !ok {
			leader = conns[rnd.IntN(len(conns))]
		}
		var followers []*proc
		for _, m := range managers {
			if m != leader.p {
				followers = append(followers, m)
			}
		}
		var victims []*proc
		what := ""
		switch kind {
		case killLeader:
			victims, what = []*proc{leader.p}, "the leader"
		case killFollower:
			victims, what = []*proc{followers[rnd.IntN(len(followers))]}, "a follower"
		case killTwo:
			victims, what = []*proc{leader.p, followers[rnd.IntN(len(followers))]}, "the leader and a follower"
		case killAll:
			victims, what = managers, "every manager"
		}
		led.check(t, conns)
		sigkill(t, victims...)
		t.Logf("round %d: killed %s, %d writes acknowledged so far", round+1, what, w.acks.Load())
		time.Sleep(time.Duration(rnd.Int64N(int64(500 * time.Millisecond))))
		for _, v := range victims {
			h.launch(v, append([]string{"--no-listen"}, snap...)...)
		}
		h.eventually("every manager back, agreeing on a leader", func() bool { _, ok := leaderOf(conns); return ok })
		digests.check(t, conns)
		led.check(t, conns)
	}
	w.waitAcks(h, 20)
	log := w.halt()

	// Every manager caught up: it applied everything the leader had
	// committed once the writes stopped.
	var leader *kvConn
	h.eventually("a leader", func() bool { var ok bool; leader, ok = leaderOf(conns); return ok })
	lst, err := leader.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		h.eventually(c.p.name+" applied the leader's commit index", func() bool {
			st, err := c.status()
			return err == nil && st.GetApplied() >= lst.GetCommit()
		})
	}
	digests.check(t, conns)
	if digests.compared == 0 {
		t.Error("no two reports of one block of applied entries were compared: committed-stays-committed was not checked")
	}
	t.Logf("%d reports of applied-entry blocks agreed with earlier ones", digests.compared)
	led.check(t, conns)
	// The first term, and one more after each round that killed every
	// manager: fewer means the terms led were not read.
	want := 1
	for _, k := range kinds {
		if k == killAll {
			want++
		}
	}
	if len(led.by) < want {
		t.Errorf("%d terms led reported, want %d or more: %v", len(led.by), want, led.by)
	}
	t.Logf("%d terms led, each by one manager", len(led.by))
	acked, ambiguous := checkWrites(t, leader, log)
	if acked == 0 {
		t.Fatal("no write was acknowledged: the test checked nothing")
	}
	t.Logf("%d acknowledged writes and %d ambiguous ones checked on the leader %s", acked, ambiguous, leader.p.name)
	for _, m := range managers {
		if snaps, _ := filepath.Glob(filepath.Join(m.dir, "wal", "*.snap")); len(snaps) == 0 {
			t.Errorf("%s took no snapshot: the kills never met snapshotting and compaction", m.name)
		}
	}
	// Followers answer linearizable reads from their own store: the same
	// check on them shows the restarted ones hold every write too.
	for _, c := range conns {
		if c != leader && !t.Failed() {
			checkWrites(t, c, log)
		}
	}
}

// TestKillNineSingleManager kills a one-manager cluster in the middle of
// a burst of writes, round after round: there the manager's own fsync is
// the only thing standing between an acknowledgement and a lost write.
func TestKillNineSingleManager(t *testing.T) {
	h := newHarness(t)
	seed := durabilitySeed(t)
	rnd := rand.New(rand.NewPCG(seed, 0))
	m1 := h.start("m1", freePort(t), "init")
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })
	conns := []*kvConn{dialKV(t, m1)}
	w := startWriters(conns, 16, seed)
	for round := 1; round <= 4; round++ {
		w.waitAcks(h, 20+rnd.Int64N(300))
		if rnd.IntN(2) == 0 {
			time.Sleep(time.Duration(rnd.Int64N(int64(100 * time.Millisecond))))
		}
		sigkill(t, m1)
		t.Logf("round %d: killed m1, %d writes acknowledged so far", round, w.acks.Load())
		h.launch(m1, "--no-listen")
		h.eventually("m1 leads again", func() bool { _, ok := leaderOf(conns); return ok })
	}
	log := w.halt()
	acked, ambiguous := checkWrites(t, conns[0], log)
	if acked == 0 {
		t.Fatal("no write was acknowledged: the test checked nothing")
	}
	t.Logf("%d acknowledged writes and %d ambiguous ones checked", acked, ambiguous)
}
