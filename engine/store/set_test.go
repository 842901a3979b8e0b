package store

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// checkSet verifies a recSet's invariants and its content against want
// (sorted).
func checkSet(t tb, s *recSet[string], want []string) {
	t.Helper()
	total := 0
	prev := ""
	for ci, c := range s.chunks {
		if len(c) == 0 || cap(c) > maxChunk {
			t.Fatalf("chunk %d holds %d recs in room for %d", ci, len(c), cap(c))
		}
		for _, e := range c {
			if total > 0 && e.r.id <= prev {
				t.Fatalf("chunk %d: %q after %q", ci, e.r.id, prev)
			}
			if e.key != idKey(e.r.id) {
				t.Fatalf("chunk %d: stale key for %q", ci, e.r.id)
			}
			prev = e.r.id
			total++
		}
	}
	if total != s.Len() {
		t.Fatalf("Len %d, counted %d", s.Len(), total)
	}
	var got []string
	for v := range s.all() {
		got = append(got, v)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("set holds %d ids, want %d (first difference matters)", len(got), len(want))
	}
	if l := s.list(); !slices.Equal(l, want) && !(len(l) == 0 && len(want) == 0) {
		t.Fatal("list differs from all")
	}
}

func TestRecSetProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s recSet[string]
		model := map[string]bool{}
		universe := rapid.IntRange(1, 3000).Draw(t, "universe")
		ops := rapid.IntRange(0, 4000).Draw(t, "ops")
		// Runs of ascending inserts (as Restore does) and of removals
		// exercise splits and merges, not only random positions.
		mode := rapid.SampledFrom([]string{"random", "ascending", "fill-then-drain"}).Draw(t, "mode")
		// IDs of the same length, IDs that tie on the 8-byte inline key
		// (long common prefix, variable length, NUL bytes) so that the
		// full comparison is exercised too.
		format := rapid.SampledFrom([]string{"%05d", "common-prefix-%05d", "%d", "ab\x00%d", "ab\x00\x00\x00\x00\x00\x00%x"}).Draw(t, "format")
		for i := range ops {
			var id string
			insert := true
			switch mode {
			case "random":
				id = fmt.Sprintf(format, rapid.IntRange(0, universe).Draw(t, "id"))
				insert = rapid.Bool().Draw(t, "insert")
			case "ascending":
				id = fmt.Sprintf(format, i)
			case "fill-then-drain":
				id = fmt.Sprintf(format, (i*7919)%(ops/2+1))
				insert = i < ops/2
			}
			if insert {
				s.insert(&rec[string]{id: id, obj: id})
				model[id] = true
			} else {
				removed := s.remove(id)
				if removed != model[id] {
					t.Fatalf("remove(%s) = %v, model says %v", id, removed, model[id])
				}
				delete(model, id)
			}
		}
		want := make([]string, 0, len(model))
		for id := range model {
			want = append(want, id)
		}
		slices.Sort(want)
		checkSet(t, &s, want)
	})
}

// Ascending inserts, as on Restore, fill chunks instead of leaving them
// half empty.
func TestRecSetAscendingFill(t *testing.T) {
	var s recSet[string]
	const n = 10 * maxChunk
	for i := range n {
		id := fmt.Sprintf("%06d", i)
		s.insert(&rec[string]{id: id, obj: id})
	}
	if len(s.chunks) != n/maxChunk {
		t.Fatalf("%d chunks for %d ascending ids, want %d", len(s.chunks), n, n/maxChunk)
	}
}

func TestIDKeyPreservesOrder(t *testing.T) {
	ids := []string{"", "\x00", "a", "a\x00", "a\x00\x00", "a\x01", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefgi", "b", "\xff\xff\xff\xff\xff\xff\xff\xff\xff"}
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			if a >= b {
				t.Fatalf("test list not sorted at %q, %q", a, b)
			}
			if idKey(a) > idKey(b) {
				t.Fatalf("idKey(%q) > idKey(%q)", a, b)
			}
		}
	}
}
