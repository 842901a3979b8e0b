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
		if len(c) == 0 || len(c) > maxChunk {
			t.Fatalf("chunk %d holds %d recs", ci, len(c))
		}
		for _, r := range c {
			if total > 0 && r.id <= prev {
				t.Fatalf("chunk %d: %q after %q", ci, r.id, prev)
			}
			prev = r.id
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
		for i := range ops {
			var id string
			insert := true
			switch mode {
			case "random":
				id = fmt.Sprintf("%05d", rapid.IntRange(0, universe).Draw(t, "id"))
				insert = rapid.Bool().Draw(t, "insert")
			case "ascending":
				id = fmt.Sprintf("%05d", i)
			case "fill-then-drain":
				id = fmt.Sprintf("%05d", (i*7919)%(ops/2+1))
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
