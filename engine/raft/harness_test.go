package raft_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// kv is the tests' state machine: "key=value" sets a key; every applied
// proposal also feeds a running hash and a counter, so two replicas that
// applied the same proposals in the same order compare equal. A proposal
// starting with "bad" cannot be decoded.
type kv struct {
	M     map[string]string
	Count uint64
	Hash  uint64
	// Own counts the proposals applied with their own Proposal: this
	// node's, proposed since it started.
	Own int `json:"-"`
}

func newKV() *kv { return &kv{M: make(map[string]string)} }

func (s *kv) Apply(index uint64, data []byte, own raft.Proposal) (any, error) {
	if bytes.HasPrefix(data, []byte("bad")) {
		return nil, fmt.Errorf("kv: cannot decode %q", data)
	}
	if k, v, ok := bytes.Cut(data, []byte("=")); ok {
		s.M[string(k)] = string(v)
	}
	if own != nil {
		s.Own++
	}
	s.Count++
	h := fnv.New64a()
	fmt.Fprintf(h, "%x:", s.Hash)
	h.Write(data)
	s.Hash = h.Sum64()
	return s.Count, nil
}

func (s *kv) Snapshot() ([]byte, error) { return json.Marshal(s) } // json sorts map keys

func (s *kv) Restore(data []byte) error {
	n := newKV()
	if err := json.Unmarshal(data, n); err != nil {
		return err
	}
	if n.M == nil {
		n.M = make(map[string]string)
	}
	*s = *n
	return nil
}

// checker stands outside the code under test and sees every applied entry
// and state change: at most one leader per term, and an index once applied
// anywhere never applies with other contents anywhere else.
type checker struct {
	t         testing.TB
	seed      uint64
	leaders   map[uint64]env.NodeID
	committed map[uint64]entryID
	next      map[env.NodeID]uint64 // next index each node must apply
	failures  int
	// confs records the first application of every conf change entry.
	confs []raft.AppliedEntry
}

type entryID struct {
	term uint64
	hash uint64
}

func (c *checker) fail(format string, args ...any) {
	c.failures++
	if c.failures <= 10 {
		c.t.Errorf("seed %d: "+format, append([]any{c.seed}, args...)...)
	}
}

func (c *checker) EntryApplied(e raft.AppliedEntry) {
	if want, ok := c.next[e.Node]; ok && want != 0 && e.Index != want {
		c.fail("%s applied index %d, expected %d", e.Node, e.Index, want)
	}
	c.next[e.Node] = e.Index + 1
	h := fnv.New64a()
	h.Write(e.Data)
	id := entryID{e.Term, h.Sum64()}
	if prev, ok := c.committed[e.Index]; ok && prev != id {
		c.fail("index %d applied on %s as term %d/%x, earlier as term %d/%x", e.Index, e.Node, id.term, id.hash, prev.term, prev.hash)
	}
	if _, seen := c.committed[e.Index]; !seen && e.Type != env.EntryNormal {
		c.confs = append(c.confs, e)
	}
	c.committed[e.Index] = id
}

func (c *checker) StateChanged(s raft.StateChange) {
	if s.Role != raft.RoleLeader {
		return
	}
	if l, ok := c.leaders[s.Term]; ok && l != s.Node {
		c.fail("two leaders in term %d: %s and %s", s.Term, l, s.Node)
	}
	c.leaders[s.Term] = s.Node
}

func (c *checker) SnapshotRestored(node env.NodeID, index, term uint64) {
	c.next[node] = index + 1
}

// member is one simulated manager: a machine, its disk, its endpoint and,
// while it runs, a driver over a fresh state machine.
type member struct {
	c        *cluster
	name     env.NodeID
	rid      uint64
	sn       *sim.Node
	disk     *sim.Disk
	ep       *sim.Endpoint
	r        *raft.Node
	sm       *kv
	leading  []bool // OnLeadershipChange history
	stopErrs []error
}

type cluster struct {
	t     testing.TB
	k     *sim.Kernel
	net   *sim.Network
	cfg   raft.Config
	ms    []*member
	check *checker
	// extra lets a test adjust each member's config before New.
	extra func(*raft.Config)
	// newSM, when set, makes the state machines instead of kv.
	newSM func() raft.StateMachine
}

var debugSteps = os.Getenv("RAFT_DEBUG_STEPS") != ""

var (
	defaultLink = sim.LinkModel{Latency: sim.Range{Min: 500 * time.Microsecond, Max: 2 * time.Millisecond}}
	diskLatency = sim.Range{Min: time.Millisecond, Max: 3 * time.Millisecond}
)

func testConfig() raft.Config {
	return raft.Config{
		Tick:            100 * time.Millisecond,
		ElectionTicks:   10,
		HeartbeatTicks:  1,
		ProposalTimeout: 5 * time.Second,
	}
}

// newCluster builds n managers called m1..mn on k and bootstraps them as
// one cluster. The caller has activated k.
func newCluster(t testing.TB, k *sim.Kernel, n int, cfg raft.Config) *cluster {
	t.Helper()
	return buildCluster(t, k, n, cfg, nil)
}

// buildCluster is newCluster with another state machine than kv (newSM
// non-nil: benchmarks) and no checker then.
func buildCluster(t testing.TB, k *sim.Kernel, n int, cfg raft.Config, newSM func() raft.StateMachine) *cluster {
	t.Helper()
	c := &cluster{
		newSM: newSM,
		t:     t,
		k:     k,
		net:   sim.NewNetwork(k, defaultLink),
		cfg:   cfg,
		check: &checker{
			t: t, seed: k.Seed(),
			leaders:   make(map[uint64]env.NodeID),
			committed: make(map[uint64]entryID),
			next:      make(map[env.NodeID]uint64),
		},
	}
	if newSM != nil {
		c.check = nil
	}
	var boot []raft.Member
	for i := 1; i <= n; i++ {
		m := c.addMachine(env.NodeID(fmt.Sprintf("m%d", i)))
		boot = append(boot, raft.Member{RaftID: m.rid, NodeID: m.name, Addr: string(m.name) + ":4242"})
	}
	for _, m := range c.ms {
		m.start()
		if err := m.r.Bootstrap(boot); err != nil {
			t.Fatalf("bootstrap %s: %v", m.name, err)
		}
	}
	return c
}

// addMachine adds a machine with an empty disk; the driver is not started.
func (c *cluster) addMachine(name env.NodeID) *member {
	m := &member{c: c, name: name, rid: raft.RaftIDFor(name)}
	m.sn = c.k.AddNode(string(name))
	m.disk = sim.NewDisk(m.sn, diskLatency)
	m.ep = c.net.Attach(m.sn, name, func(from env.Peer, msg env.Message) {
		if rm, ok := msg.(*raft.Message); ok && m.r != nil {
			if err := m.r.Step(from.ID, rm); err != nil && debugSteps {
				c.t.Logf("%v %s step from %s: %v", c.k.Now(), m.name, from.ID, err)
			}
		}
	})
	c.ms = append(c.ms, m)
	return m
}

// start runs a driver on m's machine over what its disk holds.
func (m *member) start() {
	m.c.t.Helper()
	cfg := m.c.cfg
	cfg.RaftID = m.rid
	if m.c.check != nil {
		cfg.Observer = m.c.check
	}
	if m.c.extra != nil {
		m.c.extra(&cfg)
	}
	m.sm = newKV()
	var sm raft.StateMachine = m.sm
	if m.c.newSM != nil {
		sm = m.c.newSM()
	}
	r, err := raft.New(env.Env{
		ID: m.name, Loop: m.sn, Clock: m.sn, Rand: m.sn.Rand("raft"),
		Transport: m.ep, Storage: m.disk,
	}, cfg, sm)
	if err != nil {
		m.c.t.Fatalf("start %s: %v", m.name, err)
	}
	r.OnLeadershipChange(func(isLeader bool, term uint64) { m.leading = append(m.leading, isLeader) })
	r.OnStop(func(err error) { m.stopErrs = append(m.stopErrs, err) })
	m.r = r
}

// crash kills m's machine: pending events die and unsynced writes are lost.
func (m *member) crash() {
	m.sn.Crash()
	m.disk.Crash()
	m.r = nil
}

// restart boots m's machine again and starts a driver from its disk.
func (m *member) restart() {
	m.sn.Start()
	if m.c.check != nil {
		m.c.check.next[m.name] = 0
	}
	m.start()
}

func (m *member) running() bool { return m.r != nil && m.r.Err() == nil }

func (c *cluster) member(name env.NodeID) *member {
	for _, m := range c.ms {
		if m.name == name {
			return m
		}
	}
	c.t.Fatalf("no member %s", name)
	return nil
}

// runFor advances virtual time by d.
func (c *cluster) runFor(d time.Duration) { c.k.RunUntil(c.k.Now()+d, nil) }

// waitFor runs the simulation until cond holds, failing the test after
// limit of virtual time.
func (c *cluster) waitFor(what string, limit time.Duration, cond func() bool) {
	c.t.Helper()
	if cond() {
		return
	}
	c.k.RunUntil(c.k.Now()+limit, cond)
	if !cond() {
		c.t.Fatalf("seed %d: %s: not reached within %v (virtual time %v)", c.k.Seed(), what, limit, c.k.Now())
	}
}

// leader is the running member that leads in the highest term, or nil.
func (c *cluster) leader() *member {
	var best *member
	var term uint64
	for _, m := range c.ms {
		if !m.running() {
			continue
		}
		if st := m.r.Status(); st.IsLeader && st.Term >= term {
			best, term = m, st.Term
		}
	}
	return best
}

func (c *cluster) waitLeader() *member {
	c.t.Helper()
	c.waitFor("a leader", 30*time.Second, func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		// Every running voter agrees on it.
		for _, m := range c.ms {
			if m.running() && slices.Contains(l.r.Status().Voters, m.rid) && m.r.Status().LeaderID != l.rid {
				return false
			}
		}
		return true
	})
	return c.leader()
}

func (c *cluster) followers(l *member) []*member {
	var out []*member
	for _, m := range c.ms {
		if m != l && m.running() {
			out = append(out, m)
		}
	}
	return out
}

// result is what a proposal's done received.
type result struct {
	done bool
	val  any
	err  error
}

func (m *member) propose(data string) *result {
	res := &result{}
	m.r.Propose([]byte(data), raft.DoneFunc(func(v any, err error) {
		if res.done {
			m.c.t.Errorf("done called twice for %q", data)
		}
		res.done, res.val, res.err = true, v, err
	}))
	return res
}

// write proposes data on m and waits for it to apply there.
func (c *cluster) write(m *member, data string) {
	c.t.Helper()
	res := m.propose(data)
	c.waitFor("write "+data, 20*time.Second, func() bool { return res.done })
	if res.err != nil {
		c.t.Fatalf("seed %d: write %q on %s: %v", c.k.Seed(), data, m.name, res.err)
	}
}

// writeMany keeps up to window proposals in flight on whichever member
// leads, retrying the ones that fail, until keys prefix0..prefix(n-1) are
// all applied on the leader. Keys are idempotent, so a retried proposal
// that had committed after all changes nothing.
func (c *cluster) writeMany(prefix string, n, window int, limit time.Duration) {
	c.t.Helper()
	next, inflight, doneCount := 0, 0, 0
	var retry []int
	ok := make([]bool, n)
	deadline := c.k.Now() + limit
	for doneCount < n {
		if c.k.Now() > deadline {
			c.t.Fatalf("seed %d: writeMany %s: %d of %d applied within %v", c.k.Seed(), prefix, doneCount, n, limit)
		}
		l := c.leader()
		for l != nil && inflight < window && (len(retry) > 0 || next < n) {
			var i int
			if len(retry) > 0 {
				i, retry = retry[0], retry[1:]
			} else {
				i, next = next, next+1
			}
			inflight++
			l.r.Propose([]byte(fmt.Sprintf("%s%d=v", prefix, i)), raft.DoneFunc(func(_ any, err error) {
				inflight--
				if err != nil {
					retry = append(retry, i)
					return
				}
				if !ok[i] {
					ok[i] = true
					doneCount++
				}
			}))
		}
		c.k.RunUntil(c.k.Now()+10*time.Millisecond, nil)
	}
}

// converged reports whether every running member applied the same
// proposals as want.
func (c *cluster) converged(want *member) bool {
	for _, m := range c.ms {
		if m.running() && (m.sm.Count != want.sm.Count || m.sm.Hash != want.sm.Hash) {
			return false
		}
	}
	return true
}

func (c *cluster) waitConverged(want *member) {
	c.t.Helper()
	if c.converged(want) {
		return
	}
	c.k.RunUntil(c.k.Now()+60*time.Second, func() bool { return c.converged(want) })
	if !c.converged(want) {
		c.t.Fatalf("seed %d: replicas did not converge on %s within 60s:\n%s", c.k.Seed(), want.name, c.describe())
	}
}

func (c *cluster) describe() string {
	var b strings.Builder
	for _, m := range c.ms {
		if m.r == nil {
			fmt.Fprintf(&b, "%s: down\n", m.name)
			continue
		}
		st := m.r.Status()
		fmt.Fprintf(&b, "%s: term %d role %s leader %s applied %d commit %d voters %x learners %x err %v count %d\n",
			m.name, st.Term, st.Role, st.Leader, st.Applied, st.Commit, st.Voters, st.Learners, st.Err, m.sm.Count)
	}
	return b.String()
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// forSeeds runs f on a fresh, activated kernel for seed base, or for
// RAFT_SEEDS consecutive seeds from base (a sweep). A failure names its
// seed in the subtest name.
func forSeeds(t *testing.T, base uint64, f func(t *testing.T, k *sim.Kernel)) {
	t.Helper()
	n := 1
	if s := os.Getenv("RAFT_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("RAFT_SEEDS=%q: want a positive count", s)
		}
		n = v
	}
	for i := 0; i < n; i++ {
		seed := base + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			k := sim.NewKernel(seed)
			defer k.Activate()()
			f(t, k)
		})
	}
}
