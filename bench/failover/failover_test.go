package failover

import (
	"testing"
	"time"
)

// TestTrials runs one leader trial at the smallest paper timeout and one
// worker trial on the default scenario: both recover, in times the
// configuration allows.
func TestTrials(t *testing.T) {
	sc, err := DefaultScenario()
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 3; seed++ {
		r, err := RunLeaderTrial(WithElection(sc, 12), seed)
		if err != nil {
			t.Fatal(err)
		}
		// No follower may time out before the minimum election timeout
		// has passed since the last heartbeat it heard, and that heartbeat
		// left at most one interval before the crash.
		if r.Elected < 6*time.Millisecond || r.Accepted < r.Elected || r.Terms == 0 {
			t.Fatalf("leader trial: %+v", r)
		}
		t.Logf("leader trial: %+v", r)
	}
	r, err := RunWorkerTrial(sc, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Tasks == 0 || r.Down <= 0 || r.Recovered < r.Down {
		t.Fatalf("worker trial: %+v", r)
	}
	t.Logf("worker trial: %+v", r)
}
