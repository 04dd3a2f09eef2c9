package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/kql"
	"custos/internal/store"
)

var testData []*store.Batch

// testBatches is a 300,000-row table in about five batches, shared by tests.
func testBatches() []*store.Batch {
	if testData == nil {
		testData = makeBenchBatches(300_000)
	}
	return testData
}

func TestResultRowLimit(t *testing.T) {
	e := New(Options{Limits: Limits{MaxResultRows: 100}})
	_, err := e.Query(context.Background(), Request{Query: "range x from 1 to 1000 step 1"})
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("got %v; want ErrLimitExceeded", err)
	}
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "rows" || le.Max != 100 {
		t.Fatalf("got %#v; want a rows LimitError", err)
	}
	if code, kind := le.AzureError(); code != "BadArgumentError" || kind != api.KindInvalid {
		t.Fatalf("AzureError = %s, %s", code, kind)
	}
	res, err := e.Query(context.Background(), Request{Query: "range x from 1 to 1000 step 1 | take 100"})
	if err != nil || res.Tables[0].Rows() != 100 {
		t.Fatalf("take 100: rows=%v err=%v; want 100 rows", res, err)
	}
}

func TestResultBytesLimit(t *testing.T) {
	e := New(Options{Limits: Limits{MaxResultBytes: 1000}})
	_, err := e.Query(context.Background(), Request{Query: `range x from 1 to 100 step 1 | extend s = strcat("0123456789", x)`})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "bytes" {
		t.Fatalf("got %v; want a bytes LimitError", err)
	}
}

func TestMemoryLimit(t *testing.T) {
	e := New(Options{Limits: Limits{MaxMemoryBytes: 1 << 20}})
	_, err := e.Query(context.Background(), Request{Query: "range x from 1 to 1000000 step 1 | sort by x asc | take 1"})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "memory" {
		t.Fatalf("got %v; want a memory LimitError", err)
	}
	// Aggregation state counts too.
	_, err = e.Query(context.Background(), Request{Query: "range x from 1 to 1000000 step 1 | summarize count() by x | count"})
	if !errors.As(err, &le) || le.Limit != "memory" {
		t.Fatalf("got %v; want a memory LimitError", err)
	}
}

func TestRangeLimit(t *testing.T) {
	e := New(Options{})
	_, err := e.Query(context.Background(), Request{Query: "range x from 1 to 100000000000 step 1 | count"})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "range" {
		t.Fatalf("got %v; want a range LimitError", err)
	}
}

func TestTimeoutAndCancel(t *testing.T) {
	e := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Query(ctx, Request{Query: "range x from 1 to 10 step 1 | summarize count()"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: got %v; want context.Canceled", err)
	}
	// A query over many batches stops at its deadline.
	data := testBatches()
	x := e.newExecutor(&Request{}, 0)
	x.inline = map[string][]*store.Batch{"Logs": data}
	plan, err := kql.Compile("Logs | summarize count() by UserId, Message, Level", kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tctx, tcancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer tcancel()
	if _, err := x.execute(tctx, plan); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: got %v; want context.DeadlineExceeded", err)
	}
}

func TestSemanticErrorIsCoded(t *testing.T) {
	e := New(Options{})
	_, err := e.Query(context.Background(), Request{Query: "T | where x > 1", Tables: kql.MapCatalog{"T": {{Name: "y", Type: store.TypeLong}}}})
	var se *kql.SemanticError
	if !errors.As(err, &se) || se.Line != 1 || se.Col != 11 {
		t.Fatalf("got %v; want SemanticError at 1:11", err)
	}
	if ae := api.ToError(err); ae.Status != 400 || ae.Code != "BadArgumentError" {
		t.Fatalf("api.ToError = %d %s; want 400 BadArgumentError", ae.Status, ae.Code)
	}
	_, err = e.Query(context.Background(), Request{Query: "T | where", Tables: kql.MapCatalog{}})
	var syn *kql.SyntaxError
	if !errors.As(err, &syn) {
		t.Fatalf("got %v; want a SyntaxError", err)
	}
}

func TestNoSource(t *testing.T) {
	e := New(Options{})
	_, err := e.Query(context.Background(), Request{Query: "T | count", Tables: kql.MapCatalog{"T": {{Name: "y", Type: store.TypeLong}}}})
	if !errors.Is(err, ErrNoSource) {
		t.Fatalf("got %v; want ErrNoSource", err)
	}
}

// TestParallelMatchesSerial runs the same queries with one and four workers
// over many batches; results must agree (order-insensitive for summarize).
func TestParallelMatchesSerial(t *testing.T) {
	data := testBatches()
	queries := []string{
		"Logs | summarize count(), s = round(sum(Latency), 0), min(Latency), max(Latency), dcount(Service) by Level | order by Level asc",
		"Logs | summarize count() by bin(TimeGenerated, 10m), Service | order by TimeGenerated asc, Service asc",
		`Logs | where Message has "timeout" and Latency > 100 | count`,
		"Logs | top 5 by Latency | project UserId, Latency",
		"Logs | where Level == 'error' | take 7 | project TimeGenerated",
		"Logs | summarize c = count() by UserId | top 3 by c desc, UserId asc",
	}
	for _, q := range queries {
		var outs []string
		for _, w := range []int{1, 4} {
			e := New(Options{Parallelism: w})
			plan, err := kql.Compile(q, kql.MapCatalog{"Logs": benchSchema}, kql.BindOptions{})
			if err != nil {
				t.Fatal(err)
			}
			x := e.newExecutor(&Request{}, 0)
			x.inline = map[string][]*store.Batch{"Logs": data}
			res, err := x.execute(context.Background(), plan)
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			outs = append(outs, formatResult(res))
		}
		if outs[0] != outs[1] {
			t.Errorf("%s: serial and parallel differ:\n%s\n---\n%s", q, outs[0], outs[1])
		}
	}
}

// TestDcountAccuracy checks dcount against exact counts at several
// cardinalities: exact up to 1000, within 3 sigma (2.4%) of the truth beyond.
func TestDcountAccuracy(t *testing.T) {
	e := New(Options{})
	for _, n := range []int{1, 10, 999, 1000, 5000, 50_000, 300_000} {
		q := fmt.Sprintf("range x from 1 to %d step 1 | extend s = strcat('k', x) | summarize a = dcount(x), b = dcount(s), c = dcount(x, 0), d = dcount(x, 4)", n)
		res, err := e.Query(context.Background(), Request{Query: q})
		if err != nil {
			t.Fatal(err)
		}
		b := res.Tables[0].Batches[0]
		for i, bound := range []float64{0.024, 0.024, 0.048, 0.006} {
			got := float64(b.Cols[i].Int[0])
			err := math.Abs(got-float64(n)) / float64(n)
			if n <= 1000 && got != float64(n) {
				t.Errorf("n=%d %s: got %v; want exact", n, b.Schema[i].Name, got)
			}
			if err > bound {
				t.Errorf("n=%d %s: got %v, relative error %.4f > %.4f", n, b.Schema[i].Name, got, err, bound)
			}
		}
	}
}

func TestTransformMissingColumnsAndBadInput(t *testing.T) {
	in := store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Msg", Type: store.TypeString}, {Name: "N", Type: store.TypeLong}}
	tr, err := CompileTransform("source | extend M2 = strcat(Msg, '!') | where isnull(N) or N > 1", in)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Output(); len(got) != 4 || got[3].Name != "M2" {
		t.Fatalf("Output() = %v", got)
	}
	// The batch lacks N: it is null for every row, so every row passes.
	b := &store.Batch{Schema: in[:2], Len: 2, Cols: []*store.Vector{
		{Type: store.TypeDatetime, Int: []int64{1, 2}},
		{Type: store.TypeString, Str: []string{"a", "b"}},
	}}
	out, err := tr.Run(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	if out.Len != 2 || out.Col("M2").Str[1] != "b!" || !out.Col("N").IsNull(0) {
		t.Fatalf("Run = %s", formatResult(&Result{Tables: []Table{{Schema: out.Schema, Batches: []*store.Batch{out}}}}))
	}
	// A vector shorter than the batch is rejected, not indexed out of range.
	bad := &store.Batch{Schema: in[:2], Len: 3, Cols: b.Cols}
	if _, err := tr.Run(context.Background(), bad); err == nil {
		t.Fatal("Run accepted a malformed batch")
	}
	if _, err := CompileTransform("source | summarize count()", in); err == nil {
		t.Fatal("summarize accepted in a transformation")
	}
	if _, err := CompileTransform("print 1", in); err == nil {
		t.Fatal("a transformation that does not read source was accepted")
	}
}
