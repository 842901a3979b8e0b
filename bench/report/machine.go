package report

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what a figure was measured on. Wall-clock figures depend on
// all of it; virtual-time figures on none of it.
type Machine struct {
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	CPU        string `json:"cpu,omitempty"` // model name, where /proc/cpuinfo says
	Cores      int    `json:"cores"`         // runtime.NumCPU
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	// MemoryBytes is the machine's RAM, where /proc/meminfo says.
	MemoryBytes uint64 `json:"memory_bytes,omitempty"`
	// LoadAverage is the one-minute load average when the run began: other
	// work on the machine slows wall-clock figures.
	LoadAverage float64 `json:"load_average,omitempty"`
}

// ThisMachine describes the machine the process runs on.
func ThisMachine() Machine {
	m := Machine{
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Cores:      runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
	}
	m.CPU = cpuModel()
	m.MemoryBytes = memTotal()
	m.LoadAverage = loadAverage()
	return m
}

// String is a one-line description for reports.
func (m Machine) String() string {
	var b strings.Builder
	if m.CPU != "" {
		b.WriteString(m.CPU + ", ")
	}
	b.WriteString(strconv.Itoa(m.Cores) + " cores")
	if m.GOMAXPROCS != m.Cores {
		b.WriteString(" (GOMAXPROCS " + strconv.Itoa(m.GOMAXPROCS) + ")")
	}
	if m.MemoryBytes > 0 {
		b.WriteString(", " + strconv.FormatUint(m.MemoryBytes>>30, 10) + " GiB")
	}
	b.WriteString(", " + m.OS + "/" + m.Arch + ", " + m.GoVersion)
	if m.LoadAverage > 0 {
		b.WriteString(", load " + strconv.FormatFloat(m.LoadAverage, 'f', 2, 64) + " at start")
	}
	return b.String()
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return ""
}

func memTotal() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// Commit names the source the benchmark was built from: the short hash of
// HEAD in dir's git repository, with "-dirty" when the working tree has
// changes that reach the build (a changed tracked file, or an untracked Go
// file; not the reports a run is writing), or "unknown" without git.
func Commit(dir string) string {
	run := func(args ...string) (string, bool) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err == nil
	}
	head, ok := run("rev-parse", "--short", "HEAD")
	if !ok || head == "" {
		return "unknown"
	}
	if st, ok := run("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"); ok && st != "" {
		head += "-dirty"
	} else if gofiles, ok := run("ls-files", "--others", "--exclude-standard", "--", "*.go"); ok && gofiles != "" {
		head += "-dirty"
	}
	return head
}
