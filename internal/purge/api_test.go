package purge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"custos/internal/activity"
	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/purge"
	"custos/internal/rbac"
	"custos/internal/store"
)

const (
	table    = "Pii_CL"
	armVer   = "?api-version=2022-10-01"
	purgeVer = "?api-version=2020-08-01"
	delVer   = "?api-version=2023-09-01"
)

// env is a real control plane over HTTPS on loopback: catalog, store,
// platform key, token service, authorizer, activity log and the arm routes
// with the purge service, all under one data directory.
type env struct {
	t      *testing.T
	dir    string
	cat    *catalog.DB
	key    *crypt.PlatformKey
	st     *store.DB
	ts     *identity.TokenService
	svc    *purge.Service
	act    *activity.Log
	srv    *httptest.Server
	ws     catalog.Workspace
	wsPath string
	tokens map[string]string // role name → bearer token
	closed bool
}

// seam lets a test put something between the service and the real store.
type seam func(st *store.DB) purge.Purger

func open(t *testing.T, dir string, opts purge.Options, wrap seam, start, withActivity bool) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: dir, tokens: map[string]string{}}
	var err error
	if e.cat, err = catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")}); err != nil {
		t.Fatal(err)
	}
	boot, err := e.cat.Bootstrap(ctx, catalog.BootstrapOptions{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
		SubscriptionID: "11111111-2222-3333-4444-555555555555"})
	if err != nil {
		t.Fatal(err)
	}
	e.ws = boot.Workspace
	e.wsPath = e.ws.ID()
	if e.key, err = crypt.OpenPlatformKey(filepath.Join(dir, "platform.key")); err != nil {
		t.Fatal(err)
	}
	if e.st, err = store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: e.key, DisableBackground: true}); err != nil {
		t.Fatal(err)
	}
	tables, err := e.cat.AllTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if err := e.st.EnsureTable(ctx, tb.Ref(), tb.StoreSchema(), tb.EffectiveTotalRetentionInDays()); err != nil {
			t.Fatal(err)
		}
	}
	if e.ts, err = identity.NewTokenService(identity.TokenServiceOptions{Store: e.cat, Keys: e.key, Issuer: "https://custos.test",
		Tenants: identity.StaticTenants{boot.Tenant.ID}}); err != nil {
		t.Fatal(err)
	}
	authz := rbac.New(rbac.Options{Store: e.cat, CacheTTL: -1})
	if e.act, err = activity.New(ctx, activity.Options{Store: e.cat, Keys: e.key, FilePath: filepath.Join(dir, "activity.jsonl")}); err != nil {
		t.Fatal(err)
	}
	opts.Catalog, opts.Keys = e.cat, e.key
	opts.Store = e.st
	if wrap != nil {
		opts.Store = wrap(e.st)
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = 50 * time.Millisecond
	}
	if e.svc, err = purge.New(opts); err != nil {
		t.Fatal(err)
	}
	if start {
		if err := e.svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	a := arm.New(arm.Options{Catalog: e.cat, Tables: e.st, Purge: e.svc})
	mux := http.NewServeMux()
	routes := a.Routes()
	if withActivity {
		routes = e.act.WrapRoutes(routes)
	}
	for _, rt := range routes {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := e.ts.Authenticate(r, rt.Audience)
			if err != nil {
				api.WriteError(w, r, nil, err)
				return
			}
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			d, err := authz.Authorize(r.Context(), p, rt.Action, rt.Scope(r))
			if err != nil || !d.Allowed {
				api.WriteError(w, r, nil, api.Errorf(http.StatusForbidden, "AuthorizationFailed", "The client does not have authorization to perform action '%s'.", rt.Action))
				return
			}
			rt.Handler(w, r, d)
		})
	}
	// The server's router matches literal segments case-insensitively;
	// ServeMux does not, so fold the one Azure spells in camel case.
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = strings.Replace(r.URL.Path, "/resourceGroups/", "/resourcegroups/", 1)
		mux.ServeHTTP(w, r)
	}))
	// One principal per role, assigned at the workspace (Owner at the
	// subscription).
	for _, c := range []struct{ name, role, scope string }{
		{"owner", rbac.RoleOwner, catalog.SubscriptionResourceID(boot.Subscription.ID)},
		{"purger", rbac.RoleDataPurger, e.wsPath},
		{"reader", rbac.RoleReader, e.wsPath},
		{"lacontributor", rbac.RoleLogAnalyticsContributor, e.wsPath},
	} {
		sp, _, err := e.ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "purge-test-"+c.name)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("99999999-0000-4000-8000-%012d", len(e.tokens)+1)
		if err := e.cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{
			ID:   c.scope + "/providers/Microsoft.Authorization/roleAssignments/" + name + "-" + fmt.Sprint(time.Now().UnixNano()),
			Name: name, Scope: rbac.Scope(c.scope), RoleDefinitionID: c.role, PrincipalID: sp.ObjectID, PrincipalType: "ServicePrincipal",
		}); err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.ts.IssueToken(ctx, sp, identity.AudienceManagement)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[c.name] = tok
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.closed {
		return
	}
	e.closed = true
	e.srv.Close()
	e.svc.Close()
	e.act.Close(context.Background())
	e.st.Close()
	e.cat.Close()
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (e *env) do(who, method, path, body string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.tokens[who])
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, &out.body); err != nil {
			e.t.Fatalf("%s %s: not JSON: %s", method, path, b)
		}
	}
	return out
}

func (e *env) must(who, method, path, body string, status int) resp {
	e.t.Helper()
	r := e.do(who, method, path, body)
	if r.status != status {
		e.t.Fatalf("%s %s as %s: got %d %s; want %d", method, path, who, r.status, r.raw, status)
	}
	return r
}

func (e *env) fail(who, method, path, body string, status int, code string) resp {
	e.t.Helper()
	r := e.must(who, method, path, body, status)
	if got := r.header.Get("x-ms-error-code"); got != code {
		e.t.Fatalf("%s %s as %s: got code %q (%s); want %q", method, path, who, got, r.raw, code)
	}
	return r
}

// createTable makes the custom table through the tables API.
func (e *env) createTable() {
	e.t.Helper()
	e.must("owner", "PUT", e.wsPath+"/tables/"+table+armVer, `{"properties":{"schema":{"name":"`+table+`","columns":[
		{"name":"TimeGenerated","type":"datetime"},{"name":"Email","type":"string"},{"name":"ClientIP","type":"string"},
		{"name":"Count","type":"long"},{"name":"Score","type":"real"},{"name":"Dims","type":"dynamic"}]}}}`, 201)
}

type row struct {
	at     time.Time
	email  string
	ip     string
	count  int64
	score  float64
	dims   string
	secret bool // a value the test purges
}

func (e *env) insert(rows []row) {
	e.t.Helper()
	ctx := context.Background()
	b := &store.Batch{Len: len(rows), Schema: store.Schema{
		{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Email", Type: store.TypeString}, {Name: "ClientIP", Type: store.TypeString},
		{Name: "Count", Type: store.TypeLong}, {Name: "Score", Type: store.TypeReal}, {Name: "Dims", Type: store.TypeDynamic},
	}}
	vs := []*store.Vector{{Type: store.TypeDatetime}, {Type: store.TypeString}, {Type: store.TypeString}, {Type: store.TypeLong}, {Type: store.TypeReal}, {Type: store.TypeDynamic}}
	for _, r := range rows {
		vs[0].Int = append(vs[0].Int, store.TicksFromTime(r.at))
		vs[1].Str = append(vs[1].Str, r.email)
		vs[2].Str = append(vs[2].Str, r.ip)
		vs[3].Int = append(vs[3].Int, r.count)
		vs[4].Real = append(vs[4].Real, r.score)
		vs[5].Str = append(vs[5].Str, r.dims)
	}
	b.Cols = vs
	app, err := e.st.Appender(ctx, store.TableRef{WorkspaceID: e.ws.CustomerID, Table: table})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := app.Append(b); err != nil {
		e.t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// query runs KQL through the engine over the store and returns the first
// column of the primary result as strings.
func (e *env) query(q string) []string {
	e.t.Helper()
	ctx := context.Background()
	tb, err := e.cat.TableByCustomerID(ctx, e.ws.CustomerID, table)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := engine.New(engine.Options{}).Query(ctx, engine.Request{
		Query: q, Tables: catalogTables{table: tb.QuerySchema()}, Source: e.st, WorkspaceID: e.ws.CustomerID, Now: time.Now(),
	})
	if err != nil {
		e.t.Fatalf("query %s: %v", q, err)
	}
	var out []string
	for _, b := range res.Tables[0].Batches {
		v := b.Cols[0]
		for i := 0; i < b.Len; i++ {
			switch {
			case v.Str != nil:
				out = append(out, v.Str[i])
			case v.Int != nil:
				out = append(out, fmt.Sprint(v.Int[i]))
			}
		}
	}
	return out
}

type catalogTables map[string]store.Schema

func (c catalogTables) Table(name string) (store.Schema, bool) { s, ok := c[name]; return s, ok }

// waitStatus polls a purge status path until it is not pending.
func (e *env) waitStatus(who, path string) string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		r := e.must(who, "GET", path, "", 200)
		if s, _ := r.body["status"].(string); s != "pending" && s != "InProgress" {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("operation %s still pending", path)
	return ""
}

// statusPath turns an absolute status URL into a request path.
func statusPath(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || u.Path == "" {
		t.Fatalf("bad status location %q", loc)
	}
	return u.Path + "?" + u.RawQuery
}

// submitPurge posts a purge body and waits for it to complete.
func (e *env) submitPurge(who, body string) string {
	e.t.Helper()
	r := e.must(who, "POST", e.wsPath+"/purge"+purgeVer, body, 202)
	id, _ := r.body["operationId"].(string)
	loc := r.header.Get("x-ms-status-location")
	if !catalog.IsGUID(id) || !strings.Contains(loc, "/operations/purge-"+id) || !strings.HasPrefix(loc, "https://") {
		e.t.Fatalf("purge answer: operationId %q, x-ms-status-location %q", id, loc)
	}
	if s := e.waitStatus(who, statusPath(e.t, loc)); s != "completed" {
		e.t.Fatalf("purge %s ended %s", id, s)
	}
	// The bare operationId works too.
	if s := e.must(who, "GET", e.wsPath+"/operations/"+id+purgeVer, "", 200).body["status"]; s != "completed" {
		e.t.Fatalf("status by operationId: %v", s)
	}
	return id
}

// scan returns the files under the data directory whose bytes contain needle.
func scan(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) || bytes.Contains(b, []byte(strings.ToUpper(needle))) {
			hits = append(hits, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

var t0 = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

func fixtures() []row {
	return []row{
		{t0, "keep-1@example.com", "198.51.100.1", 1, 0.1, `{"user":"u1","n":1}`, false},
		{t0.Add(time.Minute), "needle-eq-8c1f@example.com", "198.51.100.2", 2, 0.2, `{"user":"u2","n":2}`, true},
		{t0.Add(2 * time.Minute), "Needle-CI-77ab@Example.com", "198.51.100.3", 3, 0.3, `{"user":"u3","n":3}`, true},
		{t0.Add(3 * time.Minute), "keep-2@example.com", "203.0.113.201", 4, 0.4, `{"user":"u4","n":4}`, true},
		{t0.Add(4 * time.Minute), "keep-3@example.com", "203.0.113.202", 5, 0.5, `{"user":"u5","n":5}`, true},
		{t0.Add(5 * time.Minute), "keep-4@example.com", "198.51.100.6", 9001, 0.6, `{"user":"u6","n":6}`, true},
		{t0.Add(6 * time.Minute), "keep-5@example.com", "198.51.100.7", 7, 0.7, `{"user":"needle-dim-4e2d","n":7}`, true},
		{t0.Add(48 * time.Hour), "keep-6@example.com", "198.51.100.8", 8, 0.8, `{"user":"u8","n":8}`, true},
		{t0.Add(49 * time.Hour), "keep-7@example.com", "198.51.100.9", 9, 0.9, `{"user":"u9","n":9}`, false},
	}
}

// TestPurgeEndToEnd purges by each operator family through the purge API as
// a Data Purger, checks through the engine that exactly the matching rows
// are gone, and that no purged value is left in any file under the data
// directory (store parts and WAL, catalog and its WAL, activity file).
func TestPurgeEndToEnd(t *testing.T) {
	e := open(t, t.TempDir(), purge.Options{}, nil, true, false)
	e.createTable()
	rows := fixtures()
	e.insert(rows[:5])
	if err := e.st.Flush(context.Background()); err != nil { // the first rows in parts, the rest in the WAL
		t.Fatal(err)
	}
	e.insert(rows[5:])
	if got := e.query(table + " | count"); len(got) != 1 || got[0] != "9" {
		t.Fatalf("count before: %v", got)
	}

	// Reader may not purge; a bad body is a 400 before anything is queued.
	e.fail("reader", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"`+table+`","filters":[{"column":"Email","operator":"==","value":"x"}]}`, 403, "AuthorizationFailed")
	e.fail("purger", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"`+table+`","filters":[{"column":"email","operator":"==","value":"x"}]}`, 400, "InvalidParameter")
	e.fail("purger", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"`+table+`","filters":[{"column":"Email","operator":"contains","value":"x"}]}`, 400, "InvalidParameter")
	e.fail("purger", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"Nope_CL","filters":[{"column":"Email","operator":"==","value":"x"}]}`, 404, "ResourceNotFound")
	e.fail("purger", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"`+table+`","filters":[{"column":"Email","operator":"==","value":"x"}],"extra":1}`, 400, "InvalidRequestContent")

	steps := []struct {
		filters string
		gone    []string // Emails that disappear
	}{
		{`[{"column":"Email","operator":"==","value":"needle-eq-8c1f@example.com"}]`, []string{"needle-eq-8c1f@example.com"}},
		{`[{"column":"Email","operator":"=~","value":"needle-ci-77ab@example.com"}]`, []string{"Needle-CI-77ab@Example.com"}},
		{`[{"column":"ClientIP","operator":"in","value":["203.0.113.201","203.0.113.202"]}]`, []string{"keep-2@example.com", "keep-3@example.com"}},
		{`[{"column":"Count","operator":">","value":9000},{"column":"Score","operator":"<=","value":0.6}]`, []string{"keep-4@example.com"}},
		{`[{"column":"Dims","key":"user","operator":"in~","value":["NEEDLE-DIM-4E2D"]}]`, []string{"keep-5@example.com"}},
		{`[{"column":"TimeGenerated","operator":"between","value":["2024-03-03T11:00:00","2024-03-03T12:30:00"]}]`, []string{"keep-6@example.com"}},
	}
	left := map[string]bool{}
	for _, r := range rows {
		left[r.email] = true
	}
	for _, s := range steps {
		e.submitPurge("purger", `{"table":"`+table+`","filters":`+s.filters+`}`)
		for _, g := range s.gone {
			delete(left, g)
		}
		got := e.query(table + " | order by TimeGenerated asc | project Email")
		if len(got) != len(left) {
			t.Fatalf("after %s: rows %v; want %d rows", s.filters, got, len(left))
		}
		for _, em := range got {
			if !left[em] {
				t.Fatalf("after %s: %s is still there", s.filters, em)
			}
		}
	}
	if got := e.query(table + " | count"); len(got) != 1 || got[0] != "2" {
		t.Fatalf("count after: %v", got)
	}

	// Owner has "*" and may purge too; Log Analytics Reader-style reads of
	// the status work for the purger through workspaces/*/read.
	e.submitPurge("owner", `{"table":"`+table+`","filters":[{"column":"Email","operator":"==","value":"no-such-row"}]}`)

	// Nothing of the purged rows is left in any file, once the server has
	// closed its files.
	e.close()
	for _, r := range rows {
		if !r.secret {
			continue
		}
		for _, needle := range []string{r.email, r.ip, strings.Trim(r.dims, "{}")} {
			if hits := scan(t, e.dir, needle); len(hits) > 0 && needle != "" {
				t.Errorf("purged value %q found in %v", needle, hits)
			}
		}
	}
	for _, needle := range []string{"needle-eq-8c1f", "needle-ci-77ab", "needle-dim-4e2d", "203.0.113.201"} {
		if hits := scan(t, e.dir, needle); len(hits) > 0 {
			t.Errorf("purged value %q found in %v", needle, hits)
		}
	}

	// The data survives a reopen without the purged rows.
	e2 := open(t, e.dir, purge.Options{}, nil, true, false)
	if got := e2.query(table + " | order by TimeGenerated asc | project Email"); strings.Join(got, ",") != "keep-1@example.com,keep-7@example.com" {
		t.Fatalf("after reopen: %v", got)
	}
}

func purgeBody(email string) string {
	return `{"table":"` + table + `","filters":[{"column":"Email","operator":"==","value":"` + email + `"}]}`
}

// TestPurgeLocks: any management lock at, above or below the workspace
// blocks purge and delete-data with 409 ScopeLocked.
func TestPurgeLocks(t *testing.T) {
	e := open(t, t.TempDir(), purge.Options{}, nil, true, false)
	e.createTable()
	e.insert(fixtures())
	rgLock := catalog.ResourceGroupResourceID(e.ws.SubscriptionID, e.ws.ResourceGroup) + "/providers/Microsoft.Authorization/locks/keep"
	for _, lock := range []string{e.wsPath + "/providers/Microsoft.Authorization/locks/keep", rgLock} {
		for _, level := range []string{"CanNotDelete", "ReadOnly"} {
			e.must("owner", "PUT", lock+"?api-version=2020-05-01", `{"properties":{"level":"`+level+`"}}`, e.lockStatus(lock))
			e.fail("owner", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("needle-eq-8c1f@example.com"), 409, "ScopeLocked")
			e.fail("owner", "POST", e.wsPath+"/tables/"+table+"/deleteData"+delVer,
				`{"filters":[{"column":"Email","operator":"==","value":"needle-eq-8c1f@example.com"}]}`, 409, "ScopeLocked")
		}
		e.must("owner", "DELETE", lock+"?api-version=2020-05-01", "", 200)
	}
	if got := e.query(table + " | count"); got[0] != "9" {
		t.Fatalf("rows changed under a lock: %v", got)
	}
	e.submitPurge("purger", purgeBody("needle-eq-8c1f@example.com"))
	if got := e.query(table + " | count"); got[0] != "8" {
		t.Fatalf("after unlock: %v", got)
	}
}

// lockStatus is 201 for a new lock and 200 for an update.
func (e *env) lockStatus(lock string) int {
	if e.do("owner", "GET", lock+"?api-version=2020-05-01", "").status == 200 {
		return 200
	}
	return 201
}

// TestPurgeThrottle: the per-workspace limit answers 429 with Retry-After,
// separately for purge and delete-data, and counts across a restart.
func TestPurgeThrottle(t *testing.T) {
	dir := t.TempDir()
	opts := purge.Options{PurgeLimit: 2, DeleteDataLimit: 1}
	e := open(t, dir, opts, nil, true, false)
	e.createTable()
	e.must("purger", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("a"), 202)
	e.must("purger", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("b"), 202)
	r := e.fail("purger", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("c"), 429, "TooManyRequests")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	del := e.wsPath + "/tables/" + table + "/deleteData" + delVer
	e.must("lacontributor", "POST", del, `{"filters":[{"column":"Count","operator":">","value":100}]}`, 202)
	e.fail("lacontributor", "POST", del, `{"filters":[{"column":"Count","operator":">","value":100}]}`, 429, "TooManyRequests")
	e.close()
	e2 := open(t, dir, opts, nil, true, false)
	e2.fail("purger", "POST", e2.wsPath+"/purge"+purgeVer, purgeBody("d"), 429, "TooManyRequests")
}

// TestDeleteData: the delete-data API as Log Analytics Contributor, with
// ARM's asynchronous operation headers and status; Data Purger lacks its
// action.
func TestDeleteData(t *testing.T) {
	e := open(t, t.TempDir(), purge.Options{}, nil, true, false)
	e.createTable()
	e.insert(fixtures())
	path := e.wsPath + "/tables/" + table + "/deleteData" + delVer
	body := `{"filters":[{"column":"TimeGenerated","operator":"<","value":"2024-03-01T12:03:00"},{"column":"ClientIP","operator":"in","value":["198.51.100.2","198.51.100.3"]}]}`
	e.fail("purger", "POST", path, body, 403, "AuthorizationFailed")
	e.fail("reader", "POST", path, body, 403, "AuthorizationFailed")
	e.fail("lacontributor", "POST", path, `{"table":"x","filters":[]}`, 400, "InvalidRequestContent")
	e.fail("lacontributor", "POST", e.wsPath+"/tables/Nope_CL/deleteData"+delVer, body, 404, "ResourceNotFound")
	r := e.must("lacontributor", "POST", path, body, 202)
	loc := r.header.Get("Azure-AsyncOperation")
	if loc == "" || r.header.Get("Location") != loc || !strings.Contains(loc, "/providers/Microsoft.OperationalInsights/locations/") {
		t.Fatalf("headers: %v", r.header)
	}
	if s := e.waitStatus("lacontributor", statusPath(t, loc)); s != "Succeeded" {
		t.Fatalf("status %s", s)
	}
	st := e.must("lacontributor", "GET", statusPath(t, loc), "", 200)
	if st.body["name"] == "" || st.body["startTime"] == nil || st.body["endTime"] == nil {
		t.Errorf("status body %s", st.raw)
	}
	got := e.query(table + " | order by TimeGenerated asc | project Email")
	if len(got) != 7 || got[0] != "keep-1@example.com" || got[1] != "keep-2@example.com" {
		t.Fatalf("after deleteData: %v", got)
	}
	// Another subscription or location does not see the operation.
	other := strings.Replace(statusPath(t, loc), "/locations/", "/locations/x", 1)
	e.fail("lacontributor", "GET", other, "", 404, "OperationNotFound")
}

// blockingStore holds the first purge until it is cancelled, as a server
// stopped mid-purge would be.
type blockingStore struct {
	started chan struct{}
}

func (b *blockingStore) Purge(ctx context.Context, ref store.TableRef, pred store.RowPredicate) (store.PurgeResult, error) {
	close(b.started)
	<-ctx.Done()
	return store.PurgeResult{}, ctx.Err()
}

// TestPurgeResumesAfterRestart: a purge interrupted by shutdown stays
// pending and the next start completes it; the queued filters are sealed
// and erased when it completes.
func TestPurgeResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	bs := &blockingStore{started: make(chan struct{})}
	e := open(t, dir, purge.Options{}, func(*store.DB) purge.Purger { return bs }, true, false)
	e.createTable()
	e.insert(fixtures())
	r := e.must("purger", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("needle-eq-8c1f@example.com"), 202)
	id := r.body["operationId"].(string)
	select {
	case <-bs.started:
	case <-time.After(10 * time.Second):
		t.Fatal("purge did not start")
	}
	if s := e.must("purger", "GET", e.wsPath+"/operations/"+id+purgeVer, "", 200).body["status"]; s != "pending" {
		t.Fatalf("status while running: %v", s)
	}
	op, err := e.cat.PurgeOperationByID(context.Background(), id)
	if err != nil || len(op.SealedFilters) == 0 || bytes.Contains(op.SealedFilters, []byte("needle")) {
		t.Fatalf("queued filters: %v, %q", err, op.SealedFilters)
	}
	e.close() // cancels the running purge
	e2 := open(t, dir, purge.Options{}, nil, true, false)
	if s := e2.waitStatus("purger", e2.wsPath+"/operations/purge-"+id+purgeVer); s != "completed" {
		t.Fatalf("after restart: %s", s)
	}
	if got := e2.query(table + ` | where Email == "needle-eq-8c1f@example.com" | count`); got[0] != "0" {
		t.Fatalf("row still there: %v", got)
	}
	if got := e2.query(table + " | count"); got[0] != "8" {
		t.Fatalf("count: %v", got)
	}
	op, err = e2.cat.PurgeOperationByID(context.Background(), id)
	if err != nil || len(op.SealedFilters) != 0 || op.RowsPurged != 1 || op.CompletedAt.IsZero() {
		t.Fatalf("finished operation: %+v, %v", op, err)
	}
	// An unknown or foreign operation is a 404.
	e2.fail("purger", "GET", e2.wsPath+"/operations/00000000-0000-4000-8000-000000000000"+purgeVer, "", 404, "OperationNotFound")
	e2.fail("purger", "GET", e2.wsPath+"/operations/not-a-guid"+purgeVer, "", 404, "OperationNotFound")
}

// TestPurgeActivity: purge and delete-data requests are recorded in the
// activity log by the route wrapper the server applies.
func TestPurgeActivity(t *testing.T) {
	e := open(t, t.TempDir(), purge.Options{}, nil, true, true)
	e.createTable()
	e.insert(fixtures())
	e.submitPurge("purger", purgeBody("needle-eq-8c1f@example.com"))
	e.fail("reader", "POST", e.wsPath+"/purge"+purgeVer, purgeBody("x"), 403, "AuthorizationFailed")
	entries, err := e.cat.ActivityEntries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, en := range entries {
		var rec struct {
			OperationName string `json:"operationName"`
			Status        string `json:"status"`
			HTTPStatus    int    `json:"httpStatus"`
			ResourceID    string `json:"resourceId"`
		}
		if err := json.Unmarshal(en.Record, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.OperationName == string(rbac.ActionWorkspacePurge) && rec.HTTPStatus == 202 && strings.EqualFold(rec.ResourceID, e.wsPath) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no activity record for the purge among %d entries", len(entries))
	}
	// The activity record keeps the filters' columns and operators but
	// never their values: the chain cannot be purged, so a value recorded
	// there would outlive the purge.
	e.close()
	if hits := scan(t, e.dir, "needle-eq-8c1f"); len(hits) > 0 {
		t.Errorf("purge filter values found on disk after the purge in %v", hits)
	}
}

// TestPurgeQuarantinedPartFails: a part that fails its integrity check is
// quarantined by the purge, which still purges the other parts but ends
// "failed" with a message naming the part: matching rows in it are still on
// disk, so "completed" would be a false promise.
func TestPurgeQuarantinedPartFails(t *testing.T) {
	dir := t.TempDir()
	e := open(t, dir, purge.Options{}, nil, true, false)
	e.createTable()
	rows := fixtures()
	for _, half := range [][]row{rows[:5], rows[5:]} {
		e.insert(half)
		if err := e.st.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	e.close()
	var parts []string
	filepath.WalkDir(filepath.Join(dir, "store"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".part") {
			parts = append(parts, p)
		}
		return nil
	})
	if len(parts) < 2 {
		t.Fatalf("want two parts, have %v", parts)
	}
	raw, err := os.ReadFile(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the first column chunk (TimeGenerated's, which
	// the purge's filter reads), just past the header ("CSTPART\1" |
	// uvarint n | wrapped key | CRC-32C): the blocks come first, then the
	// bloom sections and the footer, and a damaged bloom section is met
	// only by term searches, not by a purge.
	if string(raw[:8]) != "CSTPART\x01" || raw[8] >= 0x80 {
		t.Fatalf("part header %q is not the single-layer format this test knows", raw[:9])
	}
	raw[8+1+int(raw[8])+4+16] ^= 0x40
	if err := os.WriteFile(parts[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	badID := strings.TrimSuffix(filepath.Base(parts[0]), ".part")

	e = open(t, dir, purge.Options{}, nil, true, false)
	r := e.must("purger", "POST", e.wsPath+"/purge"+purgeVer, `{"table":"`+table+`","filters":[{"column":"TimeGenerated","operator":">","value":"2000-01-01T00:00:00Z"}]}`, 202)
	id, _ := r.body["operationId"].(string)
	path := e.wsPath + "/operations/" + id + purgeVer
	if s := e.waitStatus("purger", path); s != "failed" {
		t.Fatalf("purge with a quarantined part ended %q; want failed", s)
	}
	st := e.must("purger", "GET", path, "", 200).body
	msg, _ := st["error"].(string)
	if !strings.Contains(msg, badID) || !strings.Contains(msg, "quarantined") {
		t.Fatalf("status %v: want a message naming quarantined part %s", st, badID)
	}
}

// fullDiskStore fails the first n purges the way the store does on a full
// disk (the error chain holds ENOSPC) and then purges through the real store.
type fullDiskStore struct {
	st    *store.DB
	mu    sync.Mutex
	n     int
	tries int
}

func (f *fullDiskStore) Purge(ctx context.Context, ref store.TableRef, pred store.RowPredicate) (store.PurgeResult, error) {
	f.mu.Lock()
	f.tries++
	full := f.tries <= f.n
	f.mu.Unlock()
	if full {
		return store.PurgeResult{}, fmt.Errorf("rewrite part: write /data/store/tmp-part: %w", syscall.ENOSPC)
	}
	return f.st.Purge(ctx, ref, pred)
}

// TestPurgeWaitsForSpace: a purge that fails for lack of space more often
// than MaxAttempts stays pending (a full disk is not counted against the
// attempts) and completes once the space returns.
func TestPurgeWaitsForSpace(t *testing.T) {
	fd := &fullDiskStore{n: purge.DefaultMaxAttempts + 2}
	e := open(t, t.TempDir(), purge.Options{RetryDelay: 10 * time.Millisecond},
		func(st *store.DB) purge.Purger { fd.st = st; return fd }, true, false)
	e.createTable()
	e.insert(fixtures())
	e.submitPurge("purger", purgeBody("needle-eq-8c1f@example.com"))
	fd.mu.Lock()
	tries := fd.tries
	fd.mu.Unlock()
	if tries != fd.n+1 {
		t.Fatalf("%d attempts, want %d failed for space and one that purged", tries, fd.n+1)
	}
	if got := e.query(table + ` | where Email == "needle-eq-8c1f@example.com" | count`); got[0] != "0" {
		t.Fatalf("row still there: %v", got)
	}
}
