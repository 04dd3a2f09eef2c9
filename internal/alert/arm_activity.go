package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

const activityAlertTypeWire = "Microsoft.Insights/ActivityLogAlerts"

type activityAlertWire struct {
	ID         string                  `json:"id"`
	Name       string                  `json:"name"`
	Type       string                  `json:"type"`
	Location   string                  `json:"location"`
	Tags       map[string]string       `json:"tags"`
	Properties activityAlertProperties `json:"properties"`
	SystemData *systemData             `json:"systemData,omitempty"`
}

type activityAlertRequest struct {
	Location   string                   `json:"location"`
	Tags       map[string]string        `json:"tags"`
	Properties *activityAlertProperties `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func activityAlertScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.AlertResourceID(catalog.TypeActivityLogAlert, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("ruleName")))
}

func (s *Service) toActivityAlertWire(ctx context.Context, res *catalog.AlertResource) (activityAlertWire, error) {
	var p activityAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return activityAlertWire{}, fmt.Errorf("decode stored activity log alert: %w", err)
	}
	out := activityAlertWire{ID: res.ID(), Name: res.Name, Type: activityAlertTypeWire, Location: res.Location, Tags: res.Tags,
		Properties: p, SystemData: toSystemData(res.Audit)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	st := &activityStatus{State: "Enabled"}
	if p.Enabled != nil && !*p.Enabled {
		st.State = "Disabled"
	}
	seq, _, err := s.cat.ActivityAlertCursor(ctx)
	if err != nil {
		return activityAlertWire{}, err
	}
	st.EvaluatedThrough = seq
	out.Properties.EvaluationStatus = st
	return out, nil
}

func (s *Service) putActivityAlert(w http.ResponseWriter, r *http.Request) error {
	var req activityAlertRequest
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	if req.Properties == nil {
		return invalid("properties", "The properties of the activity log alert are required.")
	}
	return s.saveActivityAlert(w, r, req.Location, req.Tags, *req.Properties)
}

// patchActivityAlert updates tags and enabled, as Azure's PATCH does.
func (s *Service) patchActivityAlert(w http.ResponseWriter, r *http.Request) error {
	req, res, err := s.readRulePatch(r, catalog.TypeActivityLogAlert, false)
	if err != nil {
		return err
	}
	var p activityAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return fmt.Errorf("decode stored activity log alert: %w", err)
	}
	return s.saveActivityAlert(w, r, res.Location, req.apply(res.Tags, &p.Enabled), p)
}

func (s *Service) saveActivityAlert(w http.ResponseWriter, r *http.Request, location string, tags map[string]string, p activityAlertProperties) error {
	ctx := r.Context()
	sub, rg, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("ruleName")
	p.EvaluationStatus = nil
	if p.Enabled == nil {
		t := true
		p.Enabled = &t
	}
	if p.TenantScope != "" {
		return invalid("properties.tenantScope", "Tenant-scoped activity log alerts are not supported; use subscription, resource group or resource scopes.")
	}
	ar := &activityRule{rule: rule{ID: catalog.AlertResourceID(catalog.TypeActivityLogAlert, sub, rg, name), Name: name,
		SubscriptionID: sub, ResourceGroup: rg}}
	if err := ar.validate(&p); err != nil {
		return err
	}
	// The rule's author must be allowed to read the activity log of every
	// scope: otherwise a rule would forward events they cannot see.
	if caller, ok := api.PrincipalFrom(ctx); ok {
		for i, sc := range p.Scopes {
			dec, err := s.opts.Authorizer.Authorize(ctx, caller, ActionActivityLogRead, rbac.Scope(sc))
			if err != nil || !dec.Allowed {
				return &Error{Code: "LinkedAuthorizationFailed", Kind: api.KindForbidden, Target: fmt.Sprintf("properties.scopes[%d]", i), base: ErrForbidden,
					Message: fmt.Sprintf("The client '%s' does not have permission to perform action '%s' on the linked scope '%s'.",
						caller.ObjectID, ActionActivityLogRead, truncate(sc, 300))}
			}
		}
	}
	if err := s.checkGroupsExist(ctx, ar.Props.Actions); err != nil {
		return err
	}
	props, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode activity log alert: %w", err)
	}
	res := catalog.AlertResource{Type: catalog.TypeActivityLogAlert, SubscriptionID: sub, ResourceGroup: rg, Name: name,
		Location: location, Tags: tags, Properties: props}
	saved, created, _, err := s.cat.PutAlertResource(ctx, res, nil, precondition(r), actor(r))
	if err != nil {
		return err
	}
	wake(s.wakeActivity)
	out, err := s.toActivityAlertWire(ctx, &saved)
	if err != nil {
		return err
	}
	writePut(w, created, saved.ETag, out)
	return nil
}

func (s *Service) deleteActivityAlert(w http.ResponseWriter, r *http.Request) error {
	_, deleted, err := s.cat.DeleteAlertResource(r.Context(), catalog.TypeActivityLogAlert, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("ruleName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
