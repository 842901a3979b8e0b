package engine_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The engine's one rule (docs/design.md): code under engine/ does no I/O,
// starts no goroutine, reads no wall time, draws no global randomness and
// never blocks. Everything it needs comes through engine/env. This test
// walks every non-test Go file under engine/ and fails on a breach; it is
// the reason the simulator can replay a seed exactly.

const module = "github.com/swarmsim/swarmsim/"

// forbiddenImports may not appear in engine/ code at all.
var forbiddenImports = map[string]string{
	"os":           "file and process I/O",
	"os/exec":      "processes",
	"os/signal":    "signals",
	"net":          "sockets",
	"net/http":     "sockets",
	"syscall":      "system calls",
	"io/ioutil":    "file I/O",
	"crypto/rand":  "global randomness (use env.Rand)",
	"math/rand":    "global randomness (use env.Rand)",
	"math/rand/v2": "global randomness (use env.Rand)",
	"sync":         "locks block; everything runs on one loop",
	"log":          "writes to stderr",
	"unsafe":       "escapes the type system",
	"runtime":      "scheduler control",
	"plugin":       "loads code",
	"github.com/prometheus/client_golang/prometheus": "metrics/ implements engine's counters",
}

// forbiddenPrefixes are module packages engine/ must not import.
var forbiddenPrefixes = []string{
	module + "sim", module + "realnet", module + "scenarios",
	module + "metrics", module + "cmd",
}

// forbiddenCalls are package-level functions engine/ may not call.
var forbiddenCalls = map[string][]string{
	"time": {"Now", "Since", "Until", "Sleep", "After", "AfterFunc", "NewTimer", "NewTicker", "Tick"},
	"fmt":  {"Print", "Printf", "Println", "Scan", "Scanf", "Scanln"},
}

// Only engine/raft may import the raft library; the leader's subsystems
// meet in the store and never import one another.
var subsystems = []string{"orchestrator", "scheduler", "allocator", "dispatcher"}

type violation struct{ pos, msg string }

func checkFile(fset *token.FileSet, path, pkgDir string) ([]violation, error) {
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution|parser.ParseComments)
	if err != nil {
		return nil, err
	}
	generated := ast.IsGenerated(f)
	var out []violation
	add := func(p token.Pos, msg string) { out = append(out, violation{fset.Position(p).String(), msg}) }
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		// protoc-gen-go's output guards its lazy descriptor set-up with
		// sync.Once and unsafe; that is the protobuf runtime, not engine
		// logic, and it neither blocks the loop nor does I/O.
		if generated && (p == "sync" || p == "unsafe") {
			p = ""
		}
		if why, bad := forbiddenImports[p]; bad {
			add(imp.Pos(), "imports "+p+": "+why)
		}
		for _, pre := range forbiddenPrefixes {
			if p == pre || strings.HasPrefix(p, pre+"/") {
				add(imp.Pos(), "imports "+p+": engine/ must not depend on the worlds that run it")
			}
		}
		if strings.HasPrefix(p, "go.etcd.io/raft") && pkgDir != "raft" {
			add(imp.Pos(), "imports "+p+": only engine/raft may import the raft library")
		}
		if slices.Contains(subsystems, pkgDir) {
			for _, other := range subsystems {
				if other != pkgDir && p == module+"engine/"+other {
					add(imp.Pos(), "imports "+p+": the leader's subsystems meet only in the store")
				}
			}
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.GoStmt:
			add(n.Pos(), "starts a goroutine")
		case *ast.SelectStmt:
			add(n.Pos(), "select blocks and picks at random")
		case *ast.SendStmt:
			add(n.Pos(), "channel send blocks")
		case *ast.UnaryExpr:
			if n.Op == token.ARROW {
				add(n.Pos(), "channel receive blocks")
			}
		case *ast.ChanType:
			add(n.Pos(), "channels belong to goroutines")
		case *ast.SelectorExpr:
			id, ok := n.X.(*ast.Ident)
			if !ok {
				break
			}
			if bad, ok := forbiddenCalls[names[id.Name]]; ok && slices.Contains(bad, n.Sel.Name) {
				add(n.Pos(), names[id.Name]+"."+n.Sel.Name+" is wall time or terminal I/O")
			}
		}
		return true
	})
	return out, nil
}

func walk(t *testing.T, root string) []violation {
	t.Helper()
	fset := token.NewFileSet()
	var all []violation
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkgDir := strings.Split(filepath.ToSlash(rel), "/")[0]
		v, err := checkFile(fset, path, pkgDir)
		all = append(all, v...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestEngineDoesNoIO(t *testing.T) {
	vs := walk(t, ".")
	for _, v := range vs {
		t.Errorf("%s: %s", v.pos, v.msg)
	}
	if len(vs) > 0 {
		t.Log("engine/ code must reach the world only through engine/env; see docs/design.md")
	}
}

// The checker itself must catch every kind of breach, or the test above
// could pass while checking nothing.
func TestArchCheckerCatchesBreaches(t *testing.T) {
	// The breaches live in a file written for this test only, so that no
	// file under engine/ breaks the rules, not even in testdata.
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "orchestrator"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "orchestrator", "bad.go"), []byte(breaches), 0o644); err != nil {
		t.Fatal(err)
	}
	vs := walk(t, root)
	want := []string{
		"imports os:", "imports crypto/rand", "imports sync:", "imports go.etcd.io/raft",
		"imports " + module + "sim", "imports " + module + "engine/scheduler",
		"starts a goroutine", "select blocks", "channel send", "channel receive",
		"channels belong", "time.Now", "time.AfterFunc", "fmt.Println",
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.msg)
	}
	all := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("checker missed %q; it reported:\n%s", w, all)
		}
	}
}

// breaches is a package that breaks every engine rule on purpose.
const breaches = `// Package orchestrator here breaks every engine rule on purpose: the
// architecture test checks that its checker notices each breach.
package orchestrator

import (
	crand "crypto/rand"
	"fmt"
	"os"
	"sync"
	t "time"

	_ "github.com/swarmsim/swarmsim/engine/scheduler"
	_ "github.com/swarmsim/swarmsim/sim"
	_ "go.etcd.io/raft/v3"
)

var mu sync.Mutex

func bad() {
	ch := make(chan int)
	go func() { ch <- 1 }()
	select {
	case v := <-ch:
		fmt.Println(v, t.Now())
	}
	t.AfterFunc(0, nil)
	_, _ = os.Getwd()
	_, _ = crand.Read(nil)
}
`
