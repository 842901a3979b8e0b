package raftbench

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkWrites reports committed writes per second on 3 and 5
// simulated managers through the whole store path (KVWrite on the leader,
// the store's write and encoding, raft driver, simulated disk and network, apply on
// every manager), batched and unbatched, beside raw RawNodes exchanging
// messages directly, in the same run. The raw writes carry as many bytes
// as the unbatched store path's entries. Compare writes/s of path=store-*
// with path=raw at the same managers; virtual-writes/s is per simulated
// second (1ms links, 1ms fsync, 256 writes in flight).
func BenchmarkWrites(b *testing.B) {
	for _, managers := range []int{3, 5} {
		payload := entryBytes(b, managers)
		for _, batched := range []bool{false, true} {
			cfg := Config{Managers: managers, Latency: time.Millisecond, Batched: batched}
			b.Run(fmt.Sprintf("managers=%d/path=store-%s", managers, cfg.Mode()), func(b *testing.B) {
				s, err := NewStoreCluster(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				b.ReportAllocs()
				b.ResetTimer()
				m, err := s.Write(b.N)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
				b.ReportMetric(m.VirtualRate(), "virtual-writes/s")
				b.ReportMetric(float64(m.Entries)/float64(m.Writes), "entries/write")
			})
		}
		b.Run(fmt.Sprintf("managers=%d/path=raw", managers), func(b *testing.B) {
			r, err := NewRawCluster(managers, payload, 256)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := r.Write(b.N); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

// entryBytes is the size of one unbatched store-path entry: what the raw
// baseline writes per entry.
func entryBytes(tb testing.TB, managers int) int {
	s, err := NewStoreCluster(Config{Managers: managers, Latency: time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	m, err := s.Write(512)
	if err != nil {
		tb.Fatal(err)
	}
	return int(m.Bytes / m.Entries)
}

// TestStoreAndRaw runs the smallest workloads: every write commits, the
// figures add up, and batching packs writes into fewer entries.
func TestStoreAndRaw(t *testing.T) {
	for _, batched := range []bool{false, true} {
		s, err := NewStoreCluster(Config{Managers: 3, Latency: 100 * time.Microsecond, Batched: batched, Window: 32})
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Write(500)
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if m.Writes != 500 || len(m.Latencies) != 500 || m.Virtual <= 0 || m.Events == 0 || m.Entries == 0 {
			t.Fatalf("batched=%v: %+v", batched, m)
		}
		// A write needs the leader's fsync and a follower's round trip
		// with its fsync: at least 1ms + 0.2ms + 1ms of simulated time.
		for _, l := range m.Latencies {
			if l < 2200*time.Microsecond {
				t.Fatalf("batched=%v: a write committed in %v, faster than the simulated disk and network allow", batched, l)
			}
		}
		if batched && m.Entries >= 500 {
			t.Fatalf("batched: %d entries for 500 writes", m.Entries)
		}
		if !batched && m.Entries < 500 {
			t.Fatalf("unbatched: %d entries for 500 writes", m.Entries)
		}
	}
	r, err := NewRawCluster(3, 100, 32)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := r.Write(500); err != nil || m.Writes != 500 {
		t.Fatalf("raw: %+v, %v", m, err)
	}
}

// TestProfile splits a store-path run's CPU time: the store's apply is
// among the stages, and the shares add up.
func TestProfile(t *testing.T) {
	s, err := NewStoreCluster(Config{Managers: 3, Latency: time.Millisecond, Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Enough writes for a few dozen samples at the profiler's 100 Hz (a
	// write costs a few µs): 3,000 took 10ms, and a run could hold none.
	shares, err := s.Profile(60000)
	if err != nil {
		t.Fatal(err)
	}
	if len(shares) != len(StoreStages)+1 {
		t.Fatalf("%+v", shares)
	}
	sum := 0.0
	for _, sh := range shares {
		sum += sh.Percent
	}
	if sum < 99.9 || sum > 100.1 {
		t.Fatalf("shares add up to %v%%: %+v", sum, shares)
	}
	t.Logf("%+v", shares)
}
