package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// testClock is the alert service's injected clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// env is a real Custos stack in a temporary directory: platform key,
// SQLite catalog, encrypted store, engine, token service, RBAC and the
// alert service, with the alert and token routes served over HTTPS on
// loopback behind the same authenticate-then-authorize step the server uses.
type env struct {
	t      *testing.T
	dir    string
	clock  *testClock
	keys   *crypt.PlatformKey
	cat    *catalog.DB
	st     *store.DB
	eng    *engine.Engine
	tokens *identity.TokenService
	authz  *rbac.Authorizer
	boot   catalog.Bootstrap
	svc    *Service
	srv    *httptest.Server
	admin  string // management token of an Owner at "/"
	opts   Options
}

type envConfig struct {
	webhookRoots *x509.CertPool
	smtp         SMTPOptions
	retryDelays  []time.Duration
	maxSpread    time.Duration
}

func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, dir: t.TempDir(), clock: &testClock{t: time.Now().UTC().Truncate(time.Minute).Add(-30 * time.Minute)}}
	var err error
	if e.keys, err = crypt.OpenPlatformKey(filepath.Join(e.dir, "platform.key")); err != nil {
		t.Fatal(err)
	}
	if e.cat, err = catalog.Open(ctx, catalog.Options{Path: filepath.Join(e.dir, "catalog.db"), Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if e.boot, err = e.cat.Bootstrap(ctx, catalog.BootstrapOptions{}); err != nil {
		t.Fatal(err)
	}
	if e.st, err = store.Open(store.Options{Dir: filepath.Join(e.dir, "store"), Keys: e.keys}); err != nil {
		t.Fatal(err)
	}
	tables, err := e.cat.AllTables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range tables {
		if err := e.st.EnsureTable(ctx, tables[i].Ref(), tables[i].StoreSchema(), tables[i].EffectiveTotalRetentionInDays()); err != nil {
			t.Fatal(err)
		}
	}
	e.eng = engine.New(engine.Options{})
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.StartTLS()
	if e.tokens, err = identity.NewTokenService(identity.TokenServiceOptions{Store: e.cat, Keys: e.keys, Issuer: e.srv.URL,
		Tenants: identity.StaticTenants{e.boot.Tenant.ID}}); err != nil {
		t.Fatal(err)
	}
	e.authz = rbac.New(rbac.Options{Store: e.cat, CacheTTL: -1})
	e.opts = Options{
		Catalog: e.cat, Engine: e.eng, Source: e.st, Authorizer: e.authz, Principals: e.cat, Sealer: e.keys, Tokens: e.tokens,
		Endpoint: e.srv.URL, Now: e.clock.Now, MaxSpread: -1,
		Webhook: WebhookOptions{RootCAs: cfg.webhookRoots, RetryDelays: cfg.retryDelays},
		SMTP:    cfg.smtp,
	}
	if cfg.maxSpread != 0 {
		e.opts.MaxSpread = cfg.maxSpread
	}
	e.openService()
	e.srv.Config.Handler = e.handler()
	t.Cleanup(func() {
		e.srv.Close()
		if e.svc != nil {
			e.svc.Close()
		}
		e.st.Close()
		e.cat.Close()
	})

	sp, _, err := e.tokens.CreateServicePrincipal(ctx, e.boot.Tenant.ID, "alert-test-admin")
	if err != nil {
		t.Fatal(err)
	}
	e.grant(sp.ObjectID, rbac.RoleOwner, "/")
	if e.admin, _, err = e.tokens.IssueToken(ctx, sp, identity.AudienceManagement); err != nil {
		t.Fatal(err)
	}
	return e
}

// openService (re)creates the alert service on the same catalog and store,
// as a server restart does.
func (e *env) openService() {
	svc, err := New(e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := svc.reloadAll(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
}

// handler serves the alert routes and the token service like the server:
// authenticate for the route's audience, then one Authorize call.
func (e *env) handler() http.Handler {
	mux := http.NewServeMux()
	tok := e.tokens.Handler()
	for _, p := range e.tokens.Patterns() {
		mux.Handle(p, tok)
	}
	for _, rt := range e.svc.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			p, err := e.tokens.Authenticate(r, rt.Audience)
			if err != nil {
				api.WriteError(w, r, nil, api.Errorf(http.StatusUnauthorized, "AuthenticationFailed", "%v", err))
				return
			}
			r = r.WithContext(api.WithPrincipal(r.Context(), p))
			dec, err := e.authz.Authorize(r.Context(), p, rt.Action, rt.Scope(r))
			if err != nil || !dec.Allowed {
				api.WriteError(w, r, nil, api.Errorf(http.StatusForbidden, "AuthorizationFailed", "denied %s", rt.Action))
				return
			}
			// Dispatch to the current service, so a restart in a test
			// is seen by the HTTP side too.
			for _, cur := range e.svc.Routes() {
				if cur.Method == rt.Method && cur.Pattern == rt.Pattern {
					cur.Handler(w, r, dec)
					return
				}
			}
		})
	}
	return mux
}

func (e *env) grant(principalID, role, scope string) string {
	e.t.Helper()
	name := fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, time.Now().UnixNano()&0xffffffffffff)
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + name
	if scope == "/" {
		id = "/providers/Microsoft.Authorization/roleAssignments/" + name
	}
	if err := e.cat.CreateRoleAssignment(context.Background(), rbac.RoleAssignment{
		ID: id, Name: name, Scope: rbac.Scope(scope), RoleDefinitionID: role, PrincipalID: principalID,
		PrincipalType: string(identity.KindServicePrincipal), Created: time.Now().UTC(),
	}); err != nil {
		e.t.Fatal(err)
	}
	e.authz.Invalidate()
	return id
}

func (e *env) revoke(id string) {
	e.t.Helper()
	if err := e.cat.DeleteRoleAssignment(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
	e.authz.Invalidate()
}

func (e *env) wsID() string { return e.boot.Workspace.ID() }

func (e *env) sub() string { return e.boot.Subscription.ID }

func (e *env) rg() string { return e.boot.ResourceGroup.Name }

func (e *env) ruleID(name string) string {
	return catalog.AlertResourceID(catalog.TypeScheduledQueryRule, e.sub(), e.rg(), name)
}

func (e *env) groupID(name string) string {
	return catalog.AlertResourceID(catalog.TypeActionGroup, e.sub(), e.rg(), name)
}

// call sends an ARM request as the admin and decodes the JSON answer.
func (e *env) call(method, path, body string) (int, map[string]any, string) {
	return e.callAs(e.admin, method, path, body)
}

func (e *env) callAs(token, method, path, body string) (int, map[string]any, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m, string(raw)
}

// perfRow is one Perf sample.
type perfRow struct {
	at       time.Time
	computer string
	value    float64
}

// ingest appends Perf rows through the store's append path (WAL, fsync).
func (e *env) ingest(rows ...perfRow) {
	e.t.Helper()
	e.ingestInto(e.boot.Workspace.CustomerID, rows...)
}

// ingestInto appends Perf rows to the workspace with customer ID ws.
func (e *env) ingestInto(ws string, rows ...perfRow) {
	e.t.Helper()
	ctx := context.Background()
	app, err := e.st.Appender(ctx, store.TableRef{WorkspaceID: ws, Table: "Perf"})
	if err != nil {
		e.t.Fatal(err)
	}
	b := &store.Batch{
		Schema: store.Schema{{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Computer", Type: store.TypeString},
			{Name: "ObjectName", Type: store.TypeString}, {Name: "CounterName", Type: store.TypeString}, {Name: "CounterValue", Type: store.TypeReal}},
		Cols: []*store.Vector{{Type: store.TypeDatetime}, {Type: store.TypeString}, {Type: store.TypeString}, {Type: store.TypeString}, {Type: store.TypeReal}},
	}
	for _, r := range rows {
		b.Cols[0].Int = append(b.Cols[0].Int, store.TicksFromTime(r.at))
		b.Cols[1].Str = append(b.Cols[1].Str, r.computer)
		b.Cols[2].Str = append(b.Cols[2].Str, "Processor")
		b.Cols[3].Str = append(b.Cols[3].Str, "% Processor Time")
		b.Cols[4].Real = append(b.Cols[4].Real, r.value)
		b.Len++
	}
	if err := app.Append(b); err != nil {
		e.t.Fatal(err)
	}
	if err := app.Commit(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// tick advances the clock to t and runs due evaluations and deliveries.
func (e *env) tick(t time.Time) {
	e.t.Helper()
	e.clock.Set(t)
	if err := e.svc.Tick(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.DeliverDue(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// ruleBody is a scheduled query rule PUT body.
func (e *env) ruleBody(query, agg, measure, op string, threshold float64, dims string, extra string, groups ...string) string {
	ag := "[]"
	if len(groups) > 0 {
		b, _ := json.Marshal(groups)
		ag = string(b)
	}
	if dims == "" {
		dims = "[]"
	}
	mm := ""
	if measure != "" {
		mm = fmt.Sprintf(`"metricMeasureColumn":%q,`, measure)
	}
	return fmt.Sprintf(`{"location":"eastus","kind":"LogAlert","identity":{"type":"SystemAssigned"},"properties":{
		"displayName":"test rule","description":"cpu","severity":2,"enabled":true,"scopes":[%q],
		"evaluationFrequency":"PT1M","windowSize":"PT1M",
		"criteria":{"allOf":[{"query":%q,"timeAggregation":%q,%s"dimensions":%s,"operator":%q,"threshold":%v,
			"failingPeriods":{"numberOfEvaluationPeriods":1,"minFailingPeriodsToAlert":1}}]},
		%s
		"actions":{"actionGroups":%s,"customProperties":{"team":"ops"}}}}`,
		e.wsID(), query, agg, mm, dims, op, threshold, extra, ag)
}

// putRule creates a rule and grants its identity Log Analytics Reader on
// the workspace; it returns the identity's principal ID and assignment ID.
func (e *env) putRule(name, body string, grant bool) (string, string) {
	e.t.Helper()
	code, m, raw := e.call("PUT", e.ruleID(name)+"?api-version=2023-12-01", body)
	if code != 201 && code != 200 {
		e.t.Fatalf("PUT rule: %d %s", code, raw)
	}
	ident, _ := m["identity"].(map[string]any)
	pid, _ := ident["principalId"].(string)
	if pid == "" {
		e.t.Fatalf("rule has no principalId: %s", raw)
	}
	ra := ""
	if grant {
		ra = e.grant(pid, rbac.RoleLogAnalyticsReader, e.wsID())
	}
	return pid, ra
}

// tlsRoots returns a pool trusting an httptest TLS server.
func tlsRoots(srv *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return pool
}

var _ = tls.VersionTLS12

func alertFilter(e *env) catalog.AlertFilter { return catalog.AlertFilter{SubscriptionID: e.sub()} }
