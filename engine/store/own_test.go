package store

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/engine/api"
)

// ownProposer stands for raft on the proposing node: it holds proposals
// until flush, then applies each to the proposer's store with its own
// Proposal, as the raft driver does, and to a follower's store decoded.
type ownProposer struct {
	leader, follower *Store
	held             []heldOwn
}

type heldOwn struct {
	data []byte
	p    Proposal
}

func (o *ownProposer) Propose(data []byte, p Proposal) { o.held = append(o.held, heldOwn{data, p}) }

func (o *ownProposer) flush(t *testing.T) {
	t.Helper()
	held := o.held
	o.held = nil
	for _, h := range held {
		index := o.leader.AppliedIndex() + 1
		res, err := o.leader.Apply(index, h.data, h.p)
		resF, errF := o.follower.Apply(index, h.data, nil)
		if err != nil || errF != nil {
			t.Fatalf("apply %d: %v, follower %v", index, err, errF)
		}
		if fmt.Sprint(res) != fmt.Sprint(resF) {
			t.Fatalf("apply %d: proposer got %v, follower %v", index, res, resF)
		}
		h.p.Done(res, nil)
	}
}

// The store that proposes a WriteKV applies the key and value it was
// asked to write instead of decoding its entry, and ends in the state a
// store that decodes every entry reaches: same snapshot, same answers,
// same watch events. Anything else it decodes.
func TestOwnKVWrites(t *testing.T) {
	clk := &fakeClock{now: epoch}
	leader, follower := New(clk), New(clk)
	prop := &ownProposer{leader: leader, follower: follower}
	leader.SetProposer(prop)
	var evL, evF []string
	record := func(to *[]string) func([]Event) {
		return func(evs []Event) {
			for _, e := range evs {
				*to = append(*to, fmt.Sprintf("%v %s %v -> %v", e.Action, e.ID, e.Old, e.New))
			}
		}
	}
	leader.Watch(record(&evL))
	follower.Watch(record(&evF))
	var results []error
	answer := func(err error) { results = append(results, err) }
	write := func(fn func(tx *Tx) error) { leader.Update(fn, answer) }
	// Creations and updates at every value length around the inline sizes.
	for n := range 41 {
		leader.WriteKV(fmt.Sprintf("k%02d", n%7), strings.Repeat("v", n), 1, answer)
		prop.flush(t)
		clk.now = clk.now.Add(1)
	}
	// Two updates based on the same version: the second loses when it
	// applies, on both stores. So does the second of two creations.
	leader.WriteKV("k01", "first", 1, answer)
	leader.WriteKV("k01", "second", 1, answer)
	leader.WriteKV("new", "a", 1, answer)
	leader.WriteKV("new", "b", 1, answer)
	prop.flush(t)
	// A lone Tx.WriteKV is decoded, as is a transaction of two writes.
	write(func(tx *Tx) error { return tx.WriteKV("k05", "t", tx.KV("k05")) })
	write(func(tx *Tx) error {
		if err := tx.WriteKV("k02", "x", tx.KV("k02")); err != nil {
			return err
		}
		return tx.WriteKV("k03", "y", tx.KV("k03"))
	})
	// So is a KV given to Update.
	write(func(tx *Tx) error {
		cur := tx.KV("k04")
		return tx.Update(&api.KV{Key: "k04", Value: []byte("z"), Meta: &api.Meta{Version: cur.GetMeta().GetVersion()}})
	})
	prop.flush(t)

	ok := 0
	for _, err := range results {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrContended):
			t.Fatalf("unexpected outcome %v", err)
		}
	}
	if want := len(results) - 2; ok != want {
		t.Fatalf("%d of %d writes applied, want %d: %v", ok, len(results), want, results)
	}
	if got := leader.KV("k01").GetValue(); string(got) != "first" {
		t.Fatalf("k01 = %q, want the first of two racing updates", got)
	}
	if st, want := leader.Stats().OwnApplied, uint64(41+4); st != want {
		t.Fatalf("%d proposals applied as the proposer's own, want %d", st, want)
	}
	if st := follower.Stats().OwnApplied; st != 0 {
		t.Fatalf("the follower applied %d proposals as its own", st)
	}
	a, err := leader.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := follower.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("the proposer's snapshot differs from the follower's")
	}
	if strings.Join(evL, "\n") != strings.Join(evF, "\n") {
		t.Fatalf("watch events differ:\nproposer:\n%s\nfollower:\n%s", strings.Join(evL, "\n"), strings.Join(evF, "\n"))
	}
	for _, kv := range leader.KVs() {
		if n := len(kv.GetValue()); n > 0 && n <= kvInlineValue && cap(kv.GetValue()) != n {
			t.Fatalf("%s: a %d-byte value has capacity %d", kv.Key, n, cap(kv.GetValue()))
		}
	}
}

// WriteKV proposes the very bytes Update proposes for a lone Tx.WriteKV,
// and fails the same way on the same bad input.
func TestWriteKVProposesAsUpdate(t *testing.T) {
	clk := &fakeClock{now: epoch}
	viaUpdate, viaWrite := New(clk), New(clk)
	pu, pw := &recordingProposer{}, &recordingProposer{}
	viaUpdate.SetProposer(pu)
	viaWrite.SetProposer(pw)
	for _, s := range []*Store{viaUpdate, viaWrite} {
		mustApply(t, s, 1, aCreate(&api.KV{Key: "there", Value: []byte("old")}))
	}
	for _, c := range []struct{ key, value string }{
		{"new", ""}, {"new", "v"}, {"there", ""}, {"there", strings.Repeat("x", 16)},
		{"there", strings.Repeat("x", 33)}, {"there", strings.Repeat("x", 300)}, {"clé", "é"},
		{"", "v"}, {"\xff", "v"},
	} {
		var errU, errW error
		viaUpdate.Update(func(tx *Tx) error { return tx.WriteKV(c.key, c.value, tx.KV(c.key)) }, func(err error) { errU = err })
		viaWrite.WriteKV(c.key, c.value, 1, func(err error) { errW = err })
		if fmt.Sprint(errU) != fmt.Sprint(errW) {
			t.Fatalf("%q=%q: Update failed with %v, WriteKV with %v", c.key, c.value, errU, errW)
		}
		if len(pu.props) != len(pw.props) {
			t.Fatalf("%q=%q: %d proposals through Update, %d through WriteKV", c.key, c.value, len(pu.props), len(pw.props))
		}
		if n := len(pu.props); n > 0 && !bytes.Equal(pu.props[n-1], pw.props[n-1]) {
			t.Fatalf("%q=%q: WriteKV proposed %x, Update %x", c.key, c.value, pw.props[n-1], pu.props[n-1])
		}
	}
	if len(pu.props) != 7 {
		t.Fatalf("%d proposals, want 7 (the empty and the invalid key fail)", len(pu.props))
	}
	viaWrite.SetMaxProposalBytes(40)
	var err error
	viaWrite.WriteKV("big", strings.Repeat("x", 40), 1, func(e error) { err = e })
	if !errors.Is(err, ErrProposalTooLarge) {
		t.Fatalf("a 40-byte value under a 40-byte limit: %v", err)
	}
}

// A WriteKV that loses its race is made again against the version then
// stored; the proposer applies each try as its own.
func TestWriteKVRetries(t *testing.T) {
	clk := &fakeClock{now: epoch}
	leader, follower := New(clk), New(clk)
	prop := &ownProposer{leader: leader, follower: follower}
	leader.SetProposer(prop)
	var results []error
	for _, v := range []string{"a", "b", "c"} {
		leader.WriteKV("k", v, 2, func(err error) { results = append(results, err) })
	}
	// Three creations race: the first applies, the others lose and try
	// again as updates of it, of which one applies and the last loses
	// again, for the second and last time.
	prop.flush(t)
	prop.flush(t)
	if len(prop.held) != 0 || len(results) != 3 {
		t.Fatalf("%d held, %d answered", len(prop.held), len(results))
	}
	if results[0] != nil || results[1] != nil || !errors.Is(results[2], ErrContended) {
		t.Fatalf("results %v, want nil, nil, contended", results)
	}
	if got := string(leader.KV("k").GetValue()); got != "b" {
		t.Fatalf("k = %q, want b", got)
	}
	if st := leader.Stats(); st.OwnApplied != 5 || st.Conflicts != 3 {
		t.Fatalf("%d applied as own, %d conflicts; want 5 and 3", st.OwnApplied, st.Conflicts)
	}
	a, _ := leader.Snapshot()
	b, _ := follower.Snapshot()
	if !bytes.Equal(a, b) {
		t.Fatal("the proposer's snapshot differs from the follower's")
	}
}

// A store with no KV watcher does not log a lone KV write, yet still
// undoes a proposal whose later action fails, and publishes to a KV
// watcher once there is one.
func TestKVLogOnlyWhenRead(t *testing.T) {
	s, _ := newSyncStore()
	mustApply(t, s, 1, aCreate(&api.KV{Key: "a", Value: []byte("1")}))
	err := apply(t, s, 2, aCreate(&api.KV{Key: "b", Value: []byte("2")}), aCreate(&api.KV{Key: "a", Value: []byte("3")}))
	if !errors.Is(err, ErrExist) {
		t.Fatalf("second action: %v, want ErrExist", err)
	}
	if s.KV("b") != nil || string(s.KV("a").GetValue()) != "1" {
		t.Fatalf("a rejected proposal left b=%v, a=%q", s.KV("b"), s.KV("a").GetValue())
	}
	var got []string
	s.WatchKinds(KindSetOf(KindKV), func(evs []Event) {
		for _, e := range evs {
			got = append(got, fmt.Sprintf("%v %s", e.Action, e.ID))
		}
	})
	mustApply(t, s, 3, aUpdate(&api.KV{Key: "a", Value: []byte("4"), Meta: &api.Meta{Version: 1}}))
	if len(got) != 1 || got[0] != fmt.Sprintf("%v a", ActionUpdate) {
		t.Fatalf("events %v", got)
	}
}

// A lone update of a key no watcher looks at changes the stored KV in
// place, without allocating; what readers got before (a KV, a list, a Tx
// read, a watch event from when a watcher looked) does not change, and a
// store that allocates a new object for every write ends byte-identical.
func TestKVUpdatedInPlace(t *testing.T) {
	s, _ := newSyncStore()
	var events []*api.KV
	cancel := s.WatchKinds(KindSetOf(KindKV), func(evs []Event) {
		for _, e := range evs {
			events = append(events, e.New.(*api.KV))
		}
	})
	var seen []*api.KV
	watched, _ := newSyncStore()
	watched.WatchKinds(KindSetOf(KindKV), func(evs []Event) {
		for _, e := range evs {
			seen = append(seen, e.New.(*api.KV))
		}
	})
	both := func(ts int64, a ...*api.StoreAction) {
		t.Helper()
		mustApply(t, s, ts, a...)
		mustApply(t, watched, ts, a...)
	}
	both(10, aCreate(&api.KV{Key: "k", Value: []byte("abc")}), aCreate(&api.KV{Key: "n", Value: []byte("1")}))
	cancel()
	read, listed := s.KV("k"), s.KVs()
	var inTx *api.KV
	mustUpdate(t, s, func(tx *Tx) error { inTx = tx.KV("k"); return nil })
	both(20, aUpdate(&api.KV{Key: "k", Value: []byte("xyz"), Meta: &api.Meta{Version: 1}}))
	for name, kv := range map[string]*api.KV{"KV": read, "KVs": listed[0], "Tx.KV": inTx, "event": events[0]} {
		if string(kv.GetValue()) != "abc" || kv.GetMeta().GetVersion() != 1 || kv.GetMeta().GetUpdatedAt() != 10 {
			t.Fatalf("%s read before an update changed under its reader: %v", name, kv)
		}
	}
	if got := s.KV("k"); string(got.GetValue()) != "xyz" || got.GetMeta().GetVersion() != 2 ||
		got.GetMeta().GetCreatedAt() != 10 || got.GetMeta().GetUpdatedAt() != 20 {
		t.Fatalf("after the update: %v", got)
	}

	// Same-length values, then shorter and longer ones than the block
	// holds, then an empty one.
	values := []string{"uvw", "rst", "a", strings.Repeat("L", 9), strings.Repeat("M", 40), "", "back"}
	for i, v := range values {
		cur := s.KV("k").GetMeta().GetVersion()
		both(int64(30+i), aUpdate(&api.KV{Key: "k", Value: []byte(v), Meta: &api.Meta{Version: cur}}))
		if got := string(s.KV("k").GetValue()); got != v {
			t.Fatalf("k = %q, want %q", got, v)
		}
	}
	if !bytes.Equal(snapshot(t, s), snapshot(t, watched)) {
		t.Fatal("the store updating in place and the one that does not differ")
	}
	if got := string(seen[2].GetValue()); got != "xyz" || len(seen) != 3+len(values) {
		t.Fatalf("%d events, the first update's holds %q; want %d and xyz", len(seen), got, 3+len(values))
	}

	// Applying a lone same-length update allocates nothing.
	var entries [][]byte
	next := s.AppliedIndex()
	for i := range 102 {
		entries = append(entries, enc(t, 100, aUpdate(&api.KV{Key: "k", Value: []byte(fmt.Sprintf("v%03d", i)), Meta: &api.Meta{Version: next}})))
		next++
	}
	i := 0
	if allocs := testing.AllocsPerRun(100, func() {
		if res, err := s.Apply(s.AppliedIndex()+1, entries[i], nil); err != nil || res != nil {
			t.Fatalf("apply %d: %v, %v", i, res, err)
		}
		i++
	}); allocs != 0 {
		t.Fatalf("a lone KV update allocates %v times", allocs)
	}
}
