package manager

import (
	"strings"
	"testing"
)

// newKV holds every value length, and an inline value's capacity ends
// with it (appending to it cannot reach the meta allocated beside it).
func TestNewKVValueSizes(t *testing.T) {
	for n := range 41 {
		value := strings.Repeat("v", n)
		kv, meta := newKV(value)
		if string(kv.Value) != value || meta == nil || kv.Meta != nil {
			t.Fatalf("%d bytes: value %q, meta %v, kv.Meta %v", n, kv.Value, meta, kv.Meta)
		}
		if n <= 32 && cap(kv.Value) != n {
			t.Fatalf("%d bytes: capacity %d", n, cap(kv.Value))
		}
	}
}
