package scheduler

import "time"

// Stats are the scheduler's counters, for metrics. Counters only grow
// while the scheduler lives (Start does not reset them); the gauges
// describe the moment Stats was called.
type Stats struct {
	// Decisions counts the tasks the scheduler decided on: placed, or left
	// pending because no node fits.
	Decisions uint64
	// Assigned counts assignments that took (the store's events confirmed
	// them).
	Assigned uint64
	// LeftPending counts decisions that left a task pending.
	LeftPending uint64
	// Skipped counts assignments proposed that did not take (the task or
	// node changed first); their tasks went back to be scheduled.
	Skipped uint64
	// Batches counts the assignment proposals that applied.
	Batches uint64
	// ReasonWrites counts pending_reason updates proposed.
	ReasonWrites uint64
	// ProposalErrors counts proposals whose done reported an error.
	ProposalErrors uint64
	// Turns counts the scheduling passes that had work.
	Turns uint64
	// Latency is the time from a task's PENDING status timestamp to the
	// proposal of its assignment.
	Latency Histogram

	// Gauges.
	Queued   int // tasks waiting for the next turn
	Waiting  int // tasks no node fits, waiting for capacity
	InFlight int // decisions proposed and not yet confirmed
	Nodes    int // nodes in the view
}

// LatencyBuckets are the upper bounds of the latency histogram's buckets.
var LatencyBuckets = [...]time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 30 * time.Second, time.Minute,
}

// Histogram is a fixed-bucket histogram of durations: a plain value that
// metrics/ turns into a Prometheus one.
type Histogram struct {
	// Counts[i] counts observations in (LatencyBuckets[i-1],
	// LatencyBuckets[i]]; the last element counts those above every bound.
	// Not cumulative.
	Counts [len(LatencyBuckets) + 1]uint64
	Count  uint64
	Sum    time.Duration
}

// Observe adds one observation; negative ones (a clock that went back)
// count as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < len(LatencyBuckets) && d > LatencyBuckets[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += d
}

// Quantile returns an upper bound of the q-quantile (0 < q <= 1): the bound
// of the bucket where it falls, or the last bound for the overflow bucket.
// It returns 0 for an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(q*float64(h.Count) + 0.5)
	rank = min(max(rank, 1), h.Count)
	var seen uint64
	for i, c := range h.Counts {
		seen += c
		if seen >= rank {
			if i < len(LatencyBuckets) {
				return LatencyBuckets[i]
			}
			break
		}
	}
	return LatencyBuckets[len(LatencyBuckets)-1]
}
