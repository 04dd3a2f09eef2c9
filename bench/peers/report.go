package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"custos/bench/gen"
)

// ratio words b against Custos's a: "1.8× Custos" (higher is worse for
// times and bytes).
func ratio(custos, other float64) string {
	if custos <= 0 || other <= 0 {
		return ""
	}
	return fmt.Sprintf(" (%.2f×)", other/custos)
}

func render(m gen.Machine, rs []result, qs []question, d *dataset, clients, runs, warmup int, dropCache bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Custos beside its peers — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./bench/peers -rows %d -clients %d -runs %d -warmup %d -drop-cache=%v`\n\n", d.rows, clients, runs, warmup, dropCache)
	b.WriteString(m.Markdown())
	fmt.Fprintf(&b, "\nDataset: %d records from `bench/logdata` (seed 42), %s of JSON. Ratios in parentheses are against "+
		"Custos in this same run (above 1 means more time, bytes or memory than Custos).\n\n", d.rows, gen.MB(d.rawBytes.Load()))
	var custos *result
	for i := range rs {
		if rs[i].Name == "Custos" && rs[i].Err == nil {
			custos = &rs[i]
		}
	}
	base := func(f func(*result) float64) float64 {
		if custos == nil {
			return 0
		}
		return f(custos)
	}
	b.WriteString("| System | Version | Ingestion rows/s | CPU s per M rows | Bytes on disk | % of JSON | Peak RSS |\n|---|---|---|---|---|---|---|\n")
	for i := range rs {
		r := &rs[i]
		if r.Err != nil {
			fmt.Fprintf(&b, "| %s | %s | failed: %s | | | | |\n", r.Name, r.Version, strings.ReplaceAll(r.Err.Error(), "|", "/"))
			continue
		}
		rps := float64(d.rows) / r.LoadWall.Seconds()
		cpuPerM := r.LoadCPU.Seconds() / (float64(d.rows) / 1e6)
		fmt.Fprintf(&b, "| %s | %s | %.0f%s | %.1f%s | %s%s | %.1f %% | %s%s |\n", r.Name, r.Version,
			rps, ratio(base(func(c *result) float64 { return float64(d.rows) / c.LoadWall.Seconds() }), rps),
			cpuPerM, ratio(base(func(c *result) float64 { return c.LoadCPU.Seconds() }), r.LoadCPU.Seconds()),
			gen.MB(r.Disk), ratio(base(func(c *result) float64 { return float64(c.Disk) }), float64(r.Disk)),
			100*float64(r.Disk)/float64(max(d.rawBytes.Load(), 1)),
			gen.MB(r.PeakRSS), ratio(base(func(c *result) float64 { return float64(c.PeakRSS) }), float64(r.PeakRSS)))
	}
	b.WriteString("\nFor ingestion rows/s the ratio is the other system's rate over Custos's (above 1: faster than Custos).\n\n")
	cold := "cold: the first run after a restart, the system's files dropped from the page cache"
	if !dropCache {
		cold = "cold: the first run after a restart, the page cache kept"
	}
	fmt.Fprintf(&b, "## Queries (warm median / cold; server CPU per warm run)\n\nPer question and system: %s; then %d unmeasured "+
		"runs; warm: the median of the next %d runs (docs/benchmarks.md, \"How queries are timed\").\n\n", cold, warmup, runs)
	writeQuestionTable(&b, rs, qs, custos, func(r *result) []time.Duration { return r.Warm }, func(r *result, qi int) string {
		return fmt.Sprintf("; CPU %v; %d rows", gen.Round(r.QueryCPU[qi]), r.Rows[qi])
	}, func(r *result, qi int) string { return " / " + gen.Round(r.Cold[qi]).String() })
	if warmup >= 2 {
		b.WriteString("\nClickBench's hot run (the faster of the two runs right after the cold one), for comparison with its published method:\n\n")
		writeQuestionTable(&b, rs, qs, custos, func(r *result) []time.Duration { return r.Hot }, nil, nil)
	}
	if dropCache {
		var ev []string
		for _, r := range rs {
			if r.Err == nil {
				ev = append(ev, r.Name+" "+gen.MB(r.Evicted))
			}
		}
		b.WriteString("\nPage cache dropped before the cold runs (sum over the questions): " + strings.Join(ev, ", ") + ".\n")
	}
	b.WriteString("\nEach system answers the same question in its own language; the texts are in `bench/peers/questions.go`. " +
		"The rare-term question is a case-insensitive substring match in ClickHouse and DuckDB and a word match in Custos " +
		"(`has`) and VictoriaLogs. ClickHouse 18.16 stores TimeGenerated with second precision. DuckDB loads from a JSON lines " +
		"file written before the timed part (its usual ingestion path); the others are loaded over HTTP by 8 concurrent clients.\n")
	return b.String()
}

const docsMarker = "<!-- bench/peers results -->"

// writeDocs replaces the results section of docs/benchmarks.md (between two
// markers) with report.
func writeDocs(path, report string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	parts := strings.Split(string(old), docsMarker)
	if len(parts) != 3 {
		return fmt.Errorf("%s: expected the results section between two %q markers", path, docsMarker)
	}
	body := strings.Replace(report, "# ", "### ", 1)
	return os.WriteFile(path, []byte(parts[0]+docsMarker+"\n"+body+"\n"+docsMarker+parts[2]), 0o644)
}

// writeQuestionTable writes one row per question and one column per system:
// the time times(r)[qi] with its ratio against Custos, then what cold (after
// the ratio) and extra add to the cell, when set.
func writeQuestionTable(b *strings.Builder, rs []result, qs []question, custos *result, times func(*result) []time.Duration,
	extra, cold func(r *result, qi int) string) {
	b.WriteString("| Question |")
	for _, r := range rs {
		fmt.Fprintf(b, " %s |", r.Name)
	}
	b.WriteString("\n|---|")
	for range rs {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for qi, q := range qs {
		fmt.Fprintf(b, "| %s |", q.Name)
		for i := range rs {
			r := &rs[i]
			if r.Err != nil || qi >= len(times(r)) {
				b.WriteString(" — |")
				continue
			}
			var rc string
			if custos != nil && qi < len(times(custos)) {
				rc = ratio(times(custos)[qi].Seconds(), times(r)[qi].Seconds())
			}
			cell := fmt.Sprintf("%v%s", gen.Round(times(r)[qi]), rc)
			if cold != nil {
				cell += cold(r, qi)
			}
			if extra != nil {
				cell += extra(r, qi)
			}
			fmt.Fprintf(b, " %s |", cell)
		}
		b.WriteString("\n")
	}
}
