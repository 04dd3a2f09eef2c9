package arm

import (
	"encoding/json"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// subscriptionWire is a subscription as ARM's Subscriptions API returns it.
type subscriptionWire struct {
	ID                   string             `json:"id"`
	AuthorizationSource  string             `json:"authorizationSource"`
	SubscriptionID       string             `json:"subscriptionId"`
	TenantID             string             `json:"tenantId"`
	DisplayName          string             `json:"displayName"`
	State                string             `json:"state"`
	SubscriptionPolicies subscriptionPolicy `json:"subscriptionPolicies"`
	ManagedByTenants     []struct{}         `json:"managedByTenants"`
	Tags                 map[string]string  `json:"tags"`
}

type subscriptionPolicy struct {
	LocationPlacementID string `json:"locationPlacementId"`
	QuotaID             string `json:"quotaId"`
	SpendingLimit       string `json:"spendingLimit"`
}

// subscriptionRequest is the body of the Custos-specific subscription PUT.
// Read-only properties of a GET response are accepted and ignored so that a
// response can be sent back.
type subscriptionRequest struct {
	DisplayName string            `json:"displayName"`
	TenantID    string            `json:"tenantId"`
	Tags        map[string]string `json:"tags"`

	ID                   *string         `json:"id"`
	SubscriptionID       *string         `json:"subscriptionId"`
	AuthorizationSource  *string         `json:"authorizationSource"`
	State                *string         `json:"state"`
	SubscriptionPolicies json.RawMessage `json:"subscriptionPolicies"`
	ManagedByTenants     json.RawMessage `json:"managedByTenants"`
}

func toSubscriptionWire(s *catalog.Subscription) subscriptionWire {
	tags := s.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return subscriptionWire{
		ID: catalog.SubscriptionResourceID(s.ID), AuthorizationSource: "RoleBased", SubscriptionID: s.ID, TenantID: s.TenantID,
		DisplayName: s.DisplayName, State: s.State,
		SubscriptionPolicies: subscriptionPolicy{LocationPlacementID: "Custos", QuotaID: "Custos", SpendingLimit: "Off"},
		ManagedByTenants:     []struct{}{}, Tags: tags,
	}
}

// readableSubscriptions returns the subscriptions the request's principal
// may read, as ARM lists them: a principal sees the subscriptions it holds a
// role in (or below which it inherits one), not only a root-level reader.
// Without an authorizer (unit tests of this package) it returns them all.
func (a *API) readableSubscriptions(r *http.Request) ([]catalog.Subscription, error) {
	subs, err := a.cat.Subscriptions(r.Context())
	if err != nil || a.authz == nil {
		return subs, err
	}
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return nil, nil
	}
	var out []catalog.Subscription
	for _, s := range subs {
		dec, err := a.authz.Authorize(r.Context(), p, rbac.ActionSubscriptionRead, rbac.Scope("/subscriptions/"+s.ID))
		if err != nil {
			return nil, err
		}
		if dec.Allowed {
			out = append(out, s)
		}
	}
	return out, nil
}

// subscriptionListScope authorizes GET /subscriptions at the first
// subscription the caller may read ("/" when none: a root reader still
// passes there, anyone else gets 403).
func (a *API) subscriptionListScope(r *http.Request) rbac.Scope {
	subs, err := a.readableSubscriptions(r)
	if err != nil || len(subs) == 0 || a.authz == nil {
		return "/"
	}
	return rbac.Scope("/subscriptions/" + subs[0].ID)
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	subs, err := a.readableSubscriptions(r)
	if err != nil {
		return err
	}
	out := list[subscriptionWire]{Value: []subscriptionWire{}}
	for i := range subs {
		out.Value = append(out.Value, toSubscriptionWire(&subs[i]))
	}
	api.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request) error {
	s, err := a.cat.Subscription(r.Context(), r.PathValue("subscriptionId"))
	if err != nil {
		return err
	}
	api.WriteJSON(w, http.StatusOK, toSubscriptionWire(&s))
	return nil
}

func (a *API) putSubscription(w http.ResponseWriter, r *http.Request) error {
	var req subscriptionRequest
	if err := api.DecodeJSON(r, &req, a.maxBody); err != nil {
		return err
	}
	s, created, err := a.cat.PutSubscription(r.Context(), catalog.Subscription{
		ID: r.PathValue("subscriptionId"), TenantID: req.TenantID, DisplayName: req.DisplayName, Tags: req.Tags,
	})
	if err != nil {
		return err
	}
	writePut(w, created, "", toSubscriptionWire(&s))
	return nil
}

func (a *API) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	deleted, err := a.cat.DeleteSubscription(r.Context(), r.PathValue("subscriptionId"))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
