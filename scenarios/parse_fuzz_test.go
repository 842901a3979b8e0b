package scenarios

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds Parse arbitrary bytes. It must never panic; an error must
// be an *Errors whose every line names the file; a success must be a
// scenario that can be described. Parsing is deterministic either way.
// The seed corpus is the format page's examples, the files under testdata
// and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, ex := range docExamples(f) {
		f.Add(ex)
	}
	for _, pattern := range []string{"testdata/*.yaml", "testdata/bad/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz.yaml"
		sc, err := Parse(file, data)
		_, again := Parse(file, data)
		if (err == nil) != (again == nil) || err != nil && err.Error() != again.Error() {
			t.Fatalf("two parses differ:\n%v\n---\n%v", err, again)
		}
		if err != nil {
			if sc != nil {
				t.Fatal("a scenario and an error")
			}
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("error %T without a list: %v", err, err)
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, file+":") {
					t.Fatalf("error line without the file name: %q", line)
				}
			}
			return
		}
		if sc.Name == "" || sc.Duration <= 0 || sc.Cluster.Managers < 1 {
			t.Fatalf("incomplete scenario: %+v", sc)
		}
		_ = sc.Summary()
		for i, s := range sc.Steps {
			if s.Action == nil || s.Index != i || s.Line < 1 {
				t.Fatalf("step %d: %+v", i, s)
			}
			if str := s.String(); str == "" || strings.Contains(str, "\n") {
				t.Fatalf("step %d described as %q", i, str)
			}
			if u, ok := s.Action.(Update); ok {
				var svc Service
				u.Apply(&svc)
			}
		}
	})
}
