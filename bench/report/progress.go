package report

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Progress shows how much of a run's work is left: a bar redrawn in place
// on a terminal, plain lines now and then otherwise (a log, CI). Work is
// counted in jobs, each with a weight (its expected cost), so the bar and
// the estimate of the time left follow cost, not job count. It is safe
// for concurrent use.
type Progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	jobs     int
	jobsDone int
	total    float64
	done     float64
	stage    string
	start    time.Time
	drawn    time.Time
	printed  time.Time
	lastPct  int
	finished bool
}

// NewProgress returns a progress display on f: a bar when f is a
// terminal, plain lines otherwise. A nil f shows nothing.
func NewProgress(f *os.File) *Progress {
	if f == nil {
		return &Progress{w: io.Discard, start: time.Now()}
	}
	return &Progress{w: f, tty: term.IsTerminal(int(f.Fd())), start: time.Now(), lastPct: -1}
}

// NewPlainProgress shows progress on w as plain lines.
func NewPlainProgress(w io.Writer) *Progress {
	return &Progress{w: w, start: time.Now(), lastPct: -1}
}

// Plan adds jobs of the given total weight to the work.
func (p *Progress) Plan(jobs int, weight float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobs += jobs
	p.total += weight
}

// Stage names what runs now ("raft managers=3 latency=1ms").
func (p *Progress) Stage(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage = name
	if !p.tty {
		p.line()
		return
	}
	p.draw(true)
}

// Done records a finished job of the given weight.
func (p *Progress) Done(weight float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jobsDone++
	p.advance(weight)
}

// Advance records part of a job's weight done (a long job's progress).
func (p *Progress) Advance(weight float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.advance(weight)
}

func (p *Progress) advance(weight float64) {
	p.done += weight
	if p.tty {
		p.draw(false)
		return
	}
	pct := p.percent()
	if pct/25 != p.lastPct/25 || time.Since(p.printed) >= 30*time.Second {
		p.line()
	}
}

// Printf prints a line of its own, keeping the bar below it.
func (p *Progress) Printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, format, args...)
	if p.tty && !p.finished {
		p.draw(true)
	}
}

// Finish clears the bar and prints how long the run took.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "bench: %d jobs done in %s\n", p.jobsDone, time.Since(p.start).Round(time.Second))
}

func (p *Progress) percent() int {
	if p.total <= 0 {
		return 0
	}
	return int(100 * min(1, p.done/p.total))
}

// left estimates the time left from the rate so far.
func (p *Progress) left() string {
	if p.done <= 0 || p.total <= p.done {
		return ""
	}
	el := time.Since(p.start)
	rest := time.Duration(float64(el) * (p.total - p.done) / p.done)
	return fmt.Sprintf(", ~%s left", rest.Round(time.Second))
}

func (p *Progress) line() {
	p.lastPct = p.percent()
	p.printed = time.Now()
	fmt.Fprintf(p.w, "bench: %3d%% (%d of %d jobs, %s elapsed%s) %s\n", p.lastPct, p.jobsDone, p.jobs,
		time.Since(p.start).Round(time.Second), p.left(), p.stage)
}

func (p *Progress) draw(force bool) {
	if !force && time.Since(p.drawn) < 100*time.Millisecond {
		return
	}
	p.drawn = time.Now()
	const width = 30
	filled := 0
	if p.total > 0 {
		filled = int(width * min(1, p.done/p.total))
	}
	bar := strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
	stage := p.stage
	if len(stage) > 40 {
		stage = stage[:39] + "…"
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s %3d%% %d/%d jobs %s%s  %s", bar, p.percent(), p.jobsDone, p.jobs,
		time.Since(p.start).Round(time.Second), p.left(), stage)
}
