package mcpgate_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// maxFuncLines is the longest a function of the product may be, from its
// first line to its closing brace: one that reads top to bottom on a
// screen or two.
const maxFuncLines = 90

// notProduct are the directories of this module whose code serves the
// tests only: end-to-end drivers, fakes and starters of real servers.
var notProduct = []string{"e2e", "internal/oidctest", "internal/pgtest", "upstream/github/githubtest", "store/storetest"}

// Every function of the product stays at most maxFuncLines long; the
// tests, the test drivers and the benchmark module (bench/, a module of
// its own) are not held to it.
func TestFunctionLength(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bench" || d.Name() == "testdata" || skipped(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				t.Errorf("%s: func %s is %d lines long, want at most %d: split it", fset.Position(fn.Pos()), fn.Name.Name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func skipped(dir string) bool {
	for _, s := range notProduct {
		if filepath.ToSlash(dir) == s {
			return true
		}
	}
	return false
}
