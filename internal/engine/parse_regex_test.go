package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"custos/internal/kql"
	"custos/internal/store"
)

// parsePart is one element of a parse pattern in TestParseMatchesAnchoredForm.
type parsePart struct {
	star bool
	lit  string
	col  string
	typ  string // "", "long" or "int"
}

// anchoredParseRegex is the regular expression the binder built for parse
// before it searched unanchored: ^(?s:.*?) for a leading *, (?s:.*)$ for a
// trailing one. The test uses it as the oracle of what the captures are.
func anchoredParseRegex(kind, flags string, parts []parsePart) string {
	var re strings.Builder
	if flags != "" {
		re.WriteString("(?" + flags + ")")
	}
	re.WriteString("^")
	for i, p := range parts {
		last := i == len(parts)-1
		switch {
		case p.star && last:
			re.WriteString("(?s:.*)")
		case p.star:
			re.WriteString("(?s:.*?)")
		case p.col == "" && kind == "regex":
			re.WriteString("(?:" + p.lit + ")")
		case p.col == "":
			re.WriteString(regexp.QuoteMeta(p.lit))
		default:
			group := "(?s:.*?)"
			if last {
				group = "(?s:.*)"
			}
			if kind != "relaxed" && p.typ != "" {
				group = `[-+]?\d+`
			}
			re.WriteString("(" + group + ")")
		}
	}
	if n := len(parts); n > 0 && (parts[n-1].col != "" || parts[n-1].star) {
		re.WriteString("$")
	}
	return re.String()
}

func parseQueryText(kind, flags string, parts []parsePart) string {
	var q strings.Builder
	q.WriteString("T | parse kind=" + kind)
	if flags != "" {
		q.WriteString(" flags=" + flags)
	}
	q.WriteString(" s with")
	var cols []string
	for _, p := range parts {
		switch {
		case p.star:
			q.WriteString(" *")
		case p.col == "":
			q.WriteString(" " + strconv.Quote(p.lit))
		default:
			q.WriteString(" " + p.col)
			if p.typ != "" {
				q.WriteString(":" + p.typ)
			}
			cols = append(cols, p.col)
		}
	}
	q.WriteString(" | project " + strings.Join(cols, ", "))
	return q.String()
}

// TestParseMatchesAnchoredForm checks, on random strings, that parse's
// captures — computed with the unanchored search the binder now compiles,
// and with one match per row shared by all captures (parseGroups) — are
// those of the fully anchored expression, for every kind, with flags, a
// leading and a trailing *, typed and string captures.
func TestParseMatchesAnchoredForm(t *testing.T) {
	cases := []struct {
		kind, flags string
		parts       []parsePart
	}{
		{"simple", "", []parsePart{{star: true}, {lit: "a="}, {col: "A", typ: "long"}, {lit: ";"}, {col: "B"}, {star: true}}},
		{"simple", "", []parsePart{{star: true}, {lit: "a="}, {col: "A"}, {lit: " "}, {star: true}}},
		{"simple", "", []parsePart{{lit: "a="}, {col: "A", typ: "long"}, {star: true}}},
		{"simple", "", []parsePart{{star: true}, {lit: "="}, {col: "X"}}},
		{"simple", "", []parsePart{{star: true}, {lit: "b"}, {col: "X", typ: "long"}, {lit: "-"}, {col: "Y"}, {lit: "x"}, {col: "Z"}, {star: true}}},
		{"simple", "", []parsePart{{col: "X"}, {lit: "="}, {col: "Y"}, {star: true}}},
		{"simple", "", []parsePart{{star: true}, {col: "X"}, {lit: ";"}, {col: "Y"}}},
		{"regex", "", []parsePart{{star: true}, {lit: "a|b"}, {col: "X", typ: "int"}, {lit: "[;-]"}, {col: "Y"}, {star: true}}},
		{"regex", "i", []parsePart{{star: true}, {lit: "A="}, {col: "X"}, {lit: " "}, {star: true}}},
		{"regex", "U", []parsePart{{star: true}, {lit: "a="}, {col: "X"}, {lit: " "}, {star: true}}},
		{"regex", "m", []parsePart{{star: true}, {lit: "a="}, {col: "X"}, {lit: "\n"}, {col: "Y"}, {star: true}}},
		{"relaxed", "", []parsePart{{star: true}, {lit: "a="}, {col: "A", typ: "long"}, {lit: ";"}, {col: "B"}, {star: true}}},
	}
	rng := rand.New(rand.NewPCG(7, 11))
	const alphabet = "ab=;-x 1\n2+A"
	n := 2000
	in := newVector(store.TypeString, n)
	for i := range n {
		var sb strings.Builder
		for range rng.IntN(24) {
			sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		in.Str[i] = sb.String()
	}
	schema := store.Schema{{Name: "s", Type: store.TypeString}}
	batches := []*store.Batch{{Schema: schema, Cols: []*store.Vector{in}, Len: n}}
	for _, c := range cases {
		query := parseQueryText(c.kind, c.flags, c.parts)
		t.Run(query, func(t *testing.T) {
			oracle := regexp.MustCompile(anchoredParseRegex(c.kind, c.flags, c.parts))
			res := runParseQuery(t, query, schema, batches)
			row := 0
			for _, b := range res.Tables[0].Batches {
				for i := range b.Len {
					s := in.Str[row]
					m := oracle.FindStringSubmatch(s)
					g := 0
					for _, p := range c.parts {
						if p.col == "" {
							continue
						}
						g++
						got := valueAt(b.Col(p.col), i)
						want := "null"
						switch {
						case p.typ == "" && m == nil:
							want = `""`
						case p.typ == "":
							want = strconv.Quote(m[g])
						case m != nil:
							if v, err := strconv.ParseInt(m[g], 10, 64); err == nil && (p.typ != "int" || v == int64(int32(v))) {
								want = strconv.FormatInt(v, 10)
							}
						}
						if gotText := formatParseValue(got); gotText != want {
							t.Fatalf("row %d %q: %s = %s, want %s (oracle %s)", row, s, p.col, gotText, want, oracle)
						}
					}
					row++
				}
			}
			if row != n {
				t.Fatalf("%d rows, want %d", row, n)
			}
		})
	}
}

func formatParseValue(v kql.Value) string {
	switch {
	case v.Null:
		return "null"
	case kql.IsStringLike(v.Type):
		return strconv.Quote(v.Str)
	default:
		return strconv.FormatInt(v.Int, 10)
	}
}

func runParseQuery(t *testing.T, query string, schema store.Schema, data []*store.Batch) *Result {
	t.Helper()
	e := New(Options{})
	req := &Request{Query: query, Now: time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)}
	plan, err := kql.Compile(query, kql.MapCatalog{"T": schema}, kql.BindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := e.newExecutor(req, store.TicksFromTime(req.Now))
	x.inline = map[string][]*store.Batch{"T": data}
	res, err := x.execute(context.Background(), plan)
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", query, err))
	}
	return res
}

// TestParseMatcherAgreesWithRegexp compares parseMatcher with regexp's
// FindStringSubmatchIndex on random strings (ASCII, multi-byte and invalid
// UTF-8) for every shape it accepts, and checks the shapes it must refuse.
func TestParseMatcherAgreesWithRegexp(t *testing.T) {
	accepted := []string{
		`status=([-+]?\d+) user=((?s:.*?)) `,
		`^a=([-+]?\d+)`,
		`=((?s:.*))$`,
		`^((?s:.*?))=((?s:.*?))`,
		`b([-+]?\d+)-((?s:.*?))x((?s:.*?))`,
		`((?s:.*?));((?s:.*))$`,
		`(?:a)([-+]?\d+)(?:;)((?s:.*?))(?:x)`,
		`^(?s:.*?)a((?s:.*?))b`,
		`a((?s:.*?))((?s:.*?))b((?s:.*))$`,
		`^((?s:.*?))a((?s:.*?))a((?s:.*?))ab`,
		`([-+]?\d+)([-+]?\d+)`,
		`^((?s:.*))$`,
		`x((?s:.*?))$`,
	}
	refused := []string{`(?i)a((?s:.*?))b`, `(?:a|b)((?s:.*?))`, `[ab]((?s:.*?))`, `a(.*?)b`, `(?U)a((?s:.*?)) `,
		`é((?s:.*?))`, `a(?s:.*)b((?s:.*?))`, `a`}
	for _, expr := range refused {
		if compileParseMatcher(expr) != nil {
			t.Errorf("%s: accepted, want regexp", expr)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	pieces := []string{"a", "b", "x", "=", ";", "-", "+", "1", "2", " ", "\n", "é", "\xff", "status=", " user=", "ab"}
	inputs := make([]string, 3000)
	for i := range inputs {
		var sb strings.Builder
		for range rng.IntN(16) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		inputs[i] = sb.String()
	}
	for _, expr := range accepted {
		pm := compileParseMatcher(expr)
		if pm == nil {
			t.Errorf("%s: refused, want the parse matcher", expr)
			continue
		}
		re := regexp.MustCompile(expr)
		var sc parseScratch
		for _, s := range inputs {
			want := re.FindStringSubmatchIndex(s)
			var got []int
			if pm.match(&sc, s) {
				got = sc.caps
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%s on %q: %v, regexp %v", expr, s, got, want)
			}
		}
	}
}

// BenchmarkParseCaptures is the parse regex target's per-row work: two
// captures of one pattern over log messages, by the parse matcher.
func BenchmarkParseCaptures(b *testing.B) {
	msg := "GET checkout/api/v1/orders/12345 status=200 user=user-4242 latency_ms=20.123 trace=0123456789abcdef bafe doluma, rite sa gomi ponevo tala. fisa rone kaluri fi ba de vo zu ka"
	in := newVector(store.TypeString, 1024)
	for i := range in.Str {
		in.Str[i] = msg
	}
	re := regexp.MustCompile(`status=([-+]?\d+) user=((?s:.*?)) `)
	calls := []*kql.FnCall{
		{Fn: kql.FnParse, Args: []kql.Scalar{nil, nil, &kql.Const{V: kql.LongValue(1)}}, T: store.TypeInt},
		{Fn: kql.FnParse, Args: []kql.Scalar{nil, nil, &kql.Const{V: kql.LongValue(2)}}, T: store.TypeString},
	}
	for b.Loop() {
		parseCaptures(re, in, in.Len(), calls)
	}
}
