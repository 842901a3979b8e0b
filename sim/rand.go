package sim

import (
	crand "crypto/rand"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"sync"
)

// Rand is a seeded random stream. The kernel derives one per node and
// purpose from its seed and the stream's name, so adding a node or a
// purpose leaves every other stream's draws unchanged.
//
// The generator lives inside the Rand, so a draw touches one object: with
// tens of thousands of nodes their streams are rarely in cache, and the
// hops through rand.Rand to its Source each cost a miss. Float64 and
// Uint64 compute what rand.Rand's would from the same generator; Int63n
// goes through r, a rand.Rand over that same generator.
type Rand struct {
	pcg rand.PCG
	r   *rand.Rand
}

// NewRand returns the stream called name under the kernel's seed.
func (k *Kernel) NewRand(name string) *Rand {
	r := new(Rand)
	k.initRand(r, name)
	return r
}

// initRand makes *r the stream called name, in place: a Rand held by
// value inside a hot object costs no pointer to follow. r must not be
// copied afterwards (r.r points at r.pcg).
func (k *Kernel) initRand(r *Rand, name string) {
	a := splitmix(k.seed ^ HashString(name))
	b := splitmix(a ^ 0x9e3779b97f4a7c15)
	r.pcg = *rand.NewPCG(a, b)
	r.r = rand.New(&r.pcg)
}

// Int63n returns a uniform value in [0, n).
func (r *Rand) Int63n(n int64) int64 { return r.r.Int64N(n) }

// Float64 returns a uniform value in [0, 1), as rand.Rand.Float64 does.
func (r *Rand) Float64() float64 { return float64(r.pcg.Uint64()<<11>>11) / (1 << 53) }

// Uint64 returns a uniform 64-bit value.
func (r *Rand) Uint64() uint64 { return r.pcg.Uint64() }

// Read fills p; it never fails.
func (r *Rand) Read(p []byte) (int, error) {
	var buf [8]byte
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(buf[:], r.pcg.Uint64())
		copy(p[i:], buf[:])
	}
	return len(p), nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// cryptoStream stands in for crypto/rand.Reader while a simulation runs:
// raft/v3 draws its randomized election timeouts from crypto/rand.Reader,
// so without it two runs of one seed would elect different leaders. Each
// node reads its own stream, so one node's draws do not shift another's.
type cryptoStream struct {
	global *Rand
	cur    *Rand
}

func newCryptoStream(global *Rand) *cryptoStream {
	return &cryptoStream{global: global, cur: global}
}

func (c *cryptoStream) use(n *Node) {
	if n == nil {
		c.cur = c.global
	} else {
		c.cur = n.crypto
	}
}

func (c *cryptoStream) Read(p []byte) (int, error) { return c.cur.Read(p) }

var (
	activeMu sync.Mutex
	active   *Kernel
)

// Activate makes crypto/rand.Reader this kernel's seeded stream until the
// returned function is called. The swap is process-wide, so only one
// simulation may be active in a process at a time; Activate panics if
// another is.
func (k *Kernel) Activate() (restore func()) {
	activeMu.Lock()
	defer activeMu.Unlock()
	if active != nil {
		panic("sim: two simulations active at once in one process; crypto/rand.Reader can hold only one seeded stream")
	}
	active = k
	saved := crand.Reader
	crand.Reader = k.rand
	return func() {
		activeMu.Lock()
		defer activeMu.Unlock()
		crand.Reader = saved
		active = nil
	}
}

var _ io.Reader = (*cryptoStream)(nil)
