package allocator

// pool hands out integers of a space [0, size): the addresses of one
// subnet (as offsets from its network address) or the ports of one
// protocol. A bitmap says which are in use, so that any integer can be
// reserved explicitly (a published port a user asked for, an address read
// back from the store) and none is ever held twice.
//
// alloc draws from [lo, hi) only, and in this order: first integers never
// handed out (a cursor sweeping up from lo), then freed ones, oldest free
// first. Not reusing an address at once keeps a stale route or DNS answer
// for a dead task from reaching its successor for as long as possible, as
// libnetwork's serial allocation does. Every operation is O(1), amortized:
// the cursor only moves forward, and each entry of the freed queue is
// pushed by one release and popped once.
type pool struct {
	used   []uint64
	size   int
	lo, hi int
	next   int     // cursor: integers in [next, hi) were never allocated
	freed  []int32 // released integers below next, oldest first; may hold stale entries
	head   int     // freed[:head] are consumed
	inUse  int     // integers set in used, reserved ones included
	inLive int     // integers of [lo, hi) set in used
}

func newPool(size, lo, hi int) *pool {
	return &pool{used: make([]uint64, (size+63)/64), size: size, lo: lo, hi: hi, next: lo}
}

func (p *pool) isUsed(i int) bool { return p.used[i>>6]&(1<<(uint(i)&63)) != 0 }
func (p *pool) set(i int)         { p.used[i>>6] |= 1 << (uint(i) & 63) }
func (p *pool) clear(i int)       { p.used[i>>6] &^= 1 << (uint(i) & 63) }

func (p *pool) inRange(i int) bool { return i >= p.lo && i < p.hi }

// alloc returns a free integer of [lo, hi), now in use, or -1 when every
// one is taken.
func (p *pool) alloc() int {
	if p.inLive == p.hi-p.lo {
		return -1
	}
	for p.next < p.hi {
		i := p.next
		p.next++
		if !p.isUsed(i) {
			p.take(i)
			return i
		}
	}
	for p.head < len(p.freed) {
		i := int(p.freed[p.head])
		p.head++
		if !p.isUsed(i) {
			p.take(i)
			p.compact()
			return i
		}
	}
	return -1 // unreachable while inLive is right
}

// reserve marks i in use. It reports false if i is out of the space or
// already in use.
func (p *pool) reserve(i int) bool {
	if i < 0 || i >= p.size || p.isUsed(i) {
		return false
	}
	p.take(i)
	return true
}

func (p *pool) take(i int) {
	p.set(i)
	p.inUse++
	if p.inRange(i) {
		p.inLive++
	}
}

// release frees i. It reports false if i was not in use.
func (p *pool) release(i int) bool {
	if i < 0 || i >= p.size || !p.isUsed(i) {
		return false
	}
	p.clear(i)
	p.inUse--
	if p.inRange(i) {
		p.inLive--
		if i < p.next { // above the cursor, the sweep finds it
			p.freed = append(p.freed, int32(i))
		}
	}
	p.compact()
	return true
}

// compact bounds the freed queue: it drops consumed entries once they are
// the larger part, and stale ones (reserved again since, or queued twice)
// once the queue outgrows the space.
func (p *pool) compact() {
	if p.head > 1024 && p.head*2 > len(p.freed) {
		n := copy(p.freed, p.freed[p.head:])
		p.freed, p.head = p.freed[:n], 0
	}
	if len(p.freed)-p.head <= 2*(p.hi-p.lo)+64 {
		return
	}
	seen := make([]uint64, len(p.used))
	out := p.freed[:0]
	for _, v := range p.freed[p.head:] {
		i := int(v)
		if p.isUsed(i) || seen[i>>6]&(1<<(uint(i)&63)) != 0 {
			continue
		}
		seen[i>>6] |= 1 << (uint(i) & 63)
		out = append(out, v)
	}
	p.freed, p.head = out, 0
}

// free is the number of integers of [lo, hi) alloc could still hand out.
func (p *pool) free() int { return p.hi - p.lo - p.inLive }
