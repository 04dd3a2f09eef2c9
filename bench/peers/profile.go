package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"custos/bench/gen"
	"custos/bench/logdata"
)

// profileMeta is kept next to a profile data directory so that a reused
// load asks its questions over the same time window it was loaded with.
type profileMeta struct {
	Rows int       `json:"rows"`
	Seed uint64    `json:"seed"`
	End  time.Time `json:"end"`
}

// profileQuestions is the -profile mode: Custos alone, in this process, on a
// data directory that is loaded once and reused, with one CPU profile per
// question over its warm runs (DIR/q<N>.prof) — the command to find where
// Custos spends its time on the peer questions:
//
//	go run ./bench/peers -profile /tmp/qp -data-dir /var/tmp/peers1m -runs 20
//	go tool pprof -top /tmp/qp/q2.prof
//
// The CPU figures are this process's, so they include the benchmark's own
// HTTPS client (small beside the server's work; see the profiles).
func profileQuestions(ctx context.Context, dir, dataDir string, rows, clients, runs, only int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if dataDir == "" {
		return errors.New("-profile needs -data-dir (the loaded data is reused between runs)")
	}
	metaPath := filepath.Clean(dataDir) + ".peers.json"
	meta := profileMeta{Rows: rows, Seed: 42, End: time.Now().UTC().Truncate(time.Hour)}
	reuse := false
	if b, err := os.ReadFile(metaPath); err == nil {
		var m profileMeta
		if json.Unmarshal(b, &m) == nil && m.Rows == rows && m.Seed == meta.Seed {
			meta, reuse = m, true
		}
	}
	o := logdata.Options{Seed: meta.Seed, Rows: rows, End: meta.End}
	d := &dataset{gen: logdata.New(o), rows: rows, batchRows: 500}
	qs := questions(d.gen.Options())
	topts := gen.TargetOptions{DataDir: dataDir, InProcess: true, Logf: log.Printf}
	t, err := gen.StartTarget(ctx, topts)
	if err != nil {
		return err
	}
	defer func() { _ = t.Close() }()
	_, cnt, err := t.Client.QueryRows(ctx, "Bench_CL | count")
	have := 0
	if err == nil && len(cnt) == 1 {
		f, _ := cnt[0][0].(float64)
		have = int(f)
	}
	switch {
	case reuse && have == rows:
		log.Printf("reusing %d loaded rows in %s (data ends %s)", have, dataDir, meta.End.Format(time.RFC3339))
	case have == 0:
		rules, err := gen.Setup(ctx, t.Client, clients)
		if err != nil {
			return err
		}
		log.Printf("loading %d rows", rows)
		if _, err := gen.Load(ctx, t.Client, rules, d.gen, gen.LoadOptions{Clients: clients, BatchRows: d.batchRows}); err != nil {
			return err
		}
		b, _ := json.Marshal(meta)
		if err := os.WriteFile(metaPath, b, 0o600); err != nil {
			return err
		}
		// A graceful stop turns the memtables into parts, as on a
		// long-running server.
		if err := t.Close(); err != nil {
			return err
		}
		if t, err = gen.StartTarget(ctx, topts); err != nil {
			return err
		}
		settle(t)
	default:
		return fmt.Errorf("%s holds %d rows of Bench_CL (meta %s); want an empty directory or a -profile load of %d rows", dataDir, have, metaPath, rows)
	}
	runtime.MemProfileRate = 16 << 10 // allocation profiles fine enough for a 1 ms query
	var b strings.Builder
	fmt.Fprintf(&b, "Custos in process, %d rows, %d warm runs per question (CPU: this process, server and client)\n\n", rows, runs)
	for i, q := range qs {
		if only != 0 && i+1 != only {
			continue
		}
		n, err := (&custosPeer{t: t}).Query(ctx, q) // warm-up
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		base, err := os.Create(filepath.Join(dir, fmt.Sprintf("q%d.allocs-base", i+1)))
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(base, 0); err != nil {
			base.Close()
			return err
		}
		if err := base.Close(); err != nil {
			return err
		}
		if err != nil {
			return fmt.Errorf("%s: %w", q.Name, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("q%d.prof", i+1))
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		c0, _, _, _ := t.Stats()
		var lat []time.Duration
		for range runs {
			t0 := time.Now()
			if _, err := (&custosPeer{t: t}).Query(ctx, q); err != nil {
				pprof.StopCPUProfile()
				f.Close()
				return fmt.Errorf("%s: %w", q.Name, err)
			}
			lat = append(lat, time.Since(t0))
		}
		c1, _, _, _ := t.Stats()
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return err
		}
		// The allocations since the start (all questions so far, loading
		// included on a first load): diff two with pprof -base.
		mf, err := os.Create(filepath.Join(dir, fmt.Sprintf("q%d.allocs", i+1)))
		if err != nil {
			return err
		}
		if err := pprof.Lookup("allocs").WriteTo(mf, 0); err != nil {
			mf.Close()
			return err
		}
		if err := mf.Close(); err != nil {
			return err
		}
		slices.Sort(lat)
		line := fmt.Sprintf("q%d %-32s median %8v  CPU/query %8v  rows %d  (%s)", i+1, q.Name, gen.Round(lat[len(lat)/2]),
			gen.Round((c1-c0)/time.Duration(runs)), n, path)
		log.Print(line)
		b.WriteString(line + "\n")
	}
	fmt.Print(b.String())
	return nil
}

// settle waits until the server's CPU use stays under 5 % of a core for
// 3 s (background flushes and merges done), at most 5 minutes.
func settle(t *gen.Target) {
	start := time.Now()
	prev, _, _, err := t.Stats()
	if err != nil {
		return
	}
	for quiet := 0; quiet < 3 && time.Since(start) < 5*time.Minute; {
		time.Sleep(time.Second)
		cpu, _, _, err := t.Stats()
		if err != nil {
			return
		}
		if cpu-prev < 50*time.Millisecond {
			quiet++
		} else {
			quiet = 0
		}
		prev = cpu
	}
	log.Printf("server idle after %v", gen.Round(time.Since(start)))
}
