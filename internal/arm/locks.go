package arm

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// Management locks (Microsoft.Authorization/locks) and their enforcement on
// the other control-plane routes.

type lockOwner struct {
	ApplicationID string `json:"applicationId"`
}

type lockProps struct {
	Level  string      `json:"level"`
	Notes  string      `json:"notes,omitempty"`
	Owners []lockOwner `json:"owners,omitempty"`
}

type lockWire struct {
	ID         string      `json:"id"`
	Type       string      `json:"type"`
	Name       string      `json:"name"`
	Properties lockProps   `json:"properties"`
	SystemData *systemData `json:"systemData,omitempty"`
}

type lockRequest struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	SystemData json.RawMessage `json:"systemData"`
	Properties *lockProps      `json:"properties"`
}

func toLockWire(l catalog.ManagementLock) lockWire {
	w := lockWire{ID: l.ID, Type: "Microsoft.Authorization/locks", Name: l.Name,
		Properties: lockProps{Level: l.Level, Notes: l.Notes}, SystemData: toSystemData(l.Audit)}
	for _, o := range l.Owners {
		w.Properties.Owners = append(w.Properties.Owners, lockOwner{ApplicationID: o})
	}
	return w
}

func lockID(scope rbac.Scope, name string) string {
	return catalog.LockResourceID(string(scope), name)
}

func (a *API) putLock(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req lockRequest
		if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
			return err
		}
		if req.Properties == nil {
			return api.Errorf(http.StatusBadRequest, "InvalidRequestContent", "The request body must have a 'properties' object with a 'level'.")
		}
		level := req.Properties.Level
		switch {
		case strings.EqualFold(level, catalog.LockCanNotDelete):
			level = catalog.LockCanNotDelete
		case strings.EqualFold(level, catalog.LockReadOnly):
			level = catalog.LockReadOnly
		}
		l := catalog.ManagementLock{Scope: string(scopeOf(r)), Name: r.PathValue("lockName"), Level: level, Notes: req.Properties.Notes}
		for _, o := range req.Properties.Owners {
			l.Owners = append(l.Owners, o.ApplicationID)
		}
		saved, created, err := a.cat.PutLock(r.Context(), l, actor(r))
		if err != nil {
			return err
		}
		writePut(w, created, "", toLockWire(saved))
		return nil
	}
}

func (a *API) getLock(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		l, err := a.cat.Lock(r.Context(), lockID(scopeOf(r), r.PathValue("lockName")))
		if err != nil {
			return err
		}
		writeGet(w, "", toLockWire(l))
		return nil
	}
}

func (a *API) deleteLock(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		_, deleted, err := a.cat.DeleteLock(r.Context(), lockID(scopeOf(r), r.PathValue("lockName")))
		if err != nil {
			return err
		}
		writeDelete(w, deleted)
		return nil
	}
}

func (a *API) listLocks(scopeOf func(*http.Request) rbac.Scope) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		atScope := false
		if f := strings.TrimSpace(r.URL.Query().Get("$filter")); f != "" {
			if !filterAtScopeRE.MatchString(f) {
				return api.Errorf(http.StatusBadRequest, "UnsupportedQuery", "The filter '%s' is not supported. Supported filter: atScope().", clip(f))
			}
			atScope = true
		}
		locks, err := a.cat.ListLocks(r.Context(), string(scopeOf(r)), atScope)
		if err != nil {
			return err
		}
		out := make([]lockWire, 0, len(locks))
		for _, l := range locks {
			out = append(out, toLockWire(l))
		}
		api.WriteJSON(w, http.StatusOK, list[lockWire]{Value: out})
		return nil
	}
}

// withLocks makes every mutating control-plane route respect management
// locks before its handler runs: DELETE is refused (409 ScopeLocked) under
// any lock at, above or below the route's scope, and PUT, PATCH and POST
// under a ReadOnly lock at or above it. Microsoft.Authorization routes are
// exempt, so that locks and role assignments can always be managed.
// Retention changes are checked in the table and workspace handlers, which
// know whether retention changes.
func (a *API) withLocks(routes []api.Route) []api.Route {
	for i := range routes {
		rt := &routes[i]
		var op catalog.LockOp
		switch rt.Method {
		case http.MethodDelete:
			op = catalog.LockOpDelete
		case http.MethodPut, http.MethodPatch, http.MethodPost:
			op = catalog.LockOpWrite
		default:
			continue
		}
		if strings.Contains(strings.ToLower(rt.Pattern), strings.ToLower(providerAuthorization)+"/") {
			continue
		}
		next, scopeOf := rt.Handler, rt.Scope
		rt.Handler = func(w http.ResponseWriter, r *http.Request, d rbac.Decision) {
			if err := checkAPIVersion(r); err != nil {
				api.WriteError(w, r, a.log, err)
				return
			}
			if err := a.cat.CheckLocks(r.Context(), string(scopeOf(r)), op); err != nil {
				api.WriteError(w, r, a.log, err)
				return
			}
			next(w, r, d)
		}
	}
	return routes
}

// checkRetentionLocks refuses a retention change under any lock at, above
// or below scope.
func (a *API) checkRetentionLocks(r *http.Request, scope rbac.Scope) error {
	return a.cat.CheckLocks(r.Context(), string(scope), catalog.LockOpRetention)
}

// retentionChanged reports whether a table PUT/PATCH changes how long the
// table keeps data.
func retentionChanged(old *catalog.Table, spec catalog.TableSpec) bool {
	norm := func(d int) int {
		if d <= 0 {
			return -1
		}
		return d
	}
	return norm(old.RetentionInDays) != norm(spec.RetentionInDays) || norm(old.TotalRetentionInDays) != norm(spec.TotalRetentionInDays)
}

// checkWorkspaceRetentionLocks refuses a workspace update that changes its
// retention (which tables on the workspace default inherit) under a lock.
func (a *API) checkWorkspaceRetentionLocks(r *http.Request, in catalog.Workspace) error {
	cur, err := a.cat.Workspace(r.Context(), in.SubscriptionID, in.ResourceGroup, in.Name)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	want := in.RetentionInDays
	if want == 0 {
		want = catalog.DefaultRetentionInDays
	}
	if cur.RetentionInDays == want {
		return nil
	}
	return a.checkRetentionLocks(r, workspaceScope(r))
}
