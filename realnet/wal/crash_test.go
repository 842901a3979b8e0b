package wal

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmsim/swarmsim/engine/env"
)

// The crash test runs this test binary again as a child that appends and
// syncs as fast as it can, printing every index it saw acknowledged, and
// kills it with SIGKILL at a random moment. Whatever was acknowledged must
// be there after reopening, round after round on the same directory.
//
// A killed process rarely tears a record (its writes reach the page cache
// whole), so this test is about acknowledgements, rotation, snapshots and
// compaction interrupted anywhere; TestTornLastBatchAtEveryOffset covers
// torn tails.
const (
	crashDirEnv   = "SWARMSIM_WAL_CRASH_DIR"
	crashRoundEnv = "SWARMSIM_WAL_CRASH_ROUND"
	crashSeedEnv  = "SWARMSIM_WAL_CRASH_SEED" // replays a failure's kill points
)

// crashPayload is what the child writes at index i, so the parent can check
// every byte that came back.
func crashPayload(i uint64) []byte {
	return bytes.Repeat(fmt.Appendf(nil, "entry %d;", i), 1+int(i%23))
}

func crashSnapshotData(i uint64) []byte { return fmt.Appendf(nil, "state after %d", i) }

func TestCrashKill(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		crashChild(dir, os.Getenv(crashRoundEnv))
		return
	}
	seed := uint64(0x5eed)
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 0, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("kill points from seed %#x (%s=%#x replays them)", seed, crashSeedEnv, seed)
	rnd := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	rounds := 8
	if testing.Short() {
		rounds = 3
	}
	var acked uint64 // highest index any child saw acknowledged
	metaRound := -1  // last round whose meta write was acknowledged
	for round := range rounds {
		killAfter := rnd.IntN(1500) // acknowledgements before the kill
		jitter := time.Duration(rnd.IntN(2000)) * time.Microsecond
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashKill$")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, fmt.Sprintf("%s=%d", crashRoundEnv, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		killed := false
		kill := func() {
			if !killed {
				time.Sleep(jitter) // somewhere inside a write or an fsync, or not
				cmd.Process.Kill()
				killed = true
			}
		}
		if killAfter == 0 {
			kill()
		}
		n := 0
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			// Lines printed before the kill are still in the pipe: every
			// one of them was acknowledged.
			f := strings.Fields(sc.Text())
			if len(f) != 2 {
				continue
			}
			v, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				continue
			}
			switch f[0] {
			case "ack":
				acked = max(acked, v)
				if n++; n == killAfter {
					kill()
				}
			case "meta":
				metaRound = int(v)
			}
		}
		kill()
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Exited() {
			t.Fatalf("round %d: child did not die by the kill (%v):\n%s", round, err, stderr.String())
		}

		segs := files(t, dir, segmentSuffix)
		tail := segs[len(segs)-1]
		tailSize := fileSize(t, filepath.Join(dir, tail))
		w, err := Open(dir, newGoLoop(t), Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		st := mustLoad(t, w)
		checkCrashState(t, round, st, acked, metaRound)
		mustClose(t, w)
		torn := "no torn tail"
		if fi, err := os.Stat(filepath.Join(dir, tail)); err != nil {
			torn = "torn segment removed"
		} else if cut := tailSize - fi.Size(); cut > 0 {
			torn = fmt.Sprintf("cut a torn tail of %d bytes", cut)
		}
		t.Logf("round %d: killed after %d acks (+%v); log holds up to %d, snapshot %d, %d segments; %s",
			round, n, jitter, st.Snapshot.Index+uint64(len(st.Entries)), st.Snapshot.Index, len(files(t, dir, segmentSuffix)), torn)
	}
}

func checkCrashState(t *testing.T, round int, st env.DiskState, acked uint64, metaRound int) {
	t.Helper()
	last := st.Snapshot.Index + uint64(len(st.Entries))
	if last < acked {
		t.Fatalf("round %d: log ends at %d, but %d was acknowledged", round, last, acked)
	}
	if s := st.Snapshot; s.Index > 0 && !bytes.Equal(s.Data, crashSnapshotData(s.Index)) {
		t.Fatalf("round %d: snapshot %d holds %q", round, s.Index, s.Data)
	}
	for _, e := range st.Entries {
		if e.Term != 1 || !bytes.Equal(e.Data, crashPayload(e.Index)) {
			t.Fatalf("round %d: entry %d (term %d) holds %d bytes %.40q...", round, e.Index, e.Term, len(e.Data), e.Data)
		}
	}
	if st.HardState.Commit < acked || st.HardState.Commit > last {
		t.Fatalf("round %d: hard state commit %d, acknowledged %d, log ends at %d", round, st.HardState.Commit, acked, last)
	}
	if metaRound >= 0 {
		got, _ := strconv.Atoi(string(st.Meta["round"]))
		if got < metaRound {
			t.Fatalf("round %d: meta says round %q, round %d was acknowledged", round, st.Meta["round"], metaRound)
		}
	}
}

// crashChild appends entries with 8 proposals in flight (so that syncs are
// grouped), a hard state with each, and a snapshot every 200 entries, until
// it is killed. Tiny segments make rotation and compaction frequent.
func crashChild(dir, round string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	loop := startGoLoop()
	w, err := Open(dir, loop, Options{SegmentBytes: 16 << 10})
	if err != nil {
		fail(err)
	}
	st, err := w.Load()
	if err != nil {
		fail(err)
	}
	next := st.Snapshot.Index + uint64(len(st.Entries)) + 1
	var propose func()
	propose = func() {
		i := next
		next++
		if err := w.Append([]env.Entry{{Term: 1, Index: i, Data: crashPayload(i)}}); err != nil {
			fail(err)
		}
		if err := w.SetHardState(env.HardState{Term: 1, Commit: i}); err != nil {
			fail(err)
		}
		if i%200 == 0 {
			s := env.Snapshot{Index: i - 50, Term: 1, Data: crashSnapshotData(i - 50)}
			if err := w.SaveSnapshot(s); err != nil {
				fail(err)
			}
		}
		w.Sync(func(err error) {
			if err != nil {
				fail(err)
			}
			fmt.Printf("ack %d\n", i)
			propose()
		})
	}
	loop.Post(func() {
		if err := w.SetMeta("round", []byte(round)); err != nil {
			fail(err)
		}
		w.Sync(func(err error) {
			if err != nil {
				fail(err)
			}
			fmt.Printf("meta %s\n", round)
		})
		for range 8 {
			propose()
		}
	})
	time.Sleep(time.Minute) // the parent kills us long before
	fail(errors.New("not killed within a minute"))
}
