package scenarios

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// ResultJSON is a run's result as `swarmsim run --json` prints it, one
// object per line; sweeps read it back.
type ResultJSON struct {
	Scenario  string   `json:"scenario"`
	File      string   `json:"file"`
	Seed      uint64   `json:"seed"`
	Passed    bool     `json:"passed"`
	Failure   string   `json:"failure,omitempty"`
	Events    uint64   `json:"events"`
	VirtualNS int64    `json:"virtual_ns"`
	WallNS    int64    `json:"wall_ns"`
	TraceHash string   `json:"trace_hash"`
	Notes     []string `json:"notes,omitempty"`
}

// JSON is the result in its JSON form.
func (r *Result) JSON() ResultJSON {
	return ResultJSON{
		Scenario:  r.Scenario.Name,
		File:      r.Scenario.File,
		Seed:      r.Seed,
		Passed:    r.Passed,
		Failure:   r.Failure,
		Events:    r.Events,
		VirtualNS: int64(r.Virtual),
		WallNS:    int64(r.Wall),
		TraceHash: r.TraceHashHex(),
		Notes:     r.Notes,
	}
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes results as JUnit XML: one test case per scenario and
// seed, its failure as the case's failure, its summary as system-out.
func WriteJUnit(w io.Writer, suite string, results []*Result) error {
	s := junitSuite{Name: suite, Tests: len(results)}
	var total float64
	for _, r := range results {
		var sum strings.Builder
		WriteSummary(&sum, r)
		c := junitCase{
			Name:      fmt.Sprintf("%s/seed=%d", r.Scenario.Name, r.Seed),
			Classname: r.Scenario.File,
			Time:      fmt.Sprintf("%.3f", r.Wall.Seconds()),
			SystemOut: sum.String(),
		}
		total += r.Wall.Seconds()
		if !r.Passed {
			s.Failures++
			c.Failure = &junitFailure{
				Message: r.Failure,
				Text:    fmt.Sprintf("replay: swarmsim run %s --seed %d\n", r.Scenario.File, r.Seed),
			}
		}
		s.Cases = append(s.Cases, c)
	}
	s.Time = fmt.Sprintf("%.3f", total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(junitSuites{Suites: []junitSuite{s}}); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
