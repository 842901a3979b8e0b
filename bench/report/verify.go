package report

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	tableHead = regexp.MustCompile("^### `([^`]+)`$")
	plotLink  = regexp.MustCompile(`!\[[^\]]*\]\(([^)]+\.svg)\)`)
)

// Verify reads dir's NAME.json and NAME.md for bench and checks that they
// agree: every figure of the JSON appears in the Markdown's table of its
// name, in order, with the same value, unit and parameters, and nothing
// else does; every plot the page shows exists; index.md links the page.
func Verify(dir, bench string) error {
	js, err := os.ReadFile(filepath.Join(dir, bench+".json"))
	if err != nil {
		return err
	}
	md, err := os.ReadFile(filepath.Join(dir, bench+".md"))
	if err != nil {
		return err
	}
	var r Report
	if err := json.Unmarshal(js, &r); err != nil {
		return fmt.Errorf("%s.json: %w", bench, err)
	}
	if r.Bench != bench || r.Commit == "" || r.Machine.Cores == 0 || r.Machine.GoVersion == "" || len(r.Figures) == 0 {
		return fmt.Errorf("%s.json: bench %q, commit %q, machine %+v, %d figures: incomplete", bench, r.Bench, r.Commit, r.Machine, len(r.Figures))
	}
	tables := markdownTables(string(md))
	byName := map[string][]Figure{}
	for _, f := range r.Figures {
		byName[f.Name] = append(byName[f.Name], f)
	}
	for name, figs := range byName {
		rows := tables[name]
		if len(rows) != len(figs)+1 {
			return fmt.Errorf("%s: figure %s: %d in the JSON, %d rows in the Markdown", bench, name, len(figs), max(0, len(rows)-1))
		}
		head := rows[0]
		for i, f := range figs {
			row := rows[i+1]
			if len(row) != len(head) {
				return fmt.Errorf("%s: figure %s row %d: %d cells, header has %d", bench, name, i, len(row), len(head))
			}
			cells := map[string]string{}
			for j, h := range head {
				cells[h] = row[j]
			}
			if cells["value"] != FormatValue(f.Value) || cells["unit"] != f.Unit {
				return fmt.Errorf("%s: figure %s row %d: Markdown says %s %s, JSON %s %s", bench, name, i, cells["value"], cells["unit"], FormatValue(f.Value), f.Unit)
			}
			for k, v := range f.Params {
				if cells[k] != formatParam(v) {
					return fmt.Errorf("%s: figure %s row %d: param %s is %q in the Markdown, %q in the JSON", bench, name, i, k, cells[k], formatParam(v))
				}
			}
		}
	}
	for name := range tables {
		if _, ok := byName[name]; !ok {
			return fmt.Errorf("%s: the Markdown has a table %s the JSON lacks", bench, name)
		}
	}
	for _, m := range plotLink.FindAllStringSubmatch(string(md), -1) {
		if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil {
			return fmt.Errorf("%s: plot %s: %w", bench, m[1], err)
		}
	}
	idx, err := os.ReadFile(filepath.Join(dir, "index.md"))
	if err != nil {
		return err
	}
	if !strings.Contains(string(idx), "]("+bench+".md)") {
		return fmt.Errorf("index.md does not link %s.md", bench)
	}
	return nil
}

// markdownTables parses the figure tables of a report page: name -> rows
// of cells, the header row first.
func markdownTables(md string) map[string][][]string {
	out := map[string][][]string{}
	cur := ""
	for _, line := range strings.Split(md, "\n") {
		if m := tableHead.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if cur == "" {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(out[cur]) > 0 && strings.TrimSpace(line) == "" {
				cur = ""
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if strings.HasPrefix(cells[0], "---") || strings.HasPrefix(cells[len(cells)-1], "---") {
			continue
		}
		out[cur] = append(out[cur], cells)
	}
	return out
}
