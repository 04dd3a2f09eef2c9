// Command authz measures what authorization costs Custos: the per-request
// work of the query path (Authorize of workspaces/query/read plus
// TableAccess for the workspace's tables) and of the ingestion path
// (Authorize of Microsoft.Insights/Telemetry/Write on the DCR), on the real
// SQLite catalog and rbac.Authorizer, with few and with 10,000 role
// assignments in the catalog, warm (the 1 s assignment cache) and cold
// (every call reads the catalog); and how long a new role assignment takes
// to become effective. It writes bench/results/authz-<date>.md.
//
//	go run ./bench/authz [-assignments 10000] [-n 20000] [-out FILE]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"custos/bench/internal/procstat"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

func main() {
	assignments := flag.Int("assignments", 10000, "role assignments of other principals in the large catalog")
	n := flag.Int("n", 20000, "authorization calls per measurement")
	out := flag.String("out", "", "results file (default bench/results/authz-<date>.md)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("bench", "results", "authz-"+time.Now().UTC().Format("2006-01-02")+".md")
	}
	if err := run(*assignments, *n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "authz:", err)
		os.Exit(1)
	}
}

// fixture is a catalog with one workspace, one DCR-like scope, the
// measured principal (Log Analytics Reader on the workspace, Monitoring
// Metrics Publisher on the DCR, member of a group with a table-scoped
// grant) and extra assignments of other principals.
type fixture struct {
	cat   *catalog.DB
	p     identity.Principal
	ws    rbac.Scope
	dcr   rbac.Scope
	close func()
}

func newFixture(ctx context.Context, extra int) (*fixture, error) {
	dir, err := os.MkdirTemp("", "custos-bench-authz-")
	if err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		return nil, err
	}
	boot, err := cat.Bootstrap(ctx, catalog.BootstrapOptions{})
	if err != nil {
		return nil, err
	}
	f := &fixture{cat: cat, ws: rbac.Scope(boot.Workspace.ID()),
		dcr:   rbac.Scope(boot.ResourceGroup.ID() + "/providers/Microsoft.Insights/dataCollectionRules/bench"),
		close: func() { cat.Close(); os.RemoveAll(dir) }}
	guid := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }
	tenant := boot.Tenant.ID
	user := identity.User{TenantID: tenant, ObjectID: guid(1), UserPrincipalName: "bench@example.test"}
	if _, err := cat.CreateUser(ctx, user, "", catalog.Actor{ID: "bench"}); err != nil {
		return nil, err
	}
	grp := identity.Group{TenantID: tenant, ObjectID: guid(2), DisplayName: "bench readers"}
	if _, err := cat.CreateGroup(ctx, grp, catalog.Actor{ID: "bench"}); err != nil {
		return nil, err
	}
	if _, err := cat.AddGroupMember(ctx, tenant, grp.ObjectID, user.ObjectID, catalog.Actor{ID: "bench"}); err != nil {
		return nil, err
	}
	f.p = identity.Principal{TenantID: tenant, ObjectID: user.ObjectID, Kind: identity.KindUser}
	assign := func(i int, scope rbac.Scope, role, principal string) error {
		name := guid(1_000_000 + i)
		return cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{ID: string(scope) + "/providers/Microsoft.Authorization/roleAssignments/" + name,
			Name: name, Scope: scope, RoleDefinitionID: role, PrincipalID: principal, PrincipalType: "User"})
	}
	if err := assign(0, f.ws, rbac.RoleLogAnalyticsReader, user.ObjectID); err != nil {
		return nil, err
	}
	if err := assign(1, f.dcr, rbac.RoleMonitoringMetricsPublisher, user.ObjectID); err != nil {
		return nil, err
	}
	if err := assign(2, f.ws+"/tables/Syslog", rbac.RoleReader, grp.ObjectID); err != nil {
		return nil, err
	}
	for i := 0; i < extra; i++ {
		// Other principals, spread over the workspace, its tables and the group.
		scope := f.ws
		switch i % 3 {
		case 1:
			scope = rbac.Scope(boot.ResourceGroup.ID())
		case 2:
			scope = f.ws + rbac.Scope(fmt.Sprintf("/tables/T%d_CL", i%50))
		}
		other := guid(10_000_000 + i)
		if _, err := cat.CreateUser(ctx, identity.User{TenantID: tenant, ObjectID: other, UserPrincipalName: fmt.Sprintf("u%d@example.test", i)}, "", catalog.Actor{ID: "bench"}); err != nil {
			return nil, err
		}
		if err := assign(10+i, scope, rbac.RoleReader, other); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type measure struct {
	name     string
	perCall  time.Duration // wall
	cpu      time.Duration // CPU per call
	p99      time.Duration
	allowed  bool
	calls    int
	catalogN int
}

var tables = []string{"Heartbeat", "Syslog", "Perf", "Event", "AzureActivity", "ContainerLogV2", "App_CL", "Bench_CL"}

// queryPath is what the query API does per request: the route's Authorize
// and one TableAccess evaluated for every table of the workspace.
func queryPath(ctx context.Context, a *rbac.Authorizer, f *fixture) (bool, error) {
	d, err := a.Authorize(ctx, f.p, rbac.ActionQueryRead, f.ws)
	if err != nil || !d.Allowed {
		return false, err
	}
	ta, err := a.TableAccess(ctx, f.p, f.ws)
	if err != nil {
		return false, err
	}
	ok := false
	for _, t := range tables {
		if ta.Table(t, nil).Allowed {
			ok = true
		}
	}
	return ok, nil
}

func ingestPath(ctx context.Context, a *rbac.Authorizer, f *fixture) (bool, error) {
	d, err := a.Authorize(ctx, f.p, rbac.ActionTelemetryWrite, f.dcr)
	return d.Allowed, err
}

func bench(ctx context.Context, name string, n int, a *rbac.Authorizer, f *fixture, extra int, path func(context.Context, *rbac.Authorizer, *fixture) (bool, error)) (measure, error) {
	var allowed bool
	for i := 0; i < 100; i++ { // warm up
		if _, err := path(ctx, a, f); err != nil {
			return measure{}, err
		}
	}
	lat := make([]time.Duration, 0, n)
	c0, t0 := cpuTime(), time.Now()
	for i := 0; i < n; i++ {
		s := time.Now()
		ok, err := path(ctx, a, f)
		if err != nil {
			return measure{}, err
		}
		lat = append(lat, time.Since(s))
		allowed = ok
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return measure{name: name, perCall: wall / time.Duration(n), cpu: cpu / time.Duration(n), p99: lat[len(lat)*99/100],
		allowed: allowed, calls: n, catalogN: extra}, nil
}

func run(extra, n int, out string) error {
	ctx := context.Background()
	load0 := procstat.LoadAvg()
	var rows []measure
	var propagation []time.Duration
	for _, size := range []int{10, extra} {
		f, err := newFixture(ctx, size)
		if err != nil {
			return err
		}
		warm := rbac.New(rbac.Options{Store: f.cat})
		cold := rbac.New(rbac.Options{Store: f.cat, CacheTTL: -1})
		for _, c := range []struct {
			name string
			a    *rbac.Authorizer
			path func(context.Context, *rbac.Authorizer, *fixture) (bool, error)
			n    int
		}{
			{"query: Authorize + TableAccess (8 tables), warm", warm, queryPath, n},
			{"query: Authorize + TableAccess (8 tables), cold", cold, queryPath, n / 10},
			{"ingest: Authorize Telemetry/Write on the DCR, warm", warm, ingestPath, n},
			{"ingest: Authorize Telemetry/Write on the DCR, cold", cold, ingestPath, n / 10},
		} {
			m, err := bench(ctx, c.name, c.n, c.a, f, size, c.path)
			if err != nil {
				return err
			}
			if !m.allowed {
				return fmt.Errorf("%s: the principal was denied", c.name)
			}
			rows = append(rows, m)
		}
		if size == extra {
			// Propagation: a new assignment, with the default 1 s cache and
			// without Invalidate, until Authorize allows.
			for i := 0; i < 5; i++ {
				target := rbac.Scope(fmt.Sprintf("%s/tables/New%d_CL", f.ws, i))
				act := rbac.ActionWorkspaceSharedKeys // not granted by Log Analytics Reader
				if d, _ := warm.Authorize(ctx, f.p, act, target); d.Allowed {
					return fmt.Errorf("allowed before the assignment")
				}
				name := fmt.Sprintf("aaaaaaaa-0000-4000-8000-%012d", i)
				start := time.Now()
				if err := f.cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{ID: string(target) + "/providers/Microsoft.Authorization/roleAssignments/" + name,
					Name: name, Scope: target, RoleDefinitionID: rbac.RoleContributor, PrincipalID: f.p.ObjectID, PrincipalType: "User"}); err != nil {
					return err
				}
				for {
					if d, _ := warm.Authorize(ctx, f.p, act, target); d.Allowed {
						break
					}
					if time.Since(start) > 5*time.Second {
						return fmt.Errorf("assignment not effective after 5 s")
					}
					time.Sleep(5 * time.Millisecond)
				}
				propagation = append(propagation, time.Since(start))
			}
		}
		f.close()
	}
	return report(out, extra, rows, propagation, load0, procstat.LoadAvg())
}

func report(out string, extra int, rows []measure, prop []time.Duration, load0, load1 string) error {
	var b strings.Builder
	now := time.Now().UTC()
	fmt.Fprintf(&b, "# Authorization benchmark — %s\n\n", now.Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "Command: `go run ./bench/authz -assignments %d`\n\nMachine:\n\n", extra)
	fmt.Fprintf(&b, "- CPUs: %d\n- Go: %s (%s/%s)\n- Load average (1/5/15 min): %s at start, %s at end\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, load0, load1)
	var l float64
	fmt.Sscanf(load0, "%f", &l)
	if l > float64(runtime.NumCPU()) {
		fmt.Fprintf(&b, "**Taken under load:** the load average exceeded the %d CPUs (other work shared the machine); wall times are inflated, the CPU column less so.\n\n", runtime.NumCPU())
	}
	fmt.Fprintf(&b, "Setup: the real SQLite catalog and `rbac.Authorizer` in one process. The measured principal is a user with Log Analytics Reader on the workspace, Monitoring Metrics Publisher on a DCR, and (through a group) Reader on one table. The catalog holds 10, then %d, role assignments of other principals at the workspace, its resource group and its tables. *Warm* uses the default 1 s assignment cache (what the server runs); *cold* disables the cache, so every call reads the assignments (and group memberships) from SQLite.\n\n", extra)
	b.WriteString("| Path | Assignments in catalog | Calls | Wall per call | p99 | CPU per call |\n|---|---|---|---|---|---|\n")
	for _, m := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %v | %v | %v |\n", m.name, m.catalogN, m.calls, m.perCall.Round(100*time.Nanosecond), m.p99.Round(100*time.Nanosecond), m.cpu.Round(100*time.Nanosecond))
	}
	var maxProp time.Duration
	for _, p := range prop {
		maxProp = max(maxProp, p)
	}
	fmt.Fprintf(&b, "\nAssignment change → effective (default cache, no Invalidate; %d trials with %d assignments): max %v (target ≤ 1 s). The server also calls Invalidate after every Microsoft.Authorization write, which makes it immediate.\n\n", len(prop), extra, maxProp.Round(time.Millisecond))
	b.WriteString("## Against the targets\n\n")
	b.WriteString("- **Overhead ≤ 5 % of the query and ingestion benchmarks.** `bench/results/query-2026-11-26.md` measured 50–472 ms of server CPU per query (the cheapest, a bloom-filtered `has` search, 50 ms) and `bench/results/ingest-2026-11-26.md` 44.6 s of server CPU per million rows, i.e. 22 ms per 500-row request. The warm per-request authorization CPU above is divided by those to give the overhead; see the computed column below.\n")
	for _, m := range rows {
		if !strings.Contains(m.name, "warm") {
			continue
		}
		base, what := 50*time.Millisecond, "the cheapest query (50 ms CPU)"
		if strings.HasPrefix(m.name, "ingest") {
			base, what = 22*time.Millisecond, "one 500-row ingestion request (22 ms CPU)"
		}
		fmt.Fprintf(&b, "  - %s, %d assignments: %.4f %% of %s\n", m.name, m.catalogN, 100*float64(m.cpu)/float64(base), what)
	}
	b.WriteString("- **10,000 role assignments do not slow `authorize()` measurably:** compare the rows with 10 and with many assignments (the catalog reads assignments by principal ID through an index, and the authorizer caches them per principal).\n")
	b.WriteString("- **A role assignment change takes effect within 1 s:** see the propagation line.\n")
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
