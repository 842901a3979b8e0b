package store

import "iter"

// rec holds the current version of one object. Indexes point at recs, not
// at objects, so an update that keeps an object's index keys (a status
// change) only swaps rec.obj, and touches no ordered set.
type rec[T any] struct {
	id  string
	obj T
}

// maxChunk bounds a chunk of a recSet: inserts and removes move at most
// this many entries, and a set of n recs has about n/(maxChunk/2) chunks.
const maxChunk = 512

// entry is a rec in a recSet, with the first 8 bytes of its ID inline so
// that binary searches compare integers instead of following two pointers
// (rec, then string bytes) per probe. Random IDs almost never tie on 8
// bytes; on a tie the full IDs decide.
type entry[T any] struct {
	key uint64
	r   *rec[T]
}

// idKey packs the first 8 bytes of id big-endian, zero-padded. It preserves
// order: idKey(a) < idKey(b) implies a < b, and a < b implies
// idKey(a) <= idKey(b) (a zero byte pads, and sorts, before any other).
func idKey(id string) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(id) {
			k |= uint64(id[i])
		}
	}
	return k
}

// before reports whether e orders before (key, id).
func (e entry[T]) before(key uint64, id string) bool {
	if e.key != key {
		return e.key < key
	}
	return e.r.id < id
}

// recSet is a set of recs ordered by ID: a list of sorted chunks, each
// holding at most maxChunk entries, every entry of a chunk ordering before
// every entry of the next. Insert and remove cost O(log n + maxChunk);
// walking the set in order costs O(n). A plain sorted slice would cost O(n)
// per insert, which at 100,000 tasks in one service is too slow; a map
// would need a sort per query.
//
// The zero recSet is empty and ready to use.
type recSet[T any] struct {
	chunks [][]entry[T]
	n      int
}

// Len returns the number of recs in the set.
func (s *recSet[T]) Len() int { return s.n }

// chunkFor returns the index of the chunk where (key, id) belongs: the
// first chunk whose last ID is >= id, or the last chunk. The set must not be
// empty.
func (s *recSet[T]) chunkFor(key uint64, id string) int {
	lo, hi := 0, len(s.chunks)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := s.chunks[mid]
		if c[len(c)-1].before(key, id) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// search returns the position of (key, id) in chunk c, and whether it is
// there.
func search[T any](c []entry[T], key uint64, id string) (int, bool) {
	lo, hi := 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c[mid].before(key, id) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(c) && c[lo].key == key && c[lo].r.id == id
}

// insert adds r to the set. A rec already there with r's ID is replaced.
func (s *recSet[T]) insert(r *rec[T]) {
	e := entry[T]{key: idKey(r.id), r: r}
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []entry[T]{e})
		s.n = 1
		return
	}
	ci := s.chunkFor(e.key, r.id)
	c := s.chunks[ci]
	pos, found := search(c, e.key, r.id)
	if found {
		c[pos] = e
		return
	}
	s.n++
	if len(c) == maxChunk {
		// Split a full chunk before inserting, so that no chunk ever grows
		// past maxChunk entries of capacity. Inserting past the end (IDs
		// arriving in order, as on Restore) starts a new chunk instead, so
		// chunks behind stay full rather than half empty.
		half := maxChunk / 2
		if pos == maxChunk {
			half = maxChunk
		}
		right := make([]entry[T], maxChunk-half, maxChunk)
		copy(right, c[half:])
		clear(c[half:])
		c = c[:half]
		s.chunks[ci] = c
		s.chunks = append(s.chunks, nil)
		copy(s.chunks[ci+2:], s.chunks[ci+1:])
		s.chunks[ci+1] = right
		if pos >= half {
			ci, c, pos = ci+1, right, pos-half
		}
	}
	c = reserve(c, len(c)+1)[:len(c)+1]
	copy(c[pos+1:], c[pos:])
	c[pos] = e
	s.chunks[ci] = c
}

// reserve returns c with room for n entries, doubling its capacity up to
// maxChunk (append's own growth would overshoot it).
func reserve[T any](c []entry[T], n int) []entry[T] {
	if n <= cap(c) {
		return c
	}
	grown := make([]entry[T], len(c), min(max(2*cap(c), n, 4), maxChunk))
	copy(grown, c)
	return grown
}

// remove deletes the rec with the given ID and reports whether it was
// there.
func (s *recSet[T]) remove(id string) bool {
	if len(s.chunks) == 0 {
		return false
	}
	key := idKey(id)
	ci := s.chunkFor(key, id)
	c := s.chunks[ci]
	pos, found := search(c, key, id)
	if !found {
		return false
	}
	s.n--
	copy(c[pos:], c[pos+1:])
	c[len(c)-1] = entry[T]{}
	c = c[:len(c)-1]
	s.chunks[ci] = c
	switch {
	case len(c) == 0:
		s.dropChunk(ci)
	case len(c) < maxChunk/4 && ci+1 < len(s.chunks) && len(c)+len(s.chunks[ci+1]) <= maxChunk/2:
		// Merge a small chunk with its right neighbour so that deletes
		// cannot leave many tiny chunks behind.
		s.chunks[ci] = append(reserve(c, len(c)+len(s.chunks[ci+1])), s.chunks[ci+1]...)
		s.dropChunk(ci + 1)
	}
	return true
}

func (s *recSet[T]) dropChunk(ci int) {
	copy(s.chunks[ci:], s.chunks[ci+1:])
	s.chunks[len(s.chunks)-1] = nil
	s.chunks = s.chunks[:len(s.chunks)-1]
	if len(s.chunks) == 0 {
		s.chunks = nil
	}
}

// all yields the set's objects in ID order. Changing the set while ranging
// over it does not panic, but what the range then sees is unspecified.
func (s *recSet[T]) all() iter.Seq[T] {
	return func(yield func(T) bool) {
		for ci := 0; ci < len(s.chunks); ci++ {
			for _, e := range s.chunks[ci] {
				if !yield(e.r.obj) {
					return
				}
			}
		}
	}
}

// appendTo appends the set's objects, in ID order, to dst.
func (s *recSet[T]) appendTo(dst []T) []T {
	for _, c := range s.chunks {
		for _, e := range c {
			dst = append(dst, e.r.obj)
		}
	}
	return dst
}

// list returns the set's objects in ID order, or nil if it is empty.
func (s *recSet[T]) list() []T {
	if s == nil || s.n == 0 {
		return nil
	}
	return s.appendTo(make([]T, 0, s.n))
}
