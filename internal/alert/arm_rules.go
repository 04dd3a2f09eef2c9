package alert

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// ruleTypeWire is how Azure spells the type of a scheduled query rule in
// responses.
const ruleTypeWire = "microsoft.insights/scheduledqueryrules"

type identityWire struct {
	Type                   string                     `json:"type"`
	PrincipalID            string                     `json:"principalId,omitempty"`
	TenantID               string                     `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]json.RawMessage `json:"userAssignedIdentities,omitempty"`
}

type ruleWire struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Kind       string            `json:"kind"`
	Identity   *identityWire     `json:"identity,omitempty"`
	Etag       string            `json:"etag"`
	Properties ruleProperties    `json:"properties"`
	SystemData *systemData       `json:"systemData,omitempty"`
}

// ruleRequest is a PUT body; read-only members are accepted and ignored.
type ruleRequest struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Kind       string            `json:"kind"`
	Identity   *identityWire     `json:"identity"`
	Properties *ruleProperties   `json:"properties"`

	ID         *string         `json:"id"`
	Name       *string         `json:"name"`
	Type       *string         `json:"type"`
	Etag       *string         `json:"etag"`
	SystemData json.RawMessage `json:"systemData"`
}

func (s *Service) toRuleWire(ctx context.Context, stored *catalog.AlertResource) (ruleWire, error) {
	res, err := s.openStoredRule(ctx, stored)
	if err != nil {
		if skipReason(err) == "" {
			return ruleWire{}, err
		}
		// The query is sealed under a key that is unavailable: show the
		// rule without it, so that its evaluationStatus can say why its
		// evaluations are skipped.
		res = *stored
	}
	var p ruleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return ruleWire{}, fmt.Errorf("decode stored rule: %w", err)
	}
	out := ruleWire{ID: res.ID(), Name: res.Name, Type: ruleTypeWire, Location: res.Location, Tags: res.Tags, Kind: res.Kind,
		Etag: res.ETag, Properties: p, SystemData: toSystemData(res.Audit)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	if len(res.Identity) > 0 {
		var id ruleIdentity
		if err := json.Unmarshal(res.Identity, &id); err == nil {
			out.Identity = &identityWire{Type: id.Type, PrincipalID: id.PrincipalID, TenantID: id.TenantID, UserAssignedIdentities: id.UserAssignedIdentities}
			if id.Type == IdentityUserAssigned {
				out.Identity.PrincipalID, out.Identity.TenantID = "", ""
			}
		}
	}
	st, err := s.evaluationStatus(ctx, res.ID(), p.Enabled == nil || *p.Enabled)
	if err != nil {
		return ruleWire{}, err
	}
	out.Properties.EvaluationStatus = st
	return out, nil
}

// evaluationStatus is the scheduler's view of a rule, from its state.
func (s *Service) evaluationStatus(ctx context.Context, id string, enabled bool) (*evaluationStatus, error) {
	st := &evaluationStatus{State: "Scheduled"}
	if !enabled {
		st.State = "Disabled"
	}
	raw, err := s.cat.RuleState(ctx, id)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		var rs ruleState
		plain, err := s.openState(ctx, id, raw)
		if err != nil {
			if reason := skipReason(err); reason != "" {
				st.LastResult, st.LastError, st.SkipReason = resultSkipped, skipMessages[reason], reason
			} else {
				st.LastResult, st.LastError = resultFailed, err.Error()
			}
			s.applySkip(id, st)
			return st, nil
		}
		if err := json.Unmarshal(plain, &rs); err == nil {
			st.LastEvaluationTime = arm.WireTime(rs.LastEvaluation)
			st.LastWindowEndTime = arm.WireTime(rs.LastWindowEnd)
			if !rs.LastEvaluation.IsZero() {
				st.LastEvaluationDuration = strconv.FormatInt(rs.LastDurationMs, 10)
			}
			st.LastResult, st.LastError = rs.LastResult, rs.LastError
			st.NextWindowEndTime = arm.WireTime(rs.NextWindowEnd)
			st.ConsecutiveFailures, st.MissedEvaluations = rs.ConsecutiveFailures, rs.Missed
			for _, ser := range rs.Series {
				if ser.Fired {
					st.FiredSeries++
				}
			}
		}
	}
	s.applySkip(id, st)
	return st, nil
}

func (s *Service) putRule(w http.ResponseWriter, r *http.Request) error {
	var req ruleRequest
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	if req.Properties == nil {
		return invalid("properties", "The properties of the rule are required.")
	}
	return s.saveRule(w, r, req.Location, req.Tags, req.Kind, req.Identity, *req.Properties)
}

// patchRule updates tags, enabled and the identity, as Azure's
// scheduledQueryRules PATCH does.
func (s *Service) patchRule(w http.ResponseWriter, r *http.Request) error {
	req, stored, err := s.readRulePatch(r, catalog.TypeScheduledQueryRule, true)
	if err != nil {
		return err
	}
	res, err := s.openStoredRule(r.Context(), &stored)
	if err != nil {
		return err
	}
	var p ruleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return fmt.Errorf("decode stored rule: %w", err)
	}
	tags := req.apply(res.Tags, &p.Enabled)
	var ident *identityWire
	if req.Identity != nil {
		ident = req.Identity
	} else if len(res.Identity) > 0 {
		var id ruleIdentity
		if err := json.Unmarshal(res.Identity, &id); err == nil {
			ident = &identityWire{Type: id.Type}
		}
	}
	return s.saveRule(w, r, res.Location, tags, res.Kind, ident, p)
}

func (s *Service) saveRule(w http.ResponseWriter, r *http.Request, location string, tags map[string]string, kind string,
	ident *identityWire, p ruleProperties) error {
	ctx := r.Context()
	sub, rg, name := r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("ruleName")
	if kind == "" {
		kind = KindLogAlert
	}
	if kind != KindLogAlert {
		return invalidCode("UnsupportedKind", "kind", "The rule kind '%s' is not supported; Custos evaluates LogAlert rules.", truncate(kind, 50))
	}
	// Read-only properties are the service's.
	p.EvaluationStatus = nil
	p.IsLegacyLogAnalyticsRule = false
	p.IsWorkspaceAlertsStorageConfigured = false
	if v := r.URL.Query().Get("api-version"); p.CreatedWithAPIVersion == "" {
		p.CreatedWithAPIVersion = v
	}
	if p.Enabled == nil {
		t := true
		p.Enabled = &t
	}
	props, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode rule: %w", err)
	}
	res := catalog.AlertResource{Type: catalog.TypeScheduledQueryRule, SubscriptionID: sub, ResourceGroup: rg, Name: name,
		Location: location, Kind: kind, Tags: tags, Properties: props}
	rl := &rule{ID: res.ID(), Name: name, Props: p}
	if ident != nil {
		rl.Identity = &ruleIdentity{Type: ident.Type}
		if len(ident.UserAssignedIdentities) > 0 {
			rl.Identity.UserAssignedIdentities = ident.UserAssignedIdentities
		}
	}
	if err := rl.validate(); err != nil {
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
	sealedProps, secrets, err := s.sealRuleQuery(ctx, res.ID(), p)
	if err != nil {
		return err
	}
	if secrets != nil {
		if res.Properties, err = json.Marshal(sealedProps); err != nil {
			return fmt.Errorf("encode rule: %w", err)
		}
	}
	saved, created, _, err := s.cat.PutAlertResource(ctx, res, secrets, precondition(r), actor(r))
	if err != nil {
		return err
	}
	s.retireReplacedIdentity(ctx, saved.ID(), prevID, rl.Identity)
	if parsed, err := s.loadRule(ctx, &saved); err == nil {
		s.ruleChanged(saved.ID(), parsed)
	}
	out, err := s.toRuleWire(ctx, &saved)
	if err != nil {
		return err
	}
	writePut(w, created, saved.ETag, out)
	return nil
}

// checkIdentityAccess refuses a rule whose user-assigned identity cannot
// query every scope: such a rule could never read its data. (A new
// system-assigned identity has no role yet; it is checked at every
// evaluation, like every identity.)
func (s *Service) checkIdentityAccess(ctx context.Context, rl *rule) error {
	if rl.Identity == nil || rl.Identity.Type != IdentityUserAssigned {
		return nil
	}
	p, err := s.rulePrincipal(ctx, rl)
	if err != nil {
		return err
	}
	for i, sc := range rl.Props.Scopes {
		if _, _, _, err := s.authorizeScope(ctx, p, sc); err != nil {
			var ae *Error
			if errors.As(err, &ae) && ae.Code == "RuleIdentityNotAuthorized" {
				return &Error{Code: "IdentityNotAuthorized", Kind: api.KindInvalid, Target: fmt.Sprintf("properties.scopes[%d]", i), base: ErrForbidden,
					Message: "The rule's user-assigned identity (principal " + p.ObjectID + ") cannot query the scope '" + truncate(sc, 300) +
						"'. Grant it a role such as Log Analytics Reader on the workspace first."}
			}
			return err
		}
	}
	return nil
}

// resolveIdentity turns the identity a PUT asks for into the rule's stored
// identity (res.Identity): an existing user-assigned identity, the rule's
// system-assigned managed identity (created at the first PUT that asks for
// it, kept by later ones), or none. It returns the identity the stored rule
// had before, for retireReplacedIdentity.
func (s *Service) resolveIdentity(ctx context.Context, res *catalog.AlertResource, rl *rule) (*ruleIdentity, error) {
	old, err := s.cat.AlertResource(ctx, res.Type, res.SubscriptionID, res.ResourceGroup, res.Name)
	exists := err == nil
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return nil, err
	}
	var prevID *ruleIdentity
	if exists && len(old.Identity) > 0 {
		prevID = &ruleIdentity{}
		if err := json.Unmarshal(old.Identity, prevID); err != nil {
			prevID = nil
		}
	}
	if rl.Identity != nil && rl.Identity.Type == IdentityUserAssigned {
		if rl.Identity, err = s.userAssignedIdentity(ctx, rl.Identity); err != nil {
			return nil, err
		}
	}
	if rl.Identity != nil && rl.Identity.Type == IdentitySystemAssigned {
		if prevID != nil && prevID.Type == IdentitySystemAssigned && prevID.PrincipalID != "" {
			rl.Identity = prevID
		} else if rl.Identity, err = s.newSystemIdentity(ctx, res.SubscriptionID, res.ID(), res.Type+" "+res.Name); err != nil {
			return nil, err
		}
	}
	res.Identity = nil
	if rl.Identity != nil {
		if res.Identity, err = json.Marshal(rl.Identity); err != nil {
			return nil, fmt.Errorf("encode identity: %w", err)
		}
	}
	return prevID, nil
}

// retireReplacedIdentity retires the rule's former system-assigned
// identity when the saved rule no longer uses it.
func (s *Service) retireReplacedIdentity(ctx context.Context, ruleID string, prev, cur *ruleIdentity) {
	if prev != nil && prev.Type == IdentitySystemAssigned && (cur == nil || cur.PrincipalID != prev.PrincipalID) {
		s.retireIdentity(ctx, ruleID, prev)
	}
}

// checkRuleReferences checks that the scopes and action groups exist and
// that the caller may read every scope: a rule cannot point at data its
// author cannot see. (The rule's own identity is checked at every
// evaluation; a new system-assigned identity has no role yet.)
func (s *Service) checkRuleReferences(ctx context.Context, rl *rule) error {
	caller, hasCaller := api.PrincipalFrom(ctx)
	for i, sc := range rl.Props.Scopes {
		ws, err := s.cat.WorkspaceByResourceID(ctx, sc)
		if err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return invalidCode("ScopeNotFound", fmt.Sprintf("properties.scopes[%d]", i), "The scope '%s' does not exist.", truncate(sc, 300))
			}
			return err
		}
		if hasCaller {
			dec, err := s.opts.Authorizer.Authorize(ctx, caller, rbac.ActionWorkspaceRead, rbac.Scope(ws.ID()))
			if err != nil || !dec.Allowed {
				return forbidden("LinkedAuthorizationFailed",
					"The client '%s' does not have permission to perform action '%s' on the linked scope '%s'.",
					caller.ObjectID, rbac.ActionWorkspaceRead, ws.ID())
			}
		}
	}
	return s.checkGroupsExist(ctx, rl.Props.Actions)
}

// checkGroupsExist checks that the action groups a rule names exist.
func (s *Service) checkGroupsExist(ctx context.Context, acts *ruleActions) error {
	if acts != nil {
		for i, id := range acts.ActionGroups {
			sub, rg, name, _ := parseActionGroupID(id)
			if _, err := s.cat.AlertResource(ctx, catalog.TypeActionGroup, sub, rg, name); err != nil {
				if errors.Is(err, catalog.ErrNotFound) {
					return invalidCode("ActionGroupNotFound", fmt.Sprintf("properties.actions.actionGroups[%d]", i),
						"The action group '%s' does not exist.", truncate(id, 300))
				}
				return err
			}
		}
	}
	return nil
}

// newSystemIdentity creates the system-assigned managed identity of the
// rule resourceID in the subscription's tenant: a managed identity (the
// kind machines and user-assigned identities are) without credentials,
// whose resource is the rule. Role assignments name its principalId; it is
// deleted, with its role assignments, when the rule is deleted or stops
// using it.
func (s *Service) newSystemIdentity(ctx context.Context, sub, resourceID, display string) (*ruleIdentity, error) {
	subRec, err := s.cat.Subscription(ctx, sub)
	if err != nil {
		return nil, err
	}
	tenant := strings.ToLower(subRec.TenantID)
	objectID, clientID, err := s.cat.CreateSystemAssignedIdentity(ctx, tenant, resourceID, display)
	if err != nil {
		return nil, fmt.Errorf("create identity: %w", err)
	}
	return &ruleIdentity{Type: IdentitySystemAssigned, PrincipalID: objectID, TenantID: tenant, AppID: clientID}, nil
}

// newNotifierApp creates the service principal an action group's secure
// webhooks get their tokens as. It has no credentials: only Custos's token
// service issues it tokens, for the receivers' identifierUri audiences.
func (s *Service) newNotifierApp(ctx context.Context, sub, display string) (*ruleIdentity, error) {
	subRec, err := s.cat.Subscription(ctx, sub)
	if err != nil {
		return nil, err
	}
	objectID, err := s.newGUID()
	if err != nil {
		return nil, err
	}
	appID, err := s.newGUID()
	if err != nil {
		return nil, err
	}
	sp := identity.ServicePrincipal{TenantID: strings.ToLower(subRec.TenantID), ObjectID: objectID, AppID: appID, DisplayName: display}
	if err := s.opts.Principals.CreateServicePrincipal(ctx, sp); err != nil {
		return nil, fmt.Errorf("create notifier application: %w", err)
	}
	return &ruleIdentity{Type: IdentitySystemAssigned, PrincipalID: objectID, TenantID: sp.TenantID, AppID: appID}, nil
}

func (s *Service) newGUID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}

func (s *Service) deleteRule(w http.ResponseWriter, r *http.Request) error {
	return s.deleteEvaluatedRule(w, r, catalog.TypeScheduledQueryRule)
}

// deleteEvaluatedRule deletes a log search or metric alert rule of type
// typ: it leaves the scheduler, its skip record goes, and its
// system-assigned identity is retired.
func (s *Service) deleteEvaluatedRule(w http.ResponseWriter, r *http.Request, typ string) error {
	old, deleted, err := s.cat.DeleteAlertResource(r.Context(), typ, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("ruleName"), precondition(r))
	if err != nil {
		return err
	}
	if deleted {
		s.ruleChanged(old.ID(), nil)
		s.skips.clear(old.ID())
		var id ruleIdentity
		if len(old.Identity) > 0 && json.Unmarshal(old.Identity, &id) == nil && id.Type == IdentitySystemAssigned {
			s.retireIdentity(r.Context(), old.ID(), &id)
		}
	}
	writeDelete(w, deleted)
	return nil
}

// retireIdentity removes a system-assigned identity that its rule no longer
// uses (the rule was deleted or given another identity), as Azure deletes
// it: a managed identity is deleted with its role assignments; a principal
// made by an older Custos (a service principal standing for the identity)
// is disabled, so roles left on it grant nothing. Failures are logged: the
// rule change has committed.
func (s *Service) retireIdentity(ctx context.Context, ruleID string, id *ruleIdentity) {
	if id.PrincipalID == "" {
		return
	}
	ps, err := s.cat.PrincipalState(ctx, id.TenantID, id.PrincipalID)
	switch {
	case errors.Is(err, identity.ErrNotFound) || errors.Is(err, catalog.ErrNotFound):
		return // deleted with the rule
	case err != nil:
		s.log.LogAttrs(ctx, slog.LevelError, "look up retired rule identity", slog.String("rule_id", ruleID), slog.Any("error", err))
		return
	}
	if ps.Kind == identity.KindManagedIdentity {
		if err := s.cat.DeleteSystemAssignedIdentity(ctx, id.TenantID, id.PrincipalID, ruleID); err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "delete retired rule identity", slog.String("rule_id", ruleID),
				slog.String("principal_id", id.PrincipalID), slog.Any("error", err))
			return
		}
		s.log.LogAttrs(ctx, slog.LevelInfo, "rule identity deleted", slog.String("rule_id", ruleID), slog.String("principal_id", id.PrincipalID))
		return
	}
	d, ok := s.opts.Principals.(PrincipalDisabler)
	if !ok {
		return
	}
	if err := d.SetPrincipalEnabled(ctx, id.TenantID, id.PrincipalID, false); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "disable retired rule identity", slog.String("rule_id", ruleID),
			slog.String("principal_id", id.PrincipalID), slog.Any("error", err))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "rule identity disabled", slog.String("rule_id", ruleID), slog.String("principal_id", id.PrincipalID))
}

// userAssignedIdentity resolves the one user-assigned identity a rule names
// to its principal.
func (s *Service) userAssignedIdentity(ctx context.Context, req *ruleIdentity) (*ruleIdentity, error) {
	for id := range req.UserAssignedIdentities {
		sub, rg, name, _ := parseUserAssignedID(id)
		u, err := s.cat.UserAssignedIdentity(ctx, sub, rg, name)
		if err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return nil, invalidCode("InvalidIdentity", "identity.userAssignedIdentities", "The user-assigned identity '%s' does not exist.", truncate(id, 300))
			}
			return nil, err
		}
		entry, _ := json.Marshal(map[string]string{"principalId": u.PrincipalID, "clientId": u.ClientID})
		return &ruleIdentity{Type: IdentityUserAssigned, PrincipalID: u.PrincipalID, TenantID: u.TenantID, AppID: u.ClientID,
			UserAssignedIdentities: map[string]json.RawMessage{u.ID(): entry}}, nil
	}
	return nil, invalidCode("InvalidIdentity", "identity.userAssignedIdentities", "No user-assigned identity is named.")
}
