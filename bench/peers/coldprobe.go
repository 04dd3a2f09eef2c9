package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"custos/bench/gen"
	"custos/bench/logdata"
	"custos/internal/server"
)

// phases are the client-side timings of one request (httptrace).
type phases struct {
	Total, Connect, TLS, TTFB time.Duration // TTFB: request written → first response byte
	Engine                    time.Duration // the engine's executionTime (statistics)
	Scanned                   int64         // rows scanned (statistics)
	MinFlt                    int64         // the server's minor page faults during the request
	CPU                       time.Duration // the server's CPU time during the request (10 ms ticks)
	Reused                    bool
}

// tracedQuery asks q once and returns where the client saw the time go.
func tracedQuery(ctx context.Context, t *gen.Target, q question) (phases, error) {
	var ph phases
	var connStart, tlsStart, wrote time.Time
	trace := &httptrace.ClientTrace{
		GotConn:           func(i httptrace.GotConnInfo) { ph.Reused = i.Reused },
		ConnectStart:      func(string, string) { connStart = time.Now() },
		ConnectDone:       func(string, string, error) { ph.Connect = time.Since(connStart) },
		TLSHandshakeStart: func() { tlsStart = time.Now() },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { ph.TLS = time.Since(tlsStart) },
		WroteRequest:      func(httptrace.WroteRequestInfo) { wrote = time.Now() },
		GotFirstResponseByte: func() {
			if !wrote.IsZero() {
				ph.TTFB = time.Since(wrote)
			}
		},
	}
	tok, err := t.Client.Token(ctx, "https://api.loganalytics.io")
	if err != nil {
		return ph, err
	}
	body, _ := json.Marshal(map[string]string{"query": q.KQL})
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost,
		t.Client.Admin.Endpoint+"/v1/workspaces/"+t.Client.Admin.WorkspaceID+"/query", bytes.NewReader(body))
	if err != nil {
		return ph, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", "include-statistics=true")
	f0, c0 := procStat(t.PID())
	t0 := time.Now()
	resp, err := t.Client.HTTP.Do(req)
	if err != nil {
		return ph, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	ph.Total = time.Since(t0)
	f1, c1 := procStat(t.PID())
	ph.MinFlt, ph.CPU = f1-f0, c1-c0
	if err != nil {
		return ph, err
	}
	if resp.StatusCode != http.StatusOK {
		return ph, fmt.Errorf("custos: %d: %.300s", resp.StatusCode, raw)
	}
	var res struct {
		Statistics struct {
			Query struct {
				ExecutionTime float64 `json:"executionTime"`
				Input         struct {
					Rows struct {
						Scanned int64 `json:"scanned"`
					} `json:"rows"`
				} `json:"inputDatasetStatistics"`
			} `json:"query"`
		} `json:"statistics"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return ph, fmt.Errorf("custos: unreadable result: %w", err)
	}
	ph.Engine = time.Duration(res.Statistics.Query.ExecutionTime * float64(time.Second))
	ph.Scanned = res.Statistics.Query.Input.Rows.Scanned
	return ph, nil
}

// coldProbe is the -cold-probe mode: the custos binary as a child process on
// an already loaded -data-dir (a -profile load), restarted n times; after each
// restart question qi is asked three times — cold (new process, new
// connection), again on the same connection (warm process) and once more on a
// new connection (the TLS handshake alone), then runs times on that
// connection (the harness's measured warm runs; their median is kept) — with
// the client-side phases of each. With dropCache the data directory's files
// leave the page cache after each restart, as before the harness's cold runs.
// With a profile directory, the server's CPU profile of the second
// around each cold request (and nothing else) is written there as cold-<i>.prof (merge them with
// `go tool pprof -top DIR/cold-*.prof`), and the second around the measured
// warm runs as warm-<i>.prof.
func coldProbe(ctx context.Context, binary, dataDir, profDir string, n, qi, runs int, dropCache bool) error {
	if dataDir == "" {
		return errors.New("-cold-probe needs -data-dir (a data directory loaded by -profile)")
	}
	b, err := os.ReadFile(filepath.Clean(dataDir) + ".peers.json")
	if err != nil {
		return fmt.Errorf("-cold-probe reads the -profile load's metadata: %w", err)
	}
	var meta profileMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return err
	}
	qs := questions(logdata.Options{Seed: meta.Seed, Rows: meta.Rows, End: meta.End})
	if qi < 1 || qi > len(qs) {
		return fmt.Errorf("-cold-question %d: want 1..%d", qi, len(qs))
	}
	q := qs[qi-1]
	addrFile := ""
	if profDir != "" {
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return err
		}
		addrFile = filepath.Join(profDir, "pprof.addr")
		os.Setenv(server.TestPprofEnv, "127.0.0.1:0")
		os.Setenv(server.TestPprofEnv+"_FILE", addrFile)
	}
	t, err := gen.StartTarget(ctx, gen.TargetOptions{DataDir: dataDir, Binary: binary, Logf: log.Printf})
	if err != nil {
		return err
	}
	defer func() { _ = t.Close() }()
	settle(t)
	var cold, again, fresh, warm []phases
	var evicted int64
	for i := range n {
		if err := t.Restart(ctx); err != nil {
			return err
		}
		if dropCache {
			before, after, err := evictDir(dataDir)
			if err != nil {
				return err
			}
			evicted += before - after
		}
		var prof chan error
		if profDir != "" {
			prof = make(chan error, 1)
			go func() { prof <- fetchProfile(ctx, addrFile, filepath.Join(profDir, fmt.Sprintf("cold-%d.prof", i))) }()
			time.Sleep(100 * time.Millisecond) // the profile has started
		}
		c, err := tracedQuery(ctx, t, q)
		if err != nil {
			return err
		}
		if prof != nil { // the profile covers the cold query alone
			if err := <-prof; err != nil {
				return err
			}
		}
		a, err := tracedQuery(ctx, t, q)
		if err != nil {
			return err
		}
		t.Client.HTTP.CloseIdleConnections()
		f, err := tracedQuery(ctx, t, q)
		if err != nil {
			return err
		}
		var wprof chan error
		if profDir != "" { // and one of the second around the measured warm runs
			wprof = make(chan error, 1)
			go func() { wprof <- fetchProfile(ctx, addrFile, filepath.Join(profDir, fmt.Sprintf("warm-%d.prof", i))) }()
			time.Sleep(100 * time.Millisecond)
		}
		var ws []phases // the harness's measured warm runs, on the kept connection
		for range runs {
			w, err := tracedQuery(ctx, t, q)
			if err != nil {
				return err
			}
			ws = append(ws, w)
		}
		if wprof != nil {
			if err := <-wprof; err != nil {
				return err
			}
		}
		slices.SortFunc(ws, func(a, b phases) int { return int(a.Total - b.Total) })
		if len(ws) > 0 {
			warm = append(warm, ws[len(ws)/2])
		}
		log.Printf("%2d %d rows scanned; cold %v (connect %v, TLS %v, server %v, engine %v, %d faults, reused %v) | same conn %v (server %v, engine %v) | new conn %v (TLS %v, server %v, engine %v)",
			i, c.Scanned, gen.Round(c.Total), gen.Round(c.Connect), gen.Round(c.TLS), gen.Round(c.TTFB), gen.Round(c.Engine), c.MinFlt, c.Reused,
			gen.Round(a.Total), gen.Round(a.TTFB), gen.Round(a.Engine), gen.Round(f.Total), gen.Round(f.TLS), gen.Round(f.TTFB), gen.Round(f.Engine))
		cold, again, fresh = append(cold, c), append(again, a), append(fresh, f)
	}
	med := func(ps []phases, get func(phases) time.Duration) string {
		v := make([]time.Duration, len(ps))
		for i, p := range ps {
			v[i] = get(p)
		}
		slices.Sort(v)
		return gen.Round(v[len(v)/2]).String()
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s, %d restarts (page cache of the data directory dropped after each: %v, %s in all), medians:\n", q.Name, n, dropCache, gen.MB(evicted))
	for _, r := range []struct {
		name string
		ps   []phases
	}{{"cold (first after restart)", cold}, {"same connection", again}, {"new connection", fresh},
		{fmt.Sprintf("median of the next %d", runs), warm}} {
		if len(r.ps) == 0 {
			continue
		}
		var flt int64
		var cpu time.Duration
		for _, p := range r.ps {
			flt += p.MinFlt
			cpu += p.CPU
		}
		fmt.Fprintf(&sb, "  %-28s total %8s  connect %8s  TLS %8s  server (TTFB) %8s  engine %8s  mean server CPU %6s  faults %d\n", r.name,
			med(r.ps, func(p phases) time.Duration { return p.Total }), med(r.ps, func(p phases) time.Duration { return p.Connect }),
			med(r.ps, func(p phases) time.Duration { return p.TLS }), med(r.ps, func(p phases) time.Duration { return p.TTFB }),
			med(r.ps, func(p phases) time.Duration { return p.Engine }), gen.Round(cpu/time.Duration(len(r.ps))), flt/int64(len(r.ps)))
	}
	fmt.Print(sb.String())
	return nil
}

// fetchProfile writes a one-second CPU profile of the server into path.
func fetchProfile(ctx context.Context, addrFile, path string) error {
	addr, err := os.ReadFile(addrFile)
	if err != nil {
		return fmt.Errorf("pprof address: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+strings.TrimSpace(string(addr))+"/debug/pprof/profile?seconds=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// procStat returns a process's minor page faults and CPU time (user and
// system) from /proc (Linux; zeros elsewhere).
func procStat(pid int) (minflt int64, cpu time.Duration) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, 0
	}
	minflt, _ = strconv.ParseInt(f[7], 10, 64)
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return minflt, time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
