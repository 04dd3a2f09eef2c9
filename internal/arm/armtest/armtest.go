// Package armtest is the authorization matrix that internal/arm's and
// internal/server's tests run over every guarded route: each route is
// called without a token, with tokens that must be refused, and as Reader,
// Contributor and Owner assigned at the route's scope and at a sibling
// scope, and the answer must match what the route's action allows.
//
// It is imported by tests only, never by a production package, so no test
// code reaches the binaries.
package armtest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// Class is who among Reader, Contributor and Owner may call a route,
// derived from its action.
type Class int

const (
	ClassRead       Class = iota + 1 // Reader, Contributor, Owner
	ClassWrite                       // Contributor, Owner
	ClassAuthzWrite                  // Owner only (Microsoft.Authorization writes)
	ClassData                        // none of them (data actions need dataActions)
)

// Classify returns the class of an action, or false when the matrix has no
// rule for it (a test failure: every guarded action needs one).
func Classify(act rbac.Action) (Class, bool) {
	l := strings.ToLower(string(act))
	switch {
	case act.IsData():
		return ClassData, true
	case strings.HasPrefix(l, "microsoft.authorization/") && (strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete")):
		return ClassAuthzWrite, true
	case strings.HasSuffix(l, "/read"):
		return ClassRead, true
	case strings.HasSuffix(l, "/write") || strings.HasSuffix(l, "/delete") || strings.HasSuffix(l, "/action"):
		return ClassWrite, true
	}
	return 0, false
}

// Role is one built-in role the matrix assigns and the classes it may call.
type Role struct {
	Name, ID string
	Allowed  map[Class]bool
}

// Roles returns Reader, Contributor and Owner, in that order: the matrix's
// principal i holds Roles()[i].
func Roles() []Role {
	return []Role{
		{"Reader", rbac.RoleReader, map[Class]bool{ClassRead: true}},
		{"Contributor", rbac.RoleContributor, map[Class]bool{ClassRead: true, ClassWrite: true}},
		{"Owner", rbac.RoleOwner, map[Class]bool{ClassRead: true, ClassWrite: true, ClassAuthzWrite: true}},
	}
}

// SiblingScope returns a scope next to s (same parent, other last
// segment), or false for the root.
func SiblingScope(s rbac.Scope) (rbac.Scope, bool) {
	str := strings.TrimRight(string(s), "/")
	i := strings.LastIndexByte(str, '/')
	if str == "" || i < 0 {
		return "", false
	}
	last := str[i+1:]
	if catalog.IsGUID(last) {
		return rbac.Scope(str[:i+1] + "00000000-0000-4000-8000-0000000000ff"), true
	}
	return rbac.Scope(str[:i+1] + last + "-sibling"), true
}

// Fill returns the path of a route pattern with its wildcards filled from
// values ("x-<name>" for a wildcard values lacks), and the route's scope for
// that path.
func Fill(rt api.Route, values map[string]string) (string, rbac.Scope) {
	segs := strings.Split(rt.Pattern, "/")
	req := httptest.NewRequest(rt.Method, "/", nil)
	for i, s := range segs {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := strings.TrimSuffix(strings.Trim(s, "{}"), "...")
			v, ok := values[name]
			if !ok {
				v = "x-" + strings.ToLower(name)
			}
			segs[i] = v
			req.SetPathValue(name, v)
		}
	}
	path := strings.Join(segs, "/")
	req.URL.Path = path
	var scope rbac.Scope
	if rt.Scope != nil {
		scope = rt.Scope(req)
	}
	return path, scope
}

// Credential is a named bearer token ("" sends none).
type Credential struct {
	Who, Token string
}

// AssignmentStore is what the matrix needs of the catalog.
type AssignmentStore interface {
	CreateRoleAssignment(ctx context.Context, a rbac.RoleAssignment) error
	DeleteRoleAssignment(ctx context.Context, id string) error
}

// Assigner returns a Matrix.Assign that gives principal i Roles()[i] at a
// scope in store, and calls changed (when not nil) after every change, for
// an authorizer that caches.
func Assigner(t *testing.T, store AssignmentStore, principalIDs []string, changed func()) func(rbac.Scope) func() {
	return func(scope rbac.Scope) func() {
		ctx := context.Background()
		var ids []string
		for i, r := range Roles() {
			name := fmt.Sprintf("99999999-0000-4000-8000-%012d", i)
			ra := rbac.RoleAssignment{ID: strings.TrimRight(string(scope), "/") + "/providers/Microsoft.Authorization/roleAssignments/" + name,
				Name: name, Scope: scope, RoleDefinitionID: r.ID, PrincipalID: principalIDs[i], PrincipalType: "ServicePrincipal"}
			if err := store.CreateRoleAssignment(ctx, ra); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ra.ID)
		}
		if changed != nil {
			changed()
		}
		return func() {
			for _, id := range ids {
				if err := store.DeleteRoleAssignment(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			if changed != nil {
				changed()
			}
		}
	}
}

// Caller returns a Matrix.Call that sends the route's method to base+path
// with an api-version, a "{}" JSON body and the bearer token, and returns
// the status and x-ms-error-code.
func Caller(t *testing.T, client *http.Client, base string) func(rt api.Route, path, tok string) (int, string) {
	return func(rt api.Route, path, tok string) (int, string) {
		req, err := http.NewRequest(rt.Method, base+path+"?api-version=2022-10-01", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("x-ms-error-code")
	}
}

// Matrix is one authorization matrix run.
type Matrix struct {
	// Routes are the guarded routes; each needs an action the matrix
	// classifies and a scope.
	Routes []api.Route
	// Values fill the patterns' wildcards (see Fill).
	Values map[string]string
	// Token returns a valid token of principal i (holding Roles()[i]
	// while assigned) for an audience.
	Token func(i int, audience string) string
	// Refused returns the tokens that must get 401 on a route besides
	// none and a garbage token: another audience's, an untrusted issuer's.
	Refused func(rt api.Route) []Credential
	// Call sends one request (see Caller).
	Call func(rt api.Route, path, tok string) (status int, code string)
	// Assign gives principal i Roles()[i] at a scope and returns the undo
	// (see Assigner).
	Assign func(scope rbac.Scope) (undo func())
}

// Denied reports whether an answer is an authentication or authorization
// refusal (401, or 403 AuthorizationFailed); any other answer means the
// call got past the guard.
func Denied(status int, code string) bool {
	return status == http.StatusUnauthorized || (status == http.StatusForbidden && code == "AuthorizationFailed")
}

// Run checks every route and returns the number of checks made. Routes run
// grouped by scope, DELETEs last, so that no route is called after its
// resource went away; a role is assigned once per group and scope.
func (m Matrix) Run(t *testing.T) int {
	t.Helper()
	type item struct {
		rt    api.Route
		path  string
		scope rbac.Scope
	}
	var items []item
	for _, rt := range m.Routes {
		if rt.Audience == "" || rt.Action == "" || rt.Scope == nil || rt.Handler == nil {
			t.Errorf("route %s %s has no authorization rule (audience, action, scope, handler)", rt.Method, rt.Pattern)
			continue
		}
		if _, ok := Classify(rt.Action); !ok {
			t.Errorf("route %s %s: action %q has no rule in the authorization matrix", rt.Method, rt.Pattern, rt.Action)
			continue
		}
		path, scope := Fill(rt, m.Values)
		items = append(items, item{rt, path, scope})
	}
	slices.SortStableFunc(items, func(a, b item) int {
		if d := boolCmp(a.rt.Method == http.MethodDelete, b.rt.Method == http.MethodDelete); d != 0 {
			return d
		}
		return strings.Compare(string(a.scope), string(b.scope))
	})
	checked := 0
	for _, it := range items {
		creds := append([]Credential{{"anonymous", ""}, {"garbage token", "not.a.token"}}, m.Refused(it.rt)...)
		for _, c := range creds {
			if st, code := m.Call(it.rt, it.path, c.Token); st != http.StatusUnauthorized {
				t.Errorf("%s %s as %s: got %d %s; want 401", it.rt.Method, it.path, c.Who, st, code)
			}
			checked++
		}
	}
	roles := Roles()
	for start := 0; start < len(items); {
		end := start + 1
		for end < len(items) && items[end].scope == items[start].scope &&
			(items[end].rt.Method == http.MethodDelete) == (items[start].rt.Method == http.MethodDelete) {
			end++
		}
		group := items[start:end]
		start = end
		for _, mode := range []string{"sibling scope", "right scope"} {
			target := group[0].scope
			if mode == "sibling scope" {
				sib, ok := SiblingScope(target)
				if !ok {
					continue // the root has no sibling
				}
				target = sib
			}
			undo := m.Assign(target)
			for _, it := range group {
				class, _ := Classify(it.rt.Action)
				for i, r := range roles {
					want := mode == "right scope" && r.Allowed[class]
					st, code := m.Call(it.rt, it.path, m.Token(i, it.rt.Audience))
					if got := !Denied(st, code); got != want {
						t.Errorf("%s %s (%s at %s) as %s at the %s: got %d %s; want allowed=%v",
							it.rt.Method, it.rt.Pattern, it.rt.Action, it.scope, r.Name, mode, st, code, want)
					}
					checked++
				}
			}
			undo()
		}
	}
	return checked
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
