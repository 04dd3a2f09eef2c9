package arm

import (
	"net/http"

	"custos/internal/api"
	"custos/internal/rbac"
)

// List filtering. ARM answers a list at subscription or resource-group scope
// with the items the caller may read, not only when the caller may read the
// whole container: a principal holding a role on one workspace sees that
// workspace in the subscription's list. A filtered list does this in two
// steps, as GET /subscriptions does (subscriptionListScope):
//
//   - the route's Scope function (filteredList.scope) returns the
//     container's scope when the caller may perform the action there — then
//     every item is visible and nothing else is checked —, else the ID of the
//     first item the caller may read, so that the router's authorization
//     passes, else the container's scope again, and the request is refused
//     with 403 as before;
//   - the handler (filteredList.items) keeps the items the caller may read:
//     all of them after one check at the container, or each checked at its
//     own resource ID.
//
// Without an authorizer (unit tests of this package) every item is listed.

// filteredList describes one list endpoint whose items are resources below
// the subscription or resource group in the path.
type filteredList[T any] struct {
	act  rbac.Action                      // the read action of the items
	load func(*http.Request) ([]T, error) // the items below the path's container
	id   func(*T) string                  // an item's resource ID (its RBAC scope)
}

// containerScope is the scope of a list path: its resource group when the
// path names one, else its subscription.
func containerScope(r *http.Request) rbac.Scope {
	if r.PathValue("resourceGroupName") != "" {
		return resourceGroupScope(r)
	}
	return subscriptionScope(r)
}

// scope returns the route's Scope function.
func (l filteredList[T]) scope(a *API) func(*http.Request) rbac.Scope {
	return func(r *http.Request) rbac.Scope {
		own := containerScope(r)
		p, ok := api.PrincipalFrom(r.Context())
		if !ok || a.authz == nil {
			return own
		}
		if d, err := a.authz.Authorize(r.Context(), p, l.act, own); err != nil || d.Allowed {
			return own // an error is answered by the router's own check
		}
		items, err := l.load(r)
		if err != nil {
			return own
		}
		for i := range items {
			id := rbac.Scope(l.id(&items[i]))
			if d, err := a.authz.Authorize(r.Context(), p, l.act, id); err == nil && d.Allowed {
				return id
			}
		}
		return own
	}
}

// items loads the list and keeps what the caller may read.
func (l filteredList[T]) items(a *API, r *http.Request) ([]T, error) {
	items, err := l.load(r)
	if err != nil || a.authz == nil {
		return items, err
	}
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return nil, nil
	}
	d, err := a.authz.Authorize(r.Context(), p, l.act, containerScope(r))
	if err != nil {
		return nil, err
	}
	if d.Allowed {
		return items, nil
	}
	out := items[:0:0]
	for i := range items {
		d, err := a.authz.Authorize(r.Context(), p, l.act, rbac.Scope(l.id(&items[i])))
		if err != nil {
			return nil, err
		}
		if d.Allowed {
			out = append(out, items[i])
		}
	}
	return out, nil
}

// writeFilteredList loads the list, filters it, converts each item and writes
// {"value": [...]}.
func writeFilteredList[T, W any](a *API, w http.ResponseWriter, r *http.Request, l filteredList[T], conv func(*T) W) error {
	items, err := l.items(a, r)
	if err != nil {
		return err
	}
	out := list[W]{Value: make([]W, 0, len(items))}
	for i := range items {
		out.Value = append(out.Value, conv(&items[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}
