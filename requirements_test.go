package mcpgate_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// citedID is a requirement ID as code, tests and commit messages cite it,
// with up to three digits (SEC-100 and on).
// NET is among the prefixes though no rule uses it, so that the names of
// the RFC 5737 documentation ranges, which end like an ID, are caught in
// comments rather than read as prose.
var citedID = regexp.MustCompile(`\b(ASM|CIMD|COMM|DCR|DEP|GEN|ISS|NET|PASS|PKCE|PRM|REDIR|REG|RES|RT|SCOPE|SEC|SESS|TOK|TRANS)-[0-9]{1,3}\b`)

// definedID is the start of a rule's entry in docs/requirements.md:
// a list item whose first word is the bold ID.
var definedID = regexp.MustCompile(`(?m)^- \*\*([A-Z]+-[0-9]+)\*\* `)

// namedTest is a test, fuzz target or example that docs/requirements.md
// names in backquotes; a subtest's path after "/" is not checked.
var namedTest = regexp.MustCompile("`((?:Test|Fuzz|Example|Benchmark)[A-Za-z0-9_]*)(?:/[^`]*)?`")

// definedIDs returns the IDs docs/requirements.md defines, and the IDs it
// defines more than once.
func definedIDs(doc []byte) (defined map[string]bool, twice []string) {
	defined = map[string]bool{}
	for _, m := range definedID.FindAllSubmatch(doc, -1) {
		id := string(m[1])
		if defined[id] {
			twice = append(twice, id)
		}
		defined[id] = true
	}
	return defined, twice
}

// undefinedCitations returns "name:line: ID" for every ID that src cites
// and defined lacks.
func undefinedCitations(name string, src []byte, defined map[string]bool) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, len(src)+1)
	for line := 1; sc.Scan(); line++ {
		for _, id := range citedID.FindAllString(sc.Text(), -1) {
			if !defined[id] {
				out = append(out, fmt.Sprintf("%s:%d: %s", name, line, id))
			}
		}
	}
	return out
}

// goFiles returns the repository's Go files, tests, bench/ and e2e/
// included, without the installed tools (.tools, node_modules) and .git.
func goFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".tools", "node_modules", ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the repository: %v", err)
	}
	return files
}

func readRequirements(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("docs", "requirements.md"))
	if err != nil {
		t.Fatalf("reading the rules: %v", err)
	}
	return doc
}

// Every requirement ID a Go file cites is defined in docs/requirements.md,
// so that a citation always leads to the rule it names.
func TestRequirementIDsDefined(t *testing.T) {
	defined, twice := definedIDs(readRequirements(t))
	if len(defined) == 0 {
		t.Fatal("docs/requirements.md defines no rule: want entries starting with - **ID** ")
	}
	if len(twice) > 0 {
		t.Errorf("docs/requirements.md defines %v more than once, want each once", twice)
	}
	files := goFiles(t)
	if !slices.Contains(files, "requirements_test.go") {
		t.Fatalf("the walk missed this file; it found %d Go files", len(files))
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range undefinedCitations(f, src, defined) {
			t.Errorf("%s is cited but not defined in docs/requirements.md (define it there, or fix the citation)", c)
		}
	}
}

// sample turns '#' into '-': the samples below must not cite, in this
// file's own text, the IDs they show undefined.
func sample(s string) string { return strings.ReplaceAll(s, "#", "-") }

// The checker itself: it reports undefined IDs with their line, and only
// whole IDs.
func TestUndefinedCitations(t *testing.T) {
	defined := map[string]bool{sample("PKCE#2"): true, sample("RT#1"): true}
	src := []byte(sample("// PKCE#2: defined\n" +
		"// PKCE#99, and not IDs: XPKCE#2, PKCE#2x, PKCE#1000, pkce#3\n" +
		"// RT#1 and RT#7 (RFC 5737 range TEST#NET#1)\n"))
	got := undefinedCitations("sample.go", src, defined)
	want := []string{sample("sample.go:2: PKCE#99"), sample("sample.go:3: RT#7"), sample("sample.go:3: NET#1")}
	if !slices.Equal(got, want) {
		t.Errorf("undefinedCitations = %q, want %q", got, want)
	}
	if got := undefinedCitations("ok.go", []byte(sample("// PKCE#2, RT#1\n")), defined); len(got) != 0 {
		t.Errorf("defined IDs reported as undefined: %q, want none", got)
	}
}

// The entry format the check reads: a rule is defined by a list item
// that starts with its bold ID; a mention elsewhere defines nothing.
func TestDefinedIDs(t *testing.T) {
	doc := []byte(sample("Intro citing GEN#9.\n" +
		"- **GEN#8** — MUST · authorization server · 2025-03-26 — A rule.\n" +
		"  - mcpgate: see **GEN#7** and TOK#9.\n" +
		"- **PKCE#9** — MUST · authorization server · 2025-03-26 — Another.\n" +
		"- **GEN#8** — MUST · again.\n"))
	defined, twice := definedIDs(doc)
	var got []string
	for id := range defined {
		got = append(got, id)
	}
	slices.Sort(got)
	if want := []string{sample("GEN#8"), sample("PKCE#9")}; !slices.Equal(got, want) {
		t.Errorf("defined %q, want %q", got, want)
	}
	if want := []string{sample("GEN#8")}; !slices.Equal(twice, want) {
		t.Errorf("defined twice %q, want %q", twice, want)
	}
}

// Every test docs/requirements.md and docs/security.md name exists, so
// that a rule's coverage does not silently vanish when a test is renamed or
// removed; and every ID docs/security.md cites is defined.
func TestRequirementsNameExistingTests(t *testing.T) {
	declared := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Example|Benchmark)[A-Za-z0-9_]*)\(`)
	exists := map[string]bool{}
	for _, f := range goFiles(t) {
		if !strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range declared.FindAllSubmatch(src, -1) {
			exists[string(m[1])] = true
		}
	}
	defined, _ := definedIDs(readRequirements(t))
	for _, name := range []string{"requirements.md", "security.md"} {
		doc, err := os.ReadFile(filepath.Join("docs", name))
		if err != nil {
			t.Fatal(err)
		}
		named := namedTest.FindAllSubmatch(doc, -1)
		if len(named) == 0 {
			t.Errorf("docs/%s names no test", name)
		}
		for _, m := range named {
			if test := string(m[1]); !exists[test] {
				t.Errorf("docs/%s names %s, but no _test.go file declares it", name, test)
			}
		}
		for _, c := range undefinedCitations("docs/"+name, doc, defined) {
			t.Errorf("%s is cited but not defined in docs/requirements.md", c)
		}
	}
}
