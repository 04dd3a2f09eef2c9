package activity_test

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/activity"
	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

type env struct {
	dir  string
	cat  *catalog.DB
	key  *crypt.PlatformKey
	path string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "catalog.db")
	cat, err := catalog.Open(context.Background(), catalog.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	key, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, cat: cat, key: key, path: path}
}

func (e *env) log(t *testing.T, opts activity.Options) *activity.Log {
	t.Helper()
	opts.Store, opts.Keys = e.cat, e.key
	l, err := activity.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (e *env) record(t *testing.T, l *activity.Log, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		_, err := l.Record(context.Background(), activity.Record{
			OperationName: "Microsoft.OperationalInsights/workspaces/write", Category: activity.CategoryAdministrative,
			Status: activity.StatusSucceeded, HTTPStatus: 200, Caller: "caller", ResourceID: fmt.Sprintf("/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w%d", i),
			Properties: map[string]string{"i": fmt.Sprint(i)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// tamper runs SQL on the catalog file directly, as an attacker with file access would.
func (e *env) tamper(t *testing.T, query string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}

func verifyFails(t *testing.T, e *env, seq int64, frag string) {
	t.Helper()
	_, err := activity.Verify(context.Background(), e.cat, e.key)
	var ce *activity.ChainError
	if !errors.As(err, &ce) || !errors.Is(err, activity.ErrTampered) {
		t.Fatalf("Verify = %v; want a *ChainError", err)
	}
	if ce.Seq != seq || !strings.Contains(ce.Msg, frag) {
		t.Fatalf("Verify = %v; want record %d (%s)", err, seq, frag)
	}
}

func TestChainVerifies(t *testing.T) {
	e := newEnv(t)
	rep, err := activity.Verify(context.Background(), e.cat, e.key)
	if err != nil || rep.Records != 0 {
		t.Fatalf("empty log: %+v %v", rep, err)
	}
	l := e.log(t, activity.Options{CheckpointEvery: 4, FilePath: filepath.Join(e.dir, "activity.jsonl")})
	e.record(t, l, 10)
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err = activity.Verify(context.Background(), e.cat, e.key)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 10 || rep.LastSeq != 10 || rep.Checkpoints < 3 {
		t.Fatalf("report %+v", rep)
	}
	// The file sink has the same records.
	f, err := os.Open(filepath.Join(e.dir, "activity.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("file sink mode %v; want 0600", fi.Mode().Perm())
	}
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		if !strings.Contains(sc.Text(), `"operationName":"Microsoft.OperationalInsights/workspaces/write"`) {
			t.Fatalf("line %d: %s", n, sc.Text())
		}
	}
	if n != 10 {
		t.Fatalf("file sink has %d lines; want 10", n)
	}
	// Reopening continues the chain with the same signing key.
	l2 := e.log(t, activity.Options{})
	e.record(t, l2, 2)
	l2.Close(context.Background())
	if rep, err := activity.Verify(context.Background(), e.cat, e.key); err != nil || rep.Records != 12 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
	keys, _ := e.cat.ActivityKeys(context.Background())
	if len(keys) != 1 {
		t.Fatalf("%d signing keys; want 1", len(keys))
	}
}

func TestTamperDetected(t *testing.T) {
	setup := func(t *testing.T) *env {
		e := newEnv(t)
		l := e.log(t, activity.Options{CheckpointEvery: 1000, CheckpointInterval: time.Hour})
		e.record(t, l, 6)
		if err := l.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		return e
	}
	t.Run("modified", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `UPDATE activity_log SET record = replace(record, '"caller":"caller"', '"caller":"someone-else"') WHERE seq = 3`)
		verifyFails(t, e, 3, "modified")
	})
	t.Run("modified and rehashed", func(t *testing.T) {
		// Rewriting the hash of the record breaks the next record's link.
		e := setup(t)
		e.tamper(t, `UPDATE activity_log SET record = replace(record, 'w2"', 'x2"'), hash = 'ab' || substr(hash, 3) WHERE seq = 3`)
		verifyFails(t, e, 3, "modified")
	})
	t.Run("deleted", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `DELETE FROM activity_log WHERE seq = 4`)
		verifyFails(t, e, 4, "deleted")
	})
	t.Run("deleted and renumbered", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `DELETE FROM activity_log WHERE seq = 4`)
		e.tamper(t, `UPDATE activity_log SET seq = seq - 1 WHERE seq > 4`)
		verifyFails(t, e, 4, "broken")
	})
	t.Run("reordered", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `UPDATE activity_log SET seq = -seq WHERE seq IN (2, 3)`)
		e.tamper(t, `UPDATE activity_log SET seq = 3 WHERE seq = -2`)
		e.tamper(t, `UPDATE activity_log SET seq = 2 WHERE seq = -3`)
		verifyFails(t, e, 2, "")
	})
	t.Run("tail truncated", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `DELETE FROM activity_log WHERE seq > 4`)
		verifyFails(t, e, 5, "missing")
	})
	t.Run("forged checkpoint", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `UPDATE activity_checkpoints SET hash = 'x' || substr(hash, 2) WHERE seq = 6`)
		verifyFails(t, e, 6, "signature")
	})
	t.Run("replaced public key", func(t *testing.T) {
		e := setup(t)
		e.tamper(t, `UPDATE activity_keys SET public_key = zeroblob(32)`)
		verifyFails(t, e, 0, "does not match")
	})
}

func TestChangedPropertiesRemovesSecrets(t *testing.T) {
	got := activity.ChangedProperties([]byte(`{"location":"westeurope","properties":{"retentionInDays":60,"clientSecret":"hunter2",
	 "nested":{"password":"p","keep":1},"sharedKeys":{"primarySharedKey":"k"}},"tags":{"a":"b"}}`))
	s := fmt.Sprint(got)
	if strings.Contains(s, "hunter2") || strings.Contains(s, `"p"`) || strings.Contains(s, `"k"`) {
		t.Fatalf("secret leaked: %v", got)
	}
	if got["properties.retentionInDays"] != "60" || got["location"] != `"westeurope"` || got["properties.clientSecret"] != "REDACTED" ||
		got["properties.nested"] != `{"keep":1,"password":"REDACTED"}` {
		t.Fatalf("got %v", got)
	}
	if activity.ChangedProperties([]byte("not json")) != nil {
		t.Fatal("non-JSON body gave properties")
	}
}

// Purge and deleteData bodies carry the values being removed; the activity
// chain cannot be purged, so it keeps columns and operators only.
func TestChangedPropertiesRedactsFilterValues(t *testing.T) {
	got := activity.ChangedProperties([]byte(`{"table":"T_CL","filters":[{"column":"Email","operator":"==","value":"alice@example.com"},
	 {"column":"Ip","operator":"in","value":["10.0.0.1"]}],"identity":{"clientSecret":"s3"}}`))
	s := fmt.Sprint(got)
	for _, leak := range []string{"alice@example.com", "10.0.0.1", "s3"} {
		if strings.Contains(s, leak) {
			t.Fatalf("%q leaked: %v", leak, got)
		}
	}
	want := `[{"column":"Email","operator":"==","value":"REDACTED"},{"column":"Ip","operator":"in","value":"REDACTED"}]`
	if got["filters"] != want || got["table"] != `"T_CL"` {
		t.Fatalf("got %v; want filters %s", got, want)
	}
}

func TestHooks(t *testing.T) {
	e := newEnv(t)
	invalidated := 0
	l := e.log(t, activity.Options{OnAuthorizationChange: func() { invalidated++ }})
	const ws = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"
	p := identity.Principal{ObjectID: "11111111-1111-4111-8111-111111111111", Kind: identity.KindServicePrincipal, Name: "ci"}
	routes := l.WrapRoutes([]api.Route{
		{Method: "PUT", Pattern: "/ws", Action: rbac.ActionWorkspaceWrite, Scope: func(*http.Request) rbac.Scope { return ws },
			Handler: func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
				var v map[string]any
				if err := api.DecodeJSON(r, &v, 0); err != nil {
					api.WriteError(w, r, nil, err)
					return
				}
				w.WriteHeader(201)
			}},
		{Method: "PUT", Pattern: "/ra", Action: rbac.ActionRoleAssignmentWrite, Scope: func(*http.Request) rbac.Scope { return ws },
			Handler: func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) { w.WriteHeader(201) }},
		{Method: "GET", Pattern: "/ws", Action: rbac.ActionWorkspaceRead, Scope: func(*http.Request) rbac.Scope { return ws },
			Handler: func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) { w.WriteHeader(200) }},
	})
	authz := l.AuditAuthorizer(rbac.New(rbac.Options{Store: e.cat}))
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") == "" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			ctx := api.WithPrincipal(api.WithCorrelationID(r.Context(), "corr-1"), p)
			r = r.WithContext(ctx)
			if r.Header.Get("X-Deny") != "" {
				if d, _ := authz.Authorize(ctx, p, rt.Action, rt.Scope(r)); !d.Allowed {
					w.WriteHeader(http.StatusForbidden)
					return
				}
			}
			rt.Handler(w, r, rbac.Decision{Allowed: true})
		})
	}
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.WriteHeader(http.StatusUnauthorized)
	})
	srv := httptest.NewTLSServer(l.Middleware(mux))
	defer srv.Close()
	do := func(method, path, body string, hdr ...string) int {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	do("PUT", "/ws", `{"location":"x","properties":{"retentionInDays":31,"apiKey":"s3cret"}}`, "Authorization", "Bearer x")
	do("PUT", "/ws", `{"bad json`, "Authorization", "Bearer x")
	do("PUT", "/ra", `{}`, "Authorization", "Bearer x")
	do("GET", "/ws", "", "Authorization", "Bearer x")
	do("GET", "/ws", "", "Authorization", "Bearer x", "X-Deny", "1")
	do("GET", "/ws", "")
	do("POST", "/tenant/oauth2/v2.0/token", "grant_type=client_credentials&client_id=app-1&client_secret=wrong", "Content-Type", "application/x-www-form-urlencoded")

	entries, err := e.cat.ActivityEntries(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, en := range entries {
		lines = append(lines, string(en.Record))
	}
	all := strings.Join(lines, "\n")
	if len(entries) != 6 {
		t.Fatalf("%d records; want 6:\n%s", len(entries), all)
	}
	if strings.Contains(all, "s3cret") || strings.Contains(all, "wrong") {
		t.Fatalf("secret in the activity log:\n%s", all)
	}
	for i, want := range []string{
		`"operationName":"Microsoft.OperationalInsights/workspaces/write","category":"Administrative","level":"Informational","status":"Succeeded","httpStatus":201,"caller":"11111111-1111-4111-8111-111111111111","callerType":"ServicePrincipal","callerName":"ci","callerIpAddress":"127.0.0.1","correlationId":"corr-1","resourceId":"` + ws + `"`,
		`"status":"Failed","subStatus":"Bad Request","httpStatus":400`,
		`"operationName":"Microsoft.Authorization/roleAssignments/write"`,
		`"operationName":"Microsoft.OperationalInsights/workspaces/read","category":"Security","level":"Warning","status":"Failed","subStatus":"Forbidden","httpStatus":403`,
		`"operationName":"Microsoft.Custos/signIn/action","category":"Security","level":"Warning","status":"Failed","subStatus":"Unauthorized","httpStatus":401`,
		`"caller":"app-1","callerType":"ServicePrincipal"`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("record %d = %s; want it to contain %s", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], `"properties.apiKey":"REDACTED"`) || !strings.Contains(lines[0], `"properties.retentionInDays":"31"`) {
		t.Errorf("changed properties: %s", lines[0])
	}
	if invalidated != 1 {
		t.Errorf("OnAuthorizationChange called %d times; want 1", invalidated)
	}
	if _, err := activity.Verify(context.Background(), e.cat, e.key); err != nil {
		t.Fatal(err)
	}
}

func TestForwardToAzureActivity(t *testing.T) {
	e := newEnv(t)
	st, err := store.Open(store.Options{Dir: filepath.Join(e.dir, "store"), Keys: e.key, DisableBackground: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const wsID = "00000000-0000-4000-8000-0000000000aa"
	ref := store.TableRef{WorkspaceID: wsID, Table: activity.AzureActivityTable}
	if err := st.EnsureTable(context.Background(), ref, activity.AzureActivitySchema(), 90); err != nil {
		t.Fatal(err)
	}
	l := e.log(t, activity.Options{Forward: st, ForwardWorkspaceID: wsID})
	e.record(t, l, 3)
	q, err := st.Querier(context.Background(), ref, store.AllTime)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	it := q.Select(context.Background(), store.SelectHints{Columns: []string{"OperationName", "ResourceGroup", "SubscriptionId", "Resource"}})
	defer it.Close()
	rows := 0
	for it.Next() {
		b := it.Batch()
		for i := 0; i < b.Len; i++ {
			if b.Col("OperationName").Str[i] != "Microsoft.OperationalInsights/workspaces/write" || b.Col("ResourceGroup").Str[i] != "rg" ||
				b.Col("SubscriptionId").Str[i] != "s" || !strings.HasPrefix(b.Col("Resource").Str[i], "w") {
				t.Fatalf("row %d: %v %v %v", i, b.Col("OperationName").Str[i], b.Col("ResourceGroup").Str[i], b.Col("Resource").Str[i])
			}
			rows++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if rows != 3 {
		t.Fatalf("%d AzureActivity rows; want 3", rows)
	}
}
