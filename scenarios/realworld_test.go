package scenarios

import (
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/swarmsim/swarmsim/realnet/docker"
)

// TestRealSupport: every use of something real mode cannot do is named
// by file, line and key, and the files written for real mode have none.
func TestRealSupport(t *testing.T) {
	src := `name: x
cluster: {managers: 3, workers: 2}
services:
  - {name: web, image: web:1, replicas: 2}
steps:
  - crash: leader
  - at: 10s
    clock_skew: {node: m2, by: 2s}
  - link: {from: m1, to: m2, latency: 200ms}
  - expect: {root_rotated: true, within: 10s}
  - partition: [[m1], [m2, m3]]
  - heal: all
  - expect: {leader: elected, converged: true, within: 10s}
`
	sc, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, err := range RealSupport(sc) {
		if !errors.Is(err, ErrNotReal) {
			t.Errorf("%v does not wrap ErrNotReal", err)
		}
		got = append(got, err.Error())
	}
	want := []string{
		"x.yaml:7: step clock_skew: not supported with --real",
		"x.yaml:9: step link: not supported with --real",
		"x.yaml:10: expect root_rotated: not supported with --real",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("RealSupport:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	files, err := filepath.Glob("real-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no real-*.yaml files: %v", err)
	}
	files = append(files, "service-lifecycle.yaml", "leader-crash.yaml")
	line := regexp.MustCompile(`^[^:]+\.yaml(:\d+)?: `)
	for _, f := range files {
		sc, err := ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range RealSupport(sc) {
			t.Errorf("%s is meant for --real: %v", f, err)
		}
	}
	// And a file that cannot run for real says so in the expected shape.
	sc, err = ParseFile("clock-skew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	errs := RealSupport(sc)
	if len(errs) == 0 {
		t.Fatal("clock-skew.yaml: no refusal")
	}
	for _, err := range errs {
		if !line.MatchString(err.Error()) {
			t.Errorf("%q does not start with file:line", err)
		}
	}
}

// TestScenarioImages: every image a file names gets the behaviour its
// executor settings give it, under the run's own name.
func TestScenarioImages(t *testing.T) {
	src := `name: x
cluster: {managers: 1}
executor:
  fail_images: [web:broken]
  unhealthy_images: [web:sick]
  exits: [{image: "batch:1", after: 10s..30s, code: 3}]
services:
  - {name: web, image: web:1}
  - {name: b, image: batch:1, mode: replicated-job}
steps:
  - create: {name: s, image: web:sick}
  - update: {service: web, image: web:broken}
`
	sc, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	im := RealImagesFor("r1", sc)
	want := map[string]docker.Behaviour{
		"swarmsim-r1/web:1":      {},
		"swarmsim-r1/batch:1":    {ExitAfter: 10e9, ExitAfterMax: 30e9, ExitCode: 3},
		"swarmsim-r1/web:sick":   {Unhealthy: true},
		"swarmsim-r1/web:broken": {FailAtStart: true},
	}
	if len(im.Workloads) != len(want) {
		t.Errorf("images %v, want %v", im.Workloads, want)
	}
	for tag, b := range want {
		if got, ok := im.Workloads[tag]; !ok || got != b {
			t.Errorf("image %s: %+v (present %v), want %+v", tag, got, ok, b)
		}
	}
	if im.Swarmd != "swarmsim-r1/swarmd:latest" {
		t.Errorf("swarmd image %q", im.Swarmd)
	}
}
