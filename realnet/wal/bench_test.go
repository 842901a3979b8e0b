package wal

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// BenchmarkSync measures durable proposals per second: each proposal
// appends one 256-byte entry and a hard state and Syncs; the loop keeps
// `proposers` proposals in flight, as a leader with that many concurrent
// clients would. With 1 every proposal pays a whole fsync; with more, one
// fsync answers every proposal that arrived during the previous one.
// Compare fsyncs/s with BenchmarkFsyncFloor's ns/op (the disk's floor).
func BenchmarkSync(b *testing.B) {
	for _, p := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("proposers=%d", p), func(b *testing.B) { benchSync(b, p, 1, 256) })
	}
}

// BenchmarkEntries measures entries made durable per second when each
// proposal carries a batch of entries (raft appends a Ready's entries at
// once).
func BenchmarkEntries(b *testing.B) {
	for _, n := range []int{16, 256} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) { benchSync(b, 16, n, 256) })
	}
}

func benchSync(b *testing.B, proposers, entriesPer, dataBytes int) {
	loop := newGoLoop(b)
	w, err := Open(b.TempDir(), loop, Options{})
	must(b, err)
	defer w.Close()
	data := make([]byte, dataBytes)
	batch := make([]env.Entry, entriesPer)
	next := uint64(1)
	issued, acked := 0, 0
	finished := make(chan struct{})
	var propose func()
	answer := func(err error) {
		if err != nil {
			b.Error(err)
		}
		acked++
		if acked == b.N {
			close(finished)
		} else if issued < b.N {
			propose()
		}
	}
	propose = func() {
		issued++
		for i := range batch {
			batch[i] = env.Entry{Term: 1, Index: next, Data: data}
			next++
		}
		if err := w.Append(batch); err != nil {
			b.Fatal(err)
		}
		if err := w.SetHardState(env.HardState{Term: 1, Commit: next - 1}); err != nil {
			b.Fatal(err)
		}
		w.Sync(answer)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	loop.Post(func() {
		for range min(proposers, b.N) {
			propose()
		}
	})
	<-finished
	elapsed := time.Since(start)
	b.StopTimer()
	s := w.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
	b.ReportMetric(float64(b.N*entriesPer)/elapsed.Seconds(), "entries/s")
	b.ReportMetric(float64(s.Fsyncs)/elapsed.Seconds(), "fsyncs/s")
	b.ReportMetric(float64(b.N)/float64(max(s.Fsyncs, 1)), "proposals/fsync")
}

// BenchmarkFsyncFloor is the disk's floor for one durable commit: append
// 256 bytes and fsync, nothing else. Its ns/op bounds BenchmarkSync's
// fsyncs/s from above; p50 and p99 come from the same samples.
func BenchmarkFsyncFloor(b *testing.B) {
	f, err := os.CreateTemp(b.TempDir(), "floor-*")
	must(b, err)
	defer f.Close()
	must(b, f.Sync())
	rec := make([]byte, 256)
	took := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		must(b, f.Sync())
		took = append(took, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[(len(took)-1)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[(len(took)*99+99)/100-1].Microseconds()), "p99-µs")
}
