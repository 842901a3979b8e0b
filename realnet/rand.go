package realnet

import (
	crand "crypto/rand"
	"math/rand/v2"
	"sync"

	"github.com/swarmsim/swarmsim/engine/env"
)

// Rand is env.Rand for real mode: a ChaCha8 stream seeded from
// crypto/rand, so IDs and tokens drawn from it are unpredictable. It is
// safe for concurrent use (the daemon draws from it off the loop too).
type Rand struct {
	mu sync.Mutex
	r  *rand.Rand
	c  *rand.ChaCha8
}

var _ env.Rand = (*Rand)(nil)

// NewRand returns a freshly seeded stream.
func NewRand() *Rand {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (Go 1.24+ crashes instead)
	c := rand.NewChaCha8(seed)
	return &Rand{r: rand.New(c), c: c}
}

// Int63n implements env.Rand.
func (r *Rand) Int63n(n int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Int64N(n)
}

// Float64 implements env.Rand.
func (r *Rand) Float64() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.r.Float64()
}

// Read implements env.Rand.
func (r *Rand) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.c.Read(p)
}
