package raft_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/raft"
	"github.com/swarmsim/swarmsim/sim"
)

// Three and five managers elect exactly one leader that everyone follows,
// and it stays leader while nothing fails. The leader hears
// OnLeadershipChange(true) once.
func TestElection(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			forSeeds(t, 11, func(t *testing.T, k *sim.Kernel) {
				c := newCluster(t, k, n, testConfig())
				l := c.waitLeader()
				term := l.r.Status().Term
				c.runFor(10 * time.Second)
				if l2 := c.leader(); l2 != l || l2.r.Status().Term != term {
					t.Fatalf("leader changed without a fault:\n%s", c.describe())
				}
				for _, m := range c.ms {
					want := []bool(nil)
					if m == l {
						want = []bool{true}
					}
					if !slices.Equal(m.leading, want) {
						t.Errorf("%s leadership callbacks %v, want %v", m.name, m.leading, want)
					}
					if st := m.r.Status(); st.Leader != l.name || len(st.Voters) != n {
						t.Errorf("%s: leader %q voters %x", m.name, st.Leader, st.Voters)
					}
				}
				if got := len(l.r.Members()); got != n {
					t.Errorf("members = %d, want %d", got, n)
				}
			})
		})
	}
}

// Proposals on the leader commit and apply in the same order on every
// replica, packed or one entry each; done gets Apply's result.
func TestProposalsApplyEverywhere(t *testing.T) {
	for _, pack := range []bool{false, true} {
		t.Run(fmt.Sprintf("pack=%v", pack), func(t *testing.T) {
			forSeeds(t, 12, func(t *testing.T, k *sim.Kernel) {
				cfg := testConfig()
				cfg.EntryPerProposal = !pack
				c := newCluster(t, k, 3, cfg)
				l := c.waitLeader()
				var res []*result
				for i := 0; i < 300; i++ {
					res = append(res, l.propose(fmt.Sprintf("k%d=%d", i%17, i)))
					if i%50 == 49 {
						c.runFor(5 * time.Millisecond)
					}
				}
				c.waitFor("all applied", 20*time.Second, func() bool {
					for _, r := range res {
						if !r.done {
							return false
						}
					}
					return true
				})
				for i, r := range res {
					if r.err != nil {
						t.Fatalf("proposal %d: %v", i, r.err)
					}
				}
				// Results count applications on the leader, in proposal order.
				for i := 1; i < len(res); i++ {
					if res[i].val.(uint64) != res[i-1].val.(uint64)+1 {
						t.Fatalf("results out of order at %d: %v then %v", i, res[i-1].val, res[i].val)
					}
				}
				c.waitConverged(l)
				if l.sm.Count != 300 {
					t.Fatalf("leader applied %d proposals, want 300", l.sm.Count)
				}
				// Apply sees the leader's own proposals as such, and
				// nobody else's.
				if l.sm.Own != 300 {
					t.Fatalf("leader applied %d of its 300 proposals as its own", l.sm.Own)
				}
				for _, f := range c.followers(l) {
					if f.sm.Own != 0 {
						t.Fatalf("%s applied %d proposals as its own", f.name, f.sm.Own)
					}
				}
				st := l.r.Stats()
				if pack && st.EntriesCommitted > 150 {
					t.Errorf("packed: %d entries for 300 proposals; packing did not happen", st.EntriesCommitted)
				}
				if !pack && st.EntriesCommitted < 300 {
					t.Errorf("unpacked: %d entries for 300 proposals", st.EntriesCommitted)
				}
			})
		})
	}
}

// A follower's proposals are forwarded to the leader, and the follower's
// done fires when the entry applies on the follower.
func TestProposeViaFollower(t *testing.T) {
	forSeeds(t, 13, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		f := c.followers(l)[0]
		var res []*result
		for i := 0; i < 50; i++ {
			res = append(res, f.propose(fmt.Sprintf("f%d=x", i)))
		}
		c.waitFor("follower proposals applied", 20*time.Second, func() bool { return res[len(res)-1].done })
		for i, r := range res {
			if !r.done || r.err != nil {
				t.Fatalf("proposal %d: done %v err %v", i, r.done, r.err)
			}
		}
		if f.sm.Count < 50 || f.sm.M["f49"] != "x" {
			t.Fatalf("follower state when its done ran: count %d", f.sm.Count)
		}
		c.waitConverged(l)
		if f.sm.Own != 50 || l.sm.Own != 0 {
			t.Fatalf("applied as their own: %d by the proposing follower (want 50), %d by the leader (want 0)", f.sm.Own, l.sm.Own)
		}
	})
}

// The leader crashes, losing what it had not synced; the others elect a
// new leader and carry on; the old leader restarts from its disk with
// every entry it had applied (it applies only what it synced) and catches
// up.
func TestLeaderCrashRestart(t *testing.T) {
	forSeeds(t, 14, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		c.writeMany("a", 100, 16, 30*time.Second)
		// Leave proposals in flight so the crash lands mid-write.
		for i := 0; i < 20; i++ {
			l.propose(fmt.Sprintf("inflight%d=x", i))
		}
		c.runFor(time.Millisecond)
		appliedBefore := l.r.Status().Applied
		l.crash()

		l2 := c.waitLeader()
		if l2 == l {
			t.Fatal("crashed node still leads")
		}
		c.writeMany("b", 100, 16, 30*time.Second)

		disk, err := l.disk.Load()
		if err != nil {
			t.Fatal(err)
		}
		last := disk.Snapshot.Index + uint64(len(disk.Entries))
		if last < appliedBefore {
			t.Fatalf("disk holds entries up to %d but the node had applied %d before crashing", last, appliedBefore)
		}
		l.restart()
		c.waitConverged(l2)
		if l.sm.M["a99"] != "v" || l.sm.M["b99"] != "v" {
			t.Fatalf("restarted node lacks writes:\n%s", c.describe())
		}
	})
}

// A leader cut off with a minority steps down (CheckQuorum); the majority
// elects a leader in a higher term and keeps committing; proposals on the
// old leader fail; after healing everyone converges on the majority's log.
func TestMinorityPartition(t *testing.T) {
	forSeeds(t, 15, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 5, testConfig())
		l := c.waitLeader()
		c.writeMany("a", 20, 8, 20*time.Second)
		oldTerm := l.r.Status().Term
		fs := c.followers(l)
		minority := []*sim.Node{l.sn, fs[0].sn}
		majority := []*sim.Node{fs[1].sn, fs[2].sn, fs[3].sn}
		c.net.Partition([][]*sim.Node{minority, majority})

		stale := l.propose("stale=1")
		c.waitFor("old leader steps down", 5*time.Second, func() bool { return len(l.leading) == 2 })
		if !slices.Equal(l.leading, []bool{true, false}) || l.r.Status().IsLeader {
			t.Errorf("old leader callbacks %v, want [true false]", l.leading)
		}
		c.waitFor("majority elects", 20*time.Second, func() bool {
			for _, m := range fs[1:] {
				if st := m.r.Status(); st.IsLeader && st.Term > oldTerm {
					return true
				}
			}
			return false
		})
		c.writeMany("b", 50, 8, 20*time.Second)
		c.waitFor("stale proposal fails", 10*time.Second, func() bool { return stale.done })
		if !isAny(stale.err, raft.ErrLeadershipLost, raft.ErrTimeout) {
			t.Errorf("stale proposal: %v", stale.err)
		}
		// The minority follower forwards to a leader that no longer leads; the
		// proposal fails once it notices (its election timeout) at the latest.
		r := fs[0].propose("minority=1")
		c.runFor(3 * time.Second)
		if !r.done || !isAny(r.err, raft.ErrNoLeader, raft.ErrLeadershipLost, raft.ErrTimeout) {
			t.Errorf("minority proposal: done %v err %v", r.done, r.err)
		}
		c.net.Heal()
		nl := c.waitLeader()
		c.waitConverged(nl)
		if _, ok := l.sm.M["stale"]; ok {
			t.Error("the old leader's uncommitted proposal survived the partition")
		}
		if l.sm.M["b49"] != "v" {
			t.Error("old leader did not catch up")
		}
	})
}

// A follower cut off while the log moves far past the leader's compacted
// tail catches up from a snapshot.
func TestSnapshotCatchUp(t *testing.T) {
	forSeeds(t, 16, func(t *testing.T, k *sim.Kernel) {
		cfg := testConfig()
		cfg.SnapshotEntries = 50
		cfg.LogTailEntries = 20
		cfg.EntryPerProposal = true // the log moves by one entry per write
		c := newCluster(t, k, 3, cfg)
		l := c.waitLeader()
		f := c.followers(l)[0]
		c.net.Isolate(f.sn)
		c.writeMany("a", 500, 32, 60*time.Second)
		c.net.Heal()
		c.waitConverged(l)
		if got := f.r.Stats().SnapshotsReceived; got == 0 {
			t.Fatal("follower caught up without a snapshot; the test does not test what it says")
		}
		if got := l.r.Stats().SnapshotsSent; got == 0 {
			t.Fatal("leader sent no snapshot")
		}
		if f.sm.M["a499"] != "v" {
			t.Fatal("follower lacks the last write")
		}
		// It keeps replicating normally afterwards.
		c.write(l, "after=1")
		c.waitConverged(l)
	})
}

// Managers restarted after snapshots and log compaction restore the
// snapshot from disk, re-apply the entries after it, and lose no
// acknowledged write, even when all of them crash at once.
func TestRestartAfterSnapshot(t *testing.T) {
	forSeeds(t, 17, func(t *testing.T, k *sim.Kernel) {
		cfg := testConfig()
		cfg.SnapshotEntries = 50
		cfg.LogTailEntries = 10
		c := newCluster(t, k, 3, cfg)
		l := c.waitLeader()
		c.writeMany("a", 300, 16, 60*time.Second)
		f := c.followers(l)[0]
		f.crash()
		c.writeMany("b", 30, 8, 20*time.Second)
		d, _ := f.disk.Load()
		if d.Snapshot.Index == 0 {
			t.Fatal("no snapshot on disk")
		}
		f.restart()
		c.waitConverged(l)

		c.writeMany("c", 77, 8, 20*time.Second) // ends off a snapshot boundary
		for _, m := range c.ms {
			m.crash()
		}
		c.runFor(time.Second)
		for _, m := range c.ms {
			m.restart()
		}
		l = c.waitLeader()
		c.write(l, "after=1")
		c.waitConverged(l)
		for _, key := range []string{"a299", "b29", "c76", "after"} {
			if _, ok := l.sm.M[key]; !ok {
				t.Errorf("write %s lost across the crash of every manager", key)
			}
		}
	})
}

// A fresh manager is added under write load: it joins as a learner, is
// promoted once caught up, and ends with the same state. It catches up
// from a snapshot when the leader's log is compacted, and by replaying the
// whole log (bootstrap entries included) when it is not.
func TestAddMemberUnderLoad(t *testing.T) {
	for _, viaSnapshot := range []bool{true, false} {
		t.Run(fmt.Sprintf("snapshot=%v", viaSnapshot), func(t *testing.T) { testAddMember(t, viaSnapshot) })
	}
}

func testAddMember(t *testing.T, viaSnapshot bool) {
	forSeeds(t, 18, func(t *testing.T, k *sim.Kernel) {
		cfg := testConfig()
		if viaSnapshot {
			cfg.SnapshotEntries = 100
			cfg.LogTailEntries = 30
			cfg.EntryPerProposal = true // the log moves by one entry per write
		}
		c := newCluster(t, k, 3, cfg)
		l := c.waitLeader()
		c.writeMany("a", 200, 16, 30*time.Second)

		m4 := c.addMachine("m4")
		m4.start() // fresh: no Bootstrap, waits for the leader
		var addErr error
		added := false
		l.r.AddMember(raft.Member{RaftID: m4.rid, NodeID: m4.name, Addr: "m4:4242"}, func(err error) { added, addErr = true, err })
		sawLearner := false
		load := 0
		c.waitFor("member added", 60*time.Second, func() bool {
			if st := l.r.Status(); slices.Contains(st.Learners, m4.rid) {
				sawLearner = true
			}
			if load < 300 && k.Now()%(5*time.Millisecond) < time.Millisecond {
				l.propose(fmt.Sprintf("load%d=x", load))
				load++
			}
			return added
		})
		if addErr != nil {
			t.Fatalf("AddMember: %v\n%s", addErr, c.describe())
		}
		if !sawLearner {
			t.Error("m4 never showed as a learner before becoming a voter")
		}
		if load == 0 {
			t.Error("no writes were made while m4 joined")
		}
		if got := m4.r.Stats().SnapshotsReceived > 0; got != viaSnapshot {
			t.Errorf("m4 received a snapshot: %v, want %v", got, viaSnapshot)
		}
		st := l.r.Status()
		if !slices.Contains(st.Voters, m4.rid) || len(st.Voters) != 4 {
			t.Fatalf("voters after add: %x", st.Voters)
		}
		c.write(l, "after=1")
		c.waitConverged(l)
		if got := len(m4.r.Members()); got != 4 {
			t.Errorf("m4 knows %d members, want 4", got)
		}
		if err := raftErrOnFollower(c, l); err != nil {
			t.Error(err)
		}
	})
}

// A member added to an idle cluster whose log is compacted past the
// snapshots taken before it joined still catches up: raft refuses a
// snapshot whose configuration lacks the receiver, so the leader needs a
// newer one.
func TestAddMemberIdleCompacted(t *testing.T) {
	forSeeds(t, 25, func(t *testing.T, k *sim.Kernel) {
		cfg := testConfig()
		cfg.SnapshotEntries = 50
		cfg.LogTailEntries = 5
		c := newCluster(t, k, 3, cfg)
		l := c.waitLeader()
		c.writeMany("a", 120, 16, 30*time.Second)
		m4 := c.addMachine("m4")
		m4.start()
		var addErr error
		added := false
		l.r.AddMember(raft.Member{RaftID: m4.rid, NodeID: m4.name}, func(err error) { added, addErr = true, err })
		c.waitFor("member added", 30*time.Second, func() bool { return added })
		if addErr != nil {
			t.Fatalf("AddMember: %v\n%s", addErr, c.describe())
		}
		c.waitConverged(l)
		if m4.r.Stats().SnapshotsReceived == 0 {
			t.Error("m4 caught up without a snapshot; the log was meant to be compacted")
		}
	})
}

// raftErrOnFollower checks that membership calls on a follower fail with
// ErrNotLeader naming the leader.
func raftErrOnFollower(c *cluster, l *member) error {
	f := c.followers(l)[0]
	var got error
	f.r.AddMember(raft.Member{RaftID: 999, NodeID: "x"}, func(err error) { got = err })
	c.runFor(time.Millisecond)
	var nl *raft.NotLeaderError
	if !errors.Is(got, raft.ErrNotLeader) || !errors.As(got, &nl) || nl.Leader != l.name {
		return fmt.Errorf("AddMember on follower: %v", got)
	}
	return nil
}

// remove has leader l remove member f and waits until it is done.
func (c *cluster) remove(l, f *member) {
	c.t.Helper()
	var done bool
	var err error
	l.r.RemoveMember(f.rid, func(e error) { done, err = true, e })
	c.waitFor("removal", 20*time.Second, func() bool { return done })
	if err != nil {
		c.t.Fatal(err)
	}
}

// A follower removed while cut off never gets the entry that removes it,
// and the leader no longer replicates to it: once the cut heals, the
// notice a member sends to a removed one's messages stops it.
func TestRemovedWhileCutOff(t *testing.T) {
	forSeeds(t, 31, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 4, testConfig())
		l := c.waitLeader()
		f := c.followers(l)[0]
		c.net.Isolate(f.sn)
		c.runFor(2 * time.Second)
		c.remove(l, f)
		if f.r.Err() != nil {
			t.Fatalf("the cut-off node stopped before it could hear: %v", f.r.Err())
		}
		c.net.Heal()
		c.waitFor("removed node stops", 20*time.Second, func() bool { return f.r.Err() != nil })
		if !errors.Is(f.r.Err(), raft.ErrRemoved) || !strings.Contains(f.r.Err().Error(), "notified by") {
			t.Fatalf("removed node stopped with %v", f.r.Err())
		}
	})
}

// Removing a follower: it leaves the configuration and stops; the other
// two keep committing.
func TestRemoveFollower(t *testing.T) {
	forSeeds(t, 19, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		f := c.followers(l)[0]
		c.remove(l, f)
		c.waitFor("removed node stops", 10*time.Second, func() bool { return f.r.Err() != nil })
		if !errors.Is(f.r.Err(), raft.ErrRemoved) {
			t.Fatalf("removed node stopped with %v", f.r.Err())
		}
		if st := l.r.Status(); len(st.Voters) != 2 {
			t.Fatalf("voters %x", st.Voters)
		}
		c.writeMany("a", 50, 8, 20*time.Second)
		c.waitConverged(l)
		var again error
		l.r.AddMember(raft.Member{RaftID: f.rid, NodeID: f.name}, func(err error) { again = err })
		c.runFor(time.Millisecond)
		if !errors.Is(again, raft.ErrIDRemoved) {
			t.Errorf("re-adding a removed raft ID: %v", again)
		}
	})
}

// The leader removes itself: it hands leadership to a follower first, the
// new leader commits the removal, the old leader's done runs and it stops.
func TestRemoveLeader(t *testing.T) {
	forSeeds(t, 20, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		c.writeMany("a", 30, 8, 20*time.Second)
		oldTerm := l.r.Status().Term
		confsBefore := len(c.check.confs)
		var done bool
		var rmErr error
		l.r.RemoveMember(l.rid, func(err error) { done, rmErr = true, err })
		c.waitFor("self removal", 30*time.Second, func() bool { return done })
		if rmErr != nil {
			t.Fatalf("%v\n%s", rmErr, c.describe())
		}
		if !errors.Is(l.r.Err(), raft.ErrRemoved) {
			t.Fatalf("old leader: err %v", l.r.Err())
		}
		if !slices.Equal(l.leading, []bool{true, false}) {
			t.Errorf("old leader callbacks %v", l.leading)
		}
		nl := c.waitLeader()
		if nl == l {
			t.Fatal("removed node still leads")
		}
		if st := nl.r.Status(); len(st.Voters) != 2 || slices.Contains(st.Voters, l.rid) {
			t.Fatalf("voters %x", st.Voters)
		}
		// Leadership moved first: the removal entry belongs to a later
		// term than the old leader's, so the new leader appended it.
		confs := c.check.confs[confsBefore:]
		if len(confs) != 1 || confs[0].Term <= oldTerm {
			t.Fatalf("conf changes after the request: %+v (old leader's term %d)", confs, oldTerm)
		}
		c.writeMany("b", 30, 8, 20*time.Second)
		c.waitConverged(nl)
	})
}

// oneFollowerDown starts three managers, and crashes a follower for 5s.
func oneFollowerDown(t *testing.T, k *sim.Kernel) (c *cluster, l, dead, alive *member) {
	c = newCluster(t, k, 3, testConfig())
	l = c.waitLeader()
	fs := c.followers(l)
	dead, alive = fs[0], fs[1]
	dead.crash()
	c.runFor(5 * time.Second)
	return c, l, dead, alive
}

// With one of three managers down, removing a live one would leave one
// reachable voter of two: refused with the numbers. Removing the dead one
// is fine.
func TestRemoveRefusedWithoutQuorum(t *testing.T) {
	forSeeds(t, 21, func(t *testing.T, k *sim.Kernel) {
		c, l, dead, alive := oneFollowerDown(t, k)
		var err error
		l.r.RemoveMember(alive.rid, func(e error) { err = e })
		c.runFor(time.Millisecond)
		if !errors.Is(err, raft.ErrQuorumAtRisk) || !strings.Contains(err.Error(), "2 voters of which 1 are reachable, and a quorum needs 2") {
			t.Fatalf("removing a live follower with one down: %v", err)
		}
		err = errors.New("not called")
		l.r.RemoveMember(l.rid, func(e error) { err = e })
		c.runFor(time.Millisecond)
		if !errors.Is(err, raft.ErrQuorumAtRisk) {
			t.Fatalf("leader removing itself with one down: %v", err)
		}
		err = errors.New("not called")
		l.r.RemoveMember(dead.rid, func(e error) { err = e })
		c.waitFor("dead member removed", 20*time.Second, func() bool { return err == nil || err.Error() != "not called" })
		if err != nil {
			t.Fatalf("removing the dead follower: %v", err)
		}
		c.write(l, "after=1")
	})
}

// Reachable is the leader's view that quorum checks count: itself, and
// the members it heard from within an election timeout. A follower has no
// view, nor does the leader of a node that is no member.
func TestReachable(t *testing.T) {
	forSeeds(t, 29, func(t *testing.T, k *sim.Kernel) {
		_, l, dead, alive := oneFollowerDown(t, k)
		for _, tc := range []struct {
			m    *member
			want bool
		}{{l, true}, {alive, true}, {dead, false}} {
			if r, ok := l.r.Reachable(tc.m.name); !ok || r != tc.want {
				t.Fatalf("leader on %s: reachable %v, ok %v; want %v", tc.m.name, r, ok, tc.want)
			}
		}
		if _, ok := l.r.Reachable("nobody"); ok {
			t.Fatal("the leader has a view of a node that is no member")
		}
		if _, ok := alive.r.Reachable(l.name); ok {
			t.Fatal("a follower has a view")
		}
	})
}

// ReadIndex returns only once the node has applied every write that was
// acknowledged before the read began, on the leader and on followers.
func TestReadIndex(t *testing.T) {
	forSeeds(t, 22, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		for round := 0; round < 20; round++ {
			want := fmt.Sprint(round)
			res := l.propose("key=" + want)
			c.waitFor("write", 10*time.Second, func() bool { return res.done })
			if res.err != nil {
				t.Fatal(res.err)
			}
			// The write is acknowledged; followers may not have applied it.
			pending := 0
			for _, m := range c.ms {
				pending++
				m.r.ReadIndex(func(err error) {
					pending--
					if err != nil {
						t.Errorf("round %d: read on %s: %v", round, m.name, err)
						return
					}
					if got := m.sm.M["key"]; got != want {
						t.Errorf("round %d: read on %s saw key=%q, want %q", round, m.name, got, want)
					}
				})
			}
			c.waitFor("reads", 10*time.Second, func() bool { return pending == 0 })
		}
	})
}

// On a network that loses 5% of messages, duplicates some and reorders
// them, writes still commit and replicas converge.
func TestLossyNetwork(t *testing.T) {
	forSeeds(t, 23, func(t *testing.T, k *sim.Kernel) {
		cfg := testConfig()
		cfg.SnapshotEntries = 200
		c := newCluster(t, k, 3, cfg)
		lossy := sim.LinkModel{
			Latency:   sim.Range{Min: time.Millisecond, Max: 8 * time.Millisecond},
			Loss:      0.05,
			Duplicate: 0.05,
			Reorder:   true,
		}
		for _, a := range c.ms {
			for _, b := range c.ms {
				if a != b {
					c.net.SetLink(a.sn, b.sn, lossy)
				}
			}
		}
		c.waitLeader()
		c.writeMany("a", 500, 32, 120*time.Second)
		l := c.waitLeader()
		c.waitConverged(l)
		if c.net.Dropped == 0 || c.net.Duplicated == 0 {
			t.Fatalf("network dropped %d and duplicated %d messages; the test is not lossy", c.net.Dropped, c.net.Duplicated)
		}
	})
}

// The same seed gives the same run, event for event; another seed gives
// another run.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) uint64 {
		k := sim.NewKernel(seed)
		defer k.Activate()()
		cfg := testConfig()
		cfg.SnapshotEntries = 40
		c := newCluster(t, k, 3, cfg)
		l := c.waitLeader()
		c.writeMany("a", 100, 8, 30*time.Second)
		l.crash()
		c.waitLeader()
		c.writeMany("b", 50, 8, 30*time.Second)
		l.restart()
		c.waitConverged(c.waitLeader())
		return k.TraceHash()
	}
	a, b, other := run(7), run(7), run(8)
	if a != b {
		t.Fatalf("seed 7 twice: trace hashes %x and %x", a, b)
	}
	if a == other {
		t.Fatalf("seeds 7 and 8 gave the same trace hash %x", a)
	}
}

// Stop fails every waiting proposal and read with ErrStopped; a proposal
// that cannot be decoded stops every replica with the decode error.
func TestStopAndFatalApply(t *testing.T) {
	forSeeds(t, 24, func(t *testing.T, k *sim.Kernel) {
		c := newCluster(t, k, 3, testConfig())
		l := c.waitLeader()
		f := c.followers(l)[0]
		p := f.propose("x=1")
		var readErr error
		f.r.ReadIndex(func(err error) { readErr = err })
		f.r.Stop()
		c.runFor(time.Millisecond)
		if !errors.Is(p.err, raft.ErrStopped) || !errors.Is(readErr, raft.ErrStopped) {
			t.Fatalf("after Stop: proposal %v, read %v", p.err, readErr)
		}
		late := f.propose("y=1")
		c.runFor(time.Millisecond)
		if !errors.Is(late.err, raft.ErrStopped) {
			t.Fatalf("proposal after Stop: %v", late.err)
		}

		bad := l.propose("bad entry")
		c.waitFor("replicas stop", 10*time.Second, func() bool {
			for _, m := range c.ms {
				if m != f && m.r.Err() == nil {
					return false
				}
			}
			return true
		})
		for _, m := range c.ms {
			if m != f && !strings.Contains(fmt.Sprint(m.r.Err()), "cannot decode") {
				t.Errorf("%s stopped with %v", m.name, m.r.Err())
			}
		}
		if !bad.done || !errors.Is(bad.err, raft.ErrStopped) {
			t.Errorf("bad proposal: done %v err %v", bad.done, bad.err)
		}
	})
}
