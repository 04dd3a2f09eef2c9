package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// Actions of Microsoft.Insights/metricAlerts and activityLogAlerts, as
// Azure names them.
const (
	ActionMetricAlertRead        rbac.Action = "Microsoft.Insights/metricAlerts/read"
	ActionMetricAlertWrite       rbac.Action = "Microsoft.Insights/metricAlerts/write"
	ActionMetricAlertDelete      rbac.Action = "Microsoft.Insights/metricAlerts/delete"
	ActionActivityLogAlertRead   rbac.Action = "Microsoft.Insights/activityLogAlerts/read"
	ActionActivityLogAlertWrite  rbac.Action = "Microsoft.Insights/activityLogAlerts/write"
	ActionActivityLogAlertDelete rbac.Action = "Microsoft.Insights/activityLogAlerts/delete"
	// ActionActivityLogRead is reading activity log events ("eventtypes").
	ActionActivityLogRead rbac.Action = "Microsoft.Insights/eventtypes/values/read"
)

const metricAlertTypeWire = "Microsoft.Insights/metricAlerts"

type metricAlertWire struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Location   string                `json:"location"`
	Tags       map[string]string     `json:"tags"`
	Identity   *identityWire         `json:"identity,omitempty"`
	Properties metricAlertProperties `json:"properties"`
	SystemData *systemData           `json:"systemData,omitempty"`
}

type metricAlertRequest struct {
	Location   string                 `json:"location"`
	Tags       map[string]string      `json:"tags"`
	Identity   *identityWire          `json:"identity"`
	Properties *metricAlertProperties `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	SystemData json.RawMessage `json:"systemData"`
}

func metricAlertScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.AlertResourceID(catalog.TypeMetricAlert, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("ruleName")))
}

// identityToWire shows a stored identity: type, principalId and tenantId of
// a system-assigned identity, the userAssignedIdentities map otherwise.
func identityToWire(raw json.RawMessage) *identityWire {
	if len(raw) == 0 {
		return nil
	}
	var id ruleIdentity
	if err := json.Unmarshal(raw, &id); err != nil {
		return nil
	}
	out := &identityWire{Type: id.Type, PrincipalID: id.PrincipalID, TenantID: id.TenantID, UserAssignedIdentities: id.UserAssignedIdentities}
	if id.Type == IdentityUserAssigned {
		out.PrincipalID, out.TenantID = "", ""
	}
	return out
}

func (s *Service) toMetricAlertWire(ctx context.Context, res *catalog.AlertResource) (metricAlertWire, error) {
	var p metricAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return metricAlertWire{}, fmt.Errorf("decode stored metric alert: %w", err)
	}
	out := metricAlertWire{ID: res.ID(), Name: res.Name, Type: metricAlertTypeWire, Location: res.Location, Tags: res.Tags,
		Identity: identityToWire(res.Identity), Properties: p, SystemData: toSystemData(res.Audit)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	if out.Properties.Actions == nil {
		out.Properties.Actions = []metricAction{}
	}
	out.Properties.LastUpdatedTime = arm.WireTime(res.Audit.ModifiedAt)
	st, err := s.evaluationStatus(ctx, res.ID(), p.Enabled == nil || *p.Enabled)
	if err != nil {
		return metricAlertWire{}, err
	}
	out.Properties.EvaluationStatus = st
	return out, nil
}

func (s *Service) putMetricAlert(w http.ResponseWriter, r *http.Request) error {
	var req metricAlertRequest
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	if req.Properties == nil {
		return invalid("properties", "The properties of the metric alert are required.")
	}
	ident := req.Identity
	if ident == nil {
		// Azure evaluates platform metrics itself; in Custos the rule reads
		// workspace tables, so it always gets an identity to read them as.
		ident = &identityWire{Type: IdentitySystemAssigned}
	}
	return s.saveMetricAlert(w, r, req.Location, req.Tags, ident, *req.Properties)
}

// patchMetricAlert updates tags, enabled and the identity.
func (s *Service) patchMetricAlert(w http.ResponseWriter, r *http.Request) error {
	req, res, err := s.readRulePatch(r, catalog.TypeMetricAlert, true)
	if err != nil {
		return err
	}
	var p metricAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return fmt.Errorf("decode stored metric alert: %w", err)
	}
	tags := req.apply(res.Tags, &p.Enabled)
	ident := req.Identity
	if ident == nil {
		ident = &identityWire{Type: IdentityNone}
		if cur := identityToWire(res.Identity); cur != nil {
			ident = &identityWire{Type: cur.Type, UserAssignedIdentities: cur.UserAssignedIdentities}
		}
	}
	return s.saveMetricAlert(w, r, res.Location, tags, ident, p)
}

func (s *Service) saveMetricAlert(w http.ResponseWriter, r *http.Request, location string, tags map[string]string,
	ident *identityWire, p metricAlertProperties) error {
	ctx := r.Context()
	sub, rg, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("ruleName")
	p.EvaluationStatus, p.LastUpdatedTime, p.IsMigrated = nil, "", false
	if p.Enabled == nil {
		t := true
		p.Enabled = &t
	}
	if p.Actions == nil {
		p.Actions = []metricAction{}
	}
	props, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode metric alert: %w", err)
	}
	res := catalog.AlertResource{Type: catalog.TypeMetricAlert, SubscriptionID: sub, ResourceGroup: rg, Name: name,
		Location: location, Tags: tags, Properties: props}
	rl := &rule{ID: res.ID(), Name: name, SubscriptionID: sub, ResourceGroup: rg}
	if ident != nil {
		rl.Identity = &ruleIdentity{Type: ident.Type, UserAssignedIdentities: ident.UserAssignedIdentities}
	}
	if err := rl.validateMetric(&p); err != nil {
		return err
	}
	if err := s.checkRuleReferences(ctx, rl); err != nil {
		return err
	}
	prevID, err := s.resolveIdentity(ctx, &res, rl)
	if err != nil {
		return err
	}
	// A PATCH (for example disabling a rule whose identity lost access)
	// is never refused for it.
	if r.Method == http.MethodPut && rl.Enabled {
		if err := s.checkIdentityAccess(ctx, rl); err != nil {
			return err
		}
	}
	saved, created, _, err := s.cat.PutAlertResource(ctx, res, nil, precondition(r), actor(r))
	if err != nil {
		return err
	}
	s.retireReplacedIdentity(ctx, saved.ID(), prevID, rl.Identity)
	if parsed, err := parseRule(&saved); err == nil {
		s.ruleChanged(saved.ID(), parsed)
	}
	out, err := s.toMetricAlertWire(ctx, &saved)
	if err != nil {
		return err
	}
	writePut(w, created, saved.ETag, out)
	return nil
}

func (s *Service) deleteMetricAlert(w http.ResponseWriter, r *http.Request) error {
	return s.deleteEvaluatedRule(w, r, catalog.TypeMetricAlert)
}
