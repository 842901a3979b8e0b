package metrics

import (
	"bytes"
	"strings"
	"testing"
)

const validText = `# HELP swarm_a_total A counter.
# TYPE swarm_a counter
swarm_a_total{node="m1"} 1 1767225600
swarm_a_total{node="m1"} 2 1767225601.5
swarm_a_created{node="m1"} 1767225600 1767225601.5
swarm_a_total{node="m2"} 5.0 1767225600
# TYPE swarm_g gauge
swarm_g 0.5 1767225600
# TYPE swarm_h_seconds histogram
# UNIT swarm_h_seconds seconds
swarm_h_seconds_bucket{le="0.1",node="m1"} 1 1767225600
swarm_h_seconds_bucket{le="1.0",node="m1"} 2 1767225600
swarm_h_seconds_bucket{le="+Inf",node="m1"} 3 1767225600
swarm_h_seconds_sum{node="m1"} 7.5 1767225600
swarm_h_seconds_count{node="m1"} 3 1767225600
# TYPE swarm_s summary
swarm_s{quantile="0.5"} 3 1767225600
swarm_s_sum 10 1767225600
swarm_s_count 4 1767225600
swarm_untyped{x="a\"b\\c\nd"} 1 1767225600
# EOF
`

func TestReadOpenMetrics(t *testing.T) {
	rec, err := ReadOpenMetrics(strings.NewReader(validText), epoch)
	if err != nil {
		t.Fatal(err)
	}
	expectSeries(t, "counter", rec.Series("swarm_a_total", map[string]string{"node": "m1"}), points(0, 1, 1.5, 2))
	expectSeries(t, "bucket", rec.Series("swarm_h_seconds_bucket", map[string]string{"node": "m1", "le": "1"}), points(0, 2))
	expectSeries(t, "+Inf", rec.Series("swarm_h_seconds_bucket", map[string]string{"node": "m1", "le": "+Inf"}), points(0, 3))
	expectSeries(t, "quantile", rec.Series("swarm_s", map[string]string{"quantile": "0.5"}), points(0, 3))
	expectSeries(t, "escapes", rec.Series("swarm_untyped", map[string]string{"x": "a\"b\\c\nd"}), points(0, 1))
	var b bytes.Buffer
	if err := rec.WriteOpenMetrics(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadOpenMetrics(&b, epoch); err != nil {
		t.Fatalf("reading what was written: %v", err)
	}
}

// TestReadOpenMetricsRejects: the reader is what tests check expositions
// with, so each rule it enforces is shown failing here.
func TestReadOpenMetricsRejects(t *testing.T) {
	const eof = "# EOF\n"
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "no # EOF"},
		{"no EOF", "swarm_g 1 1\n", "no # EOF"},
		{"two EOF", "swarm_g 1 1\n# EOF\n# EOF\n", "after # EOF"},
		{"text after EOF", "# EOF\nswarm_g 1 1\n", "after # EOF"},
		{"no final line feed", "swarm_g 1 1", "line feed"},
		{"empty line", "swarm_g 1 1\n\n" + eof, "empty line"},
		{"no timestamp", "swarm_g 1\n" + eof, "no timestamp"},
		{"exemplar", "# TYPE swarm_c counter\nswarm_c_total 1 1 # {a=\"b\"} 1\n" + eof, "exemplars"},
		{"bad comment", "# what\n" + eof, "not HELP"},
		{"bad type", "# TYPE swarm_i info\n" + eof, "not read"},
		{"metadata after samples", "# TYPE swarm_g gauge\nswarm_g 1 1\n# HELP swarm_g late\n" + eof, "after its samples"},
		{"second TYPE", "# TYPE swarm_g gauge\n# TYPE swarm_g gauge\n" + eof, "second TYPE"},
		{"family twice", "swarm_g 1 1\nswarm_h 1 1\nswarm_g 2 2\n" + eof, "appears twice"},
		{"interleaved", "swarm_g{a=\"1\"} 1 1\nswarm_g{a=\"2\"} 1 1\nswarm_g{a=\"1\"} 2 2\n" + eof, "interleaved"},
		{"time goes back", "swarm_g 1 2\nswarm_g 1 1\n" + eof, "does not come after"},
		{"same time", "swarm_g 1 1\nswarm_g 1 1\n" + eof, "does not come after"},
		{"negative counter", "# TYPE swarm_c counter\nswarm_c_total -1 1\n" + eof, "counter"},
		{"unit not a suffix", "# TYPE swarm_g gauge\n# UNIT swarm_g seconds\n" + eof, "suffix"},
		{"wrong suffix", "# TYPE swarm_c counter\nswarm_c 1 1\n# TYPE swarm_c2 counter\n" + eof, ""},
		{"bad label", "swarm_g{a=1} 1 1\n" + eof, "not quoted"},
		{"trailing comma", "swarm_g{a=\"1\",} 1 1\n" + eof, "bad label"},
		{"label twice", "swarm_g{a=\"1\",a=\"2\"} 1 1\n" + eof, "twice"},
		{"bad escape", "swarm_g{a=\"\\t\"} 1 1\n" + eof, "escape"},
		{"bad value", "swarm_g 0x10 1\n" + eof, "not a number"},
		{"bad name", "9swarm 1 1\n" + eof, "bad metric name"},
		{"no +Inf", "# TYPE swarm_h histogram\nswarm_h_bucket{le=\"1\"} 1 1\nswarm_h_sum 1 1\nswarm_h_count 1 1\n" + eof, "+Inf"},
		{"count differs", "# TYPE swarm_h histogram\nswarm_h_bucket{le=\"+Inf\"} 2 1\nswarm_h_sum 1 1\nswarm_h_count 1 1\n" + eof, "differs"},
		{"not cumulative", "# TYPE swarm_h histogram\nswarm_h_bucket{le=\"1\"} 2 1\nswarm_h_bucket{le=\"+Inf\"} 1 1\nswarm_h_sum 1 1\nswarm_h_count 1 1\n" + eof, "cumulative"},
		{"bounds decrease", "# TYPE swarm_h histogram\nswarm_h_bucket{le=\"2\"} 1 1\nswarm_h_bucket{le=\"1\"} 1 1\n" + eof, "does not increase"},
		{"no sum", "# TYPE swarm_h histogram\nswarm_h_bucket{le=\"+Inf\"} 1 1\nswarm_h_count 1 1\n" + eof, "lacks"},
		{"bucket without le", "# TYPE swarm_h histogram\nswarm_h_bucket 1 1\n" + eof, "no le"},
		{"le on count", "# TYPE swarm_h histogram\nswarm_h_count{le=\"1\"} 1 1\n" + eof, "reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadOpenMetrics(strings.NewReader(tc.text), epoch)
			if err == nil {
				t.Fatalf("accepted %q", tc.text)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// FuzzReadOpenMetrics: the reader never panics, and what it accepts it
// writes back in a form it reads again into the same text.
func FuzzReadOpenMetrics(f *testing.F) {
	f.Add(validText)
	f.Add("# TYPE swarm_h histogram\nswarm_h_bucket{le=\"1\"} 1 1\nswarm_h_bucket{le=\"+Inf\"} 1 1\nswarm_h_sum 1 1\nswarm_h_count 1 1\n# EOF\n")
	f.Add("swarm_g{a=\"x\\ny\"} NaN 1.5e9\n# EOF")
	f.Fuzz(func(t *testing.T, text string) {
		rec, err := ReadOpenMetrics(strings.NewReader(text), epoch)
		if err != nil {
			return
		}
		var a bytes.Buffer
		if err := rec.WriteOpenMetrics(&a); err != nil {
			t.Fatalf("writing what was read: %v", err)
		}
		again, err := ReadOpenMetrics(bytes.NewReader(a.Bytes()), epoch)
		if err != nil {
			t.Fatalf("reading what was written: %v\n%s", err, a.String())
		}
		var b bytes.Buffer
		if err := again.WriteOpenMetrics(&b); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("not stable:\n%s\n---\n%s", a.String(), b.String())
		}
	})
}
