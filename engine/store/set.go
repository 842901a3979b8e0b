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
// this many pointers, and a set of n recs has about n/(maxChunk/2) chunks.
const maxChunk = 512

// recSet is a set of recs ordered by ID: a list of sorted chunks, each
// holding at most maxChunk recs, every rec of a chunk ordering before every
// rec of the next. Insert and remove cost O(log n + maxChunk); walking the
// set in order costs O(n). A plain sorted slice would cost O(n) per insert,
// which at 100,000 tasks in one service is too slow; a map would need a sort
// per query.
//
// The zero recSet is empty and ready to use.
type recSet[T any] struct {
	chunks [][]*rec[T]
	n      int
}

// Len returns the number of recs in the set.
func (s *recSet[T]) Len() int { return s.n }

// chunkFor returns the index of the chunk where id belongs: the first chunk
// whose last ID is >= id, or the last chunk. The set must not be empty.
func (s *recSet[T]) chunkFor(id string) int {
	lo, hi := 0, len(s.chunks)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := s.chunks[mid]
		if c[len(c)-1].id < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// search returns the position of id in chunk c, and whether it is there.
func search[T any](c []*rec[T], id string) (int, bool) {
	lo, hi := 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c[mid].id < id {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(c) && c[lo].id == id
}

// insert adds r to the set. A rec already there with r's ID is replaced.
func (s *recSet[T]) insert(r *rec[T]) {
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, []*rec[T]{r})
		s.n = 1
		return
	}
	ci := s.chunkFor(r.id)
	c := s.chunks[ci]
	pos, found := search(c, r.id)
	if found {
		c[pos] = r
		return
	}
	s.n++
	c = append(c, nil)
	copy(c[pos+1:], c[pos:])
	c[pos] = r
	if len(c) <= maxChunk {
		s.chunks[ci] = c
		return
	}
	// Split in two halves. Appending at the end (IDs arriving in order, as
	// on Restore) leaves full chunks behind instead of half-full ones.
	half := len(c) / 2
	if pos == len(c)-1 {
		half = len(c) - 1
	}
	right := make([]*rec[T], len(c)-half, maxChunk)
	copy(right, c[half:])
	clear(c[half:])
	s.chunks[ci] = c[:half]
	s.chunks = append(s.chunks, nil)
	copy(s.chunks[ci+2:], s.chunks[ci+1:])
	s.chunks[ci+1] = right
}

// remove deletes the rec with the given ID and reports whether it was
// there.
func (s *recSet[T]) remove(id string) bool {
	if len(s.chunks) == 0 {
		return false
	}
	ci := s.chunkFor(id)
	c := s.chunks[ci]
	pos, found := search(c, id)
	if !found {
		return false
	}
	s.n--
	copy(c[pos:], c[pos+1:])
	c[len(c)-1] = nil
	c = c[:len(c)-1]
	s.chunks[ci] = c
	switch {
	case len(c) == 0:
		s.dropChunk(ci)
	case len(c) < maxChunk/4 && ci+1 < len(s.chunks) && len(c)+len(s.chunks[ci+1]) <= maxChunk/2:
		// Merge a small chunk with its right neighbour so that deletes
		// cannot leave many tiny chunks behind.
		s.chunks[ci] = append(c, s.chunks[ci+1]...)
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
			for _, r := range s.chunks[ci] {
				if !yield(r.obj) {
					return
				}
			}
		}
	}
}

// appendTo appends the set's objects, in ID order, to dst.
func (s *recSet[T]) appendTo(dst []T) []T {
	for _, c := range s.chunks {
		for _, r := range c {
			dst = append(dst, r.obj)
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
