package sim

import (
	"fmt"
	"testing"

	"github.com/swarmsim/swarmsim/engine/env"
)

func ents(term uint64, from, to uint64) []env.Entry {
	var out []env.Entry
	for i := from; i <= to; i++ {
		out = append(out, env.Entry{Term: term, Index: i, Data: []byte(fmt.Sprint("e", i))})
	}
	return out
}

func indexes(t *testing.T, d *Disk) string {
	t.Helper()
	st, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprint(st.Snapshot.Index, ":")
	for _, e := range st.Entries {
		s += fmt.Sprintf(" %d/%d=%s", e.Index, e.Term, e.Data)
	}
	return s
}

// A snapshot keeps the entries after it when the log agrees with it at
// its index, and drops the whole log when it does not; the log goes on
// from there, a conflicting suffix replaced, and only synced writes count.
func TestDiskSnapshotCompaction(t *testing.T) {
	k := NewKernel(1)
	d := NewDisk(k.AddNode("m1"), Fixed(0))
	sync := func() {
		d.Sync(func(error) {})
		for k.Step() {
		}
	}
	d.Append(ents(1, 1, 6))
	sync()
	d.SaveSnapshot(env.Snapshot{Index: 4, Term: 1})
	d.Append(ents(2, 7, 7))
	if got, want := indexes(t, d), "0: 1/1=e1 2/1=e2 3/1=e3 4/1=e4 5/1=e5 6/1=e6"; got != want {
		t.Fatalf("before the sync: %s, want %s", got, want)
	}
	sync()
	if got, want := indexes(t, d), "4: 5/1=e5 6/1=e6 7/2=e7"; got != want {
		t.Fatalf("after the snapshot: %s, want %s", got, want)
	}
	d.Append(ents(3, 6, 8)) // replaces 6 and 7
	sync()
	if got, want := indexes(t, d), "4: 5/1=e5 6/3=e6 7/3=e7 8/3=e8"; got != want {
		t.Fatalf("after a conflicting append: %s, want %s", got, want)
	}
	d.SaveSnapshot(env.Snapshot{Index: 7, Term: 2}) // the log has 7 at term 3
	sync()
	if got, want := indexes(t, d), "7:"; got != want {
		t.Fatalf("after a disagreeing snapshot: %s, want %s", got, want)
	}
	d.Append(ents(4, 8, 9))
	sync()
	if got, want := indexes(t, d), "7: 8/4=e8 9/4=e9"; got != want {
		t.Fatalf("after appending past it: %s, want %s", got, want)
	}
}
