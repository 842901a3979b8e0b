package api

import "github.com/swarmsim/swarmsim/engine/env"

const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// IDLength is the length of generated object IDs: 25 base-36 characters
// carry about 129 bits, so IDs drawn from a node's Rand never collide in
// practice.
const IDLength = 25

// NewID returns a new random object ID drawn from r. In the simulator r is
// a seeded stream, so IDs replay with the seed.
func NewID(r env.Rand) string {
	var raw [IDLength]byte
	_, _ = r.Read(raw[:])
	for i, b := range raw {
		raw[i] = idAlphabet[int(b)%len(idAlphabet)]
	}
	return string(raw[:])
}
