package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run swarmd as processes on 127.0.0.1, on ports they pick,
// with the in-memory executor (no Docker needed), and drive them through
// the CLI as a user or a script would. They talk only to the processes
// they started.

var build struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// swarmdBin builds the binary once per test run.
func swarmdBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs swarmd processes")
	}
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "swarmd-test")
		if build.err == nil {
			build.out, build.err = exec.Command("go", "build", "-o", filepath.Join(build.dir, "swarmd"), ".").CombinedOutput()
		}
	})
	if build.err != nil {
		t.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return filepath.Join(build.dir, "swarmd")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	name, addr, dir, log string
	cmd                  *exec.Cmd
	exited               chan struct{} // closed when the process exited
	err                  error         // its Wait error, once exited
}

type harness struct {
	t     *testing.T
	bin   string
	dir   string
	procs []*proc
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, bin: swarmdBin(t), dir: t.TempDir()}
	t.Cleanup(h.stopAll)
	return h
}

// start runs a daemon; args follow the subcommand (init, join, or none).
func (h *harness) start(name string, addr string, args ...string) *proc {
	h.t.Helper()
	p := &proc{name: name, addr: addr, dir: filepath.Join(h.dir, name), log: filepath.Join(h.dir, name+".log")}
	h.procs = append(h.procs, p)
	return h.launch(p, args...)
}

func (h *harness) launch(p *proc, args ...string) *proc {
	h.t.Helper()
	listen := true
	if len(args) > 0 && args[0] == "--no-listen" {
		listen, args = false, args[1:]
	}
	common := []string{"--data-dir", p.dir, "--executor", "memory", "--hostname", p.name,
		"--heartbeat-period", "500ms", "--log-level", "debug"}
	if listen {
		common = append([]string{"--listen", p.addr}, common...)
	}
	var full []string
	if len(args) > 0 && args[0] == "join" {
		// MANAGER_ADDR comes last.
		full = append(append(append(full, args[:len(args)-1]...), common...), args[len(args)-1])
	} else {
		full = append(append(full, args...), common...)
	}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		h.t.Fatal(err)
	}
	p.cmd = exec.Command(h.bin, full...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	exited := make(chan struct{})
	p.exited = exited
	go func() { p.err = p.cmd.Wait(); f.Close(); close(exited) }()
	return p
}

func (h *harness) stopAll() {
	for _, p := range h.procs {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range h.procs {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	}
	if h.t.Failed() {
		for _, p := range h.procs {
			b, _ := os.ReadFile(p.log)
			h.t.Logf("---- %s log (last 4 KiB):\n%s", p.name, tail(b, 4096))
		}
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// cli runs a client command; it returns stdout and the exit code. host
// names a node by its address: the command talks to that node's daemon
// over the local socket of its data directory, as an operator on its
// machine does (the network port wants a certificate). An address no
// process of the harness has is dialed as --host.
func (h *harness) cli(host string, args ...string) (string, string, int) {
	h.t.Helper()
	target := []string{"--host", host}
	for _, p := range h.procs {
		if p.addr == host {
			target = []string{"--data-dir", p.dir}
		}
	}
	return h.cliTo(target, "", args...)
}

// cliTo runs a client command with these connection flags, and stdin.
func (h *harness) cliTo(target []string, stdin string, args ...string) (string, string, int) {
	h.t.Helper()
	// The connection flags go right after the command words: service
	// create stops reading flags at IMAGE, as docker does.
	i := 0
	for i < len(args) && !strings.HasPrefix(args[i], "-") && i < 2 {
		i++
	}
	full := append(append(append(append([]string{}, args[:i]...), target...), "--timeout", "5s"), args[i:]...)
	cmd := exec.Command(h.bin, full...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// must runs a client command that must succeed.
func (h *harness) must(host string, args ...string) string {
	h.t.Helper()
	out, errs, code := h.cli(host, args...)
	if code != 0 {
		h.t.Fatalf("swarmd %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

type statusJSON struct {
	NodeID   string `json:"node_id"`
	Role     string `json:"role"`
	Leader   string `json:"leader"`
	IsLeader bool   `json:"is_leader"`
	Members  []struct {
		NodeID  string `json:"node_id"`
		Learner bool   `json:"learner"`
	} `json:"members"`
	SessionOpen bool `json:"session_open"`
}

func (h *harness) status(p *proc) (statusJSON, bool) {
	out, _, code := h.cli(p.addr, "status", "--format", "json")
	var st statusJSON
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return st, false
	}
	return st, true
}

// eventually polls cond until it holds; the bound only keeps a broken
// cluster from hanging the test (nothing asserts how long it took).
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("never happened: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type serviceLine struct {
	Name     string `json:"Name"`
	Replicas string `json:"Replicas"`
	Desired  uint64 `json:"Desired"`
}

func (h *harness) services(host string) []serviceLine {
	out, _, code := h.cli(host, "service", "ls", "--format", "json")
	if code != 0 {
		return nil
	}
	var ls []serviceLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l serviceLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			ls = append(ls, l)
		}
	}
	return ls
}

func TestCluster(t *testing.T) {
	h := newHarness(t)
	m1 := h.start("m1", freePort(t), "init")
	h.eventually("m1 leads", func() bool { st, ok := h.status(m1); return ok && st.IsLeader })

	mtok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "manager"))
	wtok := strings.TrimSpace(h.must(m1.addr, "join-token", "-q", "worker"))
	if mtok == wtok || !strings.HasPrefix(mtok, "SWMTKN-1-") {
		t.Fatalf("join tokens %q and %q: want two distinct tokens", mtok, wtok)
	}

	// A wrong token is refused before the node starts.
	bad := exec.Command(h.bin, "join", "--token", "SWMTKN-1-bogus", "--listen", freePort(t), "--data-dir", filepath.Join(h.dir, "bad"), "--executor", "memory", m1.addr)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "invalid join token") {
		t.Fatalf("join with a bad token: %v\n%s", err, out)
	}

	m2 := h.start("m2", freePort(t), "join", "--token", mtok, m1.addr)
	m3 := h.start("m3", freePort(t), "join", "--token", mtok, m1.addr)
	w1 := h.start("w1", freePort(t), "join", "--token", wtok, m1.addr)
	managers := []*proc{m1, m2, m3}
	h.eventually("three voters", func() bool {
		st, ok := h.status(m1)
		if !ok || len(st.Members) != 3 {
			return false
		}
		for _, m := range st.Members {
			if m.Learner {
				return false
			}
		}
		return true
	})
	h.eventually("four nodes ready", func() bool {
		out, _, code := h.cli(m1.addr, "node", "ls", "--format", "json")
		return code == 0 && strings.Count(out, `"Status":"Ready"`) == 4
	})
	if st, _ := h.status(w1); st.Role != "worker" {
		t.Fatalf("w1 joined with a worker token as %q", st.Role)
	}

	// A service created through a follower; replicas run on every node.
	h.must(m2.addr, "service", "create", "--name", "web", "--replicas", "3", "--limit-memory", "64M",
		"--restart-condition", "on-failure", "--update-parallelism", "2", "busybox", "sleep", "1000")
	h.eventually("web runs 3/3", func() bool {
		ls := h.services(m3.addr)
		return len(ls) == 1 && ls[0].Name == "web" && ls[0].Replicas == "3/3"
	})

	// Kill the leader outright; another manager takes over and serves.
	st, _ := h.status(m1)
	var leader *proc
	for _, m := range managers {
		if mst, ok := h.status(m); ok && mst.NodeID == st.Leader {
			leader = m
		}
	}
	if leader == nil {
		t.Fatalf("no manager is the leader %s", st.Leader)
	}
	if err := leader.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-leader.exited
	var others []*proc
	for _, m := range managers {
		if m != leader {
			others = append(others, m)
		}
	}
	var newLeader *proc
	h.eventually("a new leader", func() bool {
		for _, m := range others {
			if st, ok := h.status(m); ok && st.IsLeader {
				newLeader = m
				return true
			}
		}
		return false
	})
	follower := others[0]
	if follower == newLeader {
		follower = others[1]
	}
	h.must(follower.addr, "service", "scale", "web=4")
	h.eventually("web runs 4/4 under the new leader", func() bool {
		ls := h.services(newLeader.addr)
		return len(ls) == 1 && ls[0].Replicas == "4/4"
	})

	// The killed manager restarts from its data directory (and its
	// address, which the directory remembers) and catches up.
	h.launch(leader, "--no-listen")
	h.eventually("the restarted manager follows and caught up", func() bool {
		st, ok := h.status(leader)
		if !ok || st.Role != "manager" || st.Leader == "" {
			return false
		}
		ls := h.services(leader.addr)
		return len(ls) == 1 && ls[0].Desired == 4
	})

	// Inspect, update and rollback; node commands.
	out := h.must(newLeader.addr, "service", "inspect", "web")
	if !strings.Contains(out, `"sleep"`) {
		t.Fatalf("inspect: %s", out)
	}
	h.must(newLeader.addr, "service", "update", "--image", "busybox:2", "web")
	h.must(newLeader.addr, "service", "rollback", "web")
	h.must(newLeader.addr, "node", "update", "--availability", "drain", "w1")
	if _, _, code := h.cli(newLeader.addr, "service", "inspect", "nope"); code != exitNotFound {
		t.Fatalf("inspect of a missing service: exit %d, want %d", code, exitNotFound)
	}

	// A worker leaves: its daemon exits cleanly.
	h.must(w1.addr, "leave")
	select {
	case <-w1.exited:
		if w1.err != nil {
			t.Fatalf("w1 exited with %v after leaving", w1.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("w1 did not exit after leaving")
	}
	// A manager does not leave without --force.
	if _, errs, code := h.cli(newLeader.addr, "leave"); code != exitFailed || !strings.Contains(errs, "demote") {
		t.Fatalf("manager leave without force: exit %d: %s", code, errs)
	}
}

func TestRefusesInsecureListen(t *testing.T) {
	bin := swarmdBin(t)
	cmd := exec.Command(bin, "init", "--tls", "off", "--listen", "0.0.0.0:4242", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage || !strings.Contains(string(out), "without TLS") {
		t.Fatalf("init on 0.0.0.0 without TLS: %v\n%s", err, out)
	}
}
