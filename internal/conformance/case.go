package conformance

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"custos/internal/kql"
)

// Case is one conformance case: a query over inline data and the result the
// Kusto documentation gives for it, in the query API's wire form: a header
// "name:type, ..." and one JSON array per row, as the API returns it.
type Case struct {
	File  string // base name of the case file
	Line  int    // line of the "case" directive
	Name  string
	Query string
	Want  string // expected header and rows, newline-terminated
	// Covers are the tabular operators, scalar operators and functions the
	// query uses, derived from its text and syntax tree.
	Operators []string
	Scalar    []string
	Functions []string
}

// LoadCases reads every *.case file of dir. The format is a sequence of
// blocks separated by blank lines:
//
//	# comment
//	case <name>
//	<query lines>
//	----
//	<header>
//	<rows>
func LoadCases(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.case"))
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	slices.Sort(files)
	var out []Case
	for _, f := range files {
		cs, err := parseCaseFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func parseCaseFile(path string) ([]Case, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open cases: %w", err)
	}
	defer fh.Close()
	var out []Case
	var cur *Case
	inWant := false
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	flush := func() error {
		if cur == nil {
			return nil
		}
		if !inWant {
			return fmt.Errorf("%s:%d: case %q has no ---- line", path, cur.Line, cur.Name)
		}
		cur.Query = strings.TrimSpace(cur.Query)
		cur.annotate()
		out = append(out, *cur)
		cur, inWant = nil, false
		return nil
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case cur == nil && (text == "" || strings.HasPrefix(text, "#")):
		case cur == nil && strings.HasPrefix(text, "case "):
			cur = &Case{File: filepath.Base(path), Line: line, Name: strings.TrimSpace(strings.TrimPrefix(text, "case "))}
		case cur == nil:
			return nil, fmt.Errorf("%s:%d: expected \"case <name>\", got %q", path, line, text)
		case !inWant && text == "----":
			inWant = true
		case !inWant:
			cur.Query += text + "\n"
		case text == "":
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur.Want += text + "\n"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// sourceOperators are the statements that start a tabular expression.
var sourceOperators = []string{"print", "datatable", "range", "union", "search", "find", "evaluate", "externaldata"}

// annotate fills the case's coverage from its query.
func (c *Case) annotate() {
	ops := map[string]bool{}
	for _, o := range kql.Operators() {
		ops[o.Name] = true
	}
	opSet, scalarSet, fnSet := map[string]bool{}, map[string]bool{}, map[string]bool{}
	// Tabular operators: the word after each '|', and the source statements.
	q := c.Query
	for i := 0; i < len(q); i++ {
		if q[i] != '|' {
			continue
		}
		w := leadingWord(strings.TrimLeft(q[i+1:], " \t\r\n"))
		if ops[w] {
			opSet[w] = true
		}
	}
	for _, stmt := range strings.Split(q, ";") {
		w := leadingWord(strings.TrimLeft(stmt, " \t\r\n"))
		if slices.Contains(sourceOperators, w) {
			opSet[w] = true
		}
		if w == "let" {
			// let x = datatable(...) / range ...
			if _, rest, ok := strings.Cut(stmt, "="); ok {
				if w2 := leadingWord(strings.TrimLeft(rest, " \t\r\n")); slices.Contains(sourceOperators, w2) {
					opSet[w2] = true
				}
			}
		}
	}
	funcs := map[string]bool{}
	for _, f := range kql.Functions() {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			funcs[n] = true
		}
	}
	for _, f := range kql.Aggregations() {
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			funcs[n] = true
		}
	}
	if parsed, err := kql.Parse(q); err == nil {
		kql.Inspect(parsed, func(n kql.Node) bool {
			switch e := n.(type) {
			case *kql.Call:
				if e.Name != nil && funcs[strings.ToLower(e.Name.Name)] {
					fnSet[canonicalFunc(strings.ToLower(e.Name.Name))] = true
				}
			case *kql.Binary:
				scalarSet[strings.ToLower(e.Op)] = true
			case *kql.In:
				scalarSet[strings.ToLower(e.Op)] = true
			case *kql.Between:
				scalarSet["between"] = true
			}
			return true
		})
	}
	c.Operators, c.Scalar, c.Functions = sortedKeys(opSet), sortedKeys(scalarSet), sortedKeys(fnSet)
}

// canonicalFunc maps an alias to its registry name.
func canonicalFunc(name string) string {
	for _, list := range [][]kql.FuncInfo{kql.Functions(), kql.Aggregations()} {
		for _, f := range list {
			if f.Name == name || slices.Contains(f.Aliases, name) {
				return f.Name
			}
		}
	}
	return name
}

func leadingWord(s string) string {
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_')
	})
	if end < 0 {
		end = len(s)
	}
	return strings.ToLower(s[:end])
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
