package alert

import (
	"net/http"
	"regexp"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// Actions of Microsoft.AlertsManagement/alerts, as Azure names them.
const (
	ActionAlertRead        rbac.Action = "Microsoft.AlertsManagement/alerts/read"
	ActionAlertChangeState rbac.Action = "Microsoft.AlertsManagement/alerts/changestate/action"
	ActionAlertHistoryRead rbac.Action = "Microsoft.AlertsManagement/alerts/history/read"
)

// Path patterns. The server's router matches literal segments
// case-insensitively.
const (
	pSub        = "/subscriptions/{subscriptionId}"
	pRG         = pSub + "/resourceGroups/{resourceGroupName}"
	pRulesSub   = pSub + "/providers/Microsoft.Insights/scheduledQueryRules"
	pRulesRG    = pRG + "/providers/Microsoft.Insights/scheduledQueryRules"
	pRule       = pRulesRG + "/{ruleName}"
	pGroupsSub  = pSub + "/providers/Microsoft.Insights/actionGroups"
	pGroupsRG   = pRG + "/providers/Microsoft.Insights/actionGroups"
	pGroup      = pGroupsRG + "/{actionGroupName}"
	pARulesSub  = pSub + "/providers/Microsoft.AlertsManagement/actionRules"
	pARulesRG   = pRG + "/providers/Microsoft.AlertsManagement/actionRules"
	pARule      = pARulesRG + "/{actionRuleName}"
	pAlerts     = pSub + "/providers/Microsoft.AlertsManagement/alerts"
	pAlert      = pAlerts + "/{alertId}"
	pAlertState = pAlert + "/changestate"
	pAlertHist  = pAlert + "/history"
	pAlertNotif = pAlert + "/notifications"
)

// Routes returns the alerting control-plane endpoints with their RBAC
// actions and scopes.
func (s *Service) Routes() []api.Route {
	r := func(method, pattern string, act rbac.Action, scope func(*http.Request) rbac.Scope, h handler) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act, Scope: scope, Handler: s.wrap(h)}
	}
	return []api.Route{
		r(http.MethodGet, pRulesSub, rbac.ActionScheduledQueryRuleRead, subScope, s.listRules),
		r(http.MethodGet, pRulesRG, rbac.ActionScheduledQueryRuleRead, rgScope, s.listRules),
		r(http.MethodGet, pRule, rbac.ActionScheduledQueryRuleRead, ruleScope, s.getRule),
		r(http.MethodPut, pRule, rbac.ActionScheduledQueryRuleWrite, ruleScope, s.putRule),
		r(http.MethodPatch, pRule, rbac.ActionScheduledQueryRuleWrite, ruleScope, s.patchRule),
		r(http.MethodDelete, pRule, rbac.ActionScheduledQueryRuleDelete, ruleScope, s.deleteRule),

		r(http.MethodGet, pGroupsSub, rbac.ActionActionGroupRead, subScope, s.listGroups),
		r(http.MethodGet, pGroupsRG, rbac.ActionActionGroupRead, rgScope, s.listGroups),
		r(http.MethodGet, pGroup, rbac.ActionActionGroupRead, groupScope, s.getGroup),
		r(http.MethodPut, pGroup, rbac.ActionActionGroupWrite, groupScope, s.putGroup),
		r(http.MethodDelete, pGroup, rbac.ActionActionGroupDelete, groupScope, s.deleteGroup),
		// Test notifications need write on the group: they send to its receivers.
		r(http.MethodPost, pGroup+"/createNotifications", rbac.ActionActionGroupWrite, groupScope, s.createNotifications),
		r(http.MethodGet, pGroup+"/notificationStatus/{notificationId}", rbac.ActionActionGroupRead, groupScope, s.notificationStatus),

		r(http.MethodGet, pARulesSub, ActionActionRuleRead, subScope, s.listActionRules),
		r(http.MethodGet, pARulesRG, ActionActionRuleRead, rgScope, s.listActionRules),
		r(http.MethodGet, pARule, ActionActionRuleRead, actionRuleScope, s.getActionRule),
		r(http.MethodPut, pARule, ActionActionRuleWrite, actionRuleScope, s.putActionRule),
		r(http.MethodDelete, pARule, ActionActionRuleDelete, actionRuleScope, s.deleteActionRule),

		r(http.MethodGet, pAlerts, ActionAlertRead, subScope, s.listAlerts),
		r(http.MethodGet, pAlert, ActionAlertRead, subScope, s.getAlert),
		r(http.MethodPost, pAlertState, ActionAlertChangeState, subScope, s.changeState),
		r(http.MethodGet, pAlertHist, ActionAlertHistoryRead, subScope, s.alertHistory),
		r(http.MethodGet, pAlertNotif, ActionAlertRead, subScope, s.alertNotifications),
	}
}

func subScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.SubscriptionResourceID(r.PathValue("subscriptionId")))
}

func rgScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.ResourceGroupResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName")))
}

func ruleScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.AlertResourceID(catalog.TypeScheduledQueryRule, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("ruleName")))
}

func groupScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.AlertResourceID(catalog.TypeActionGroup, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("actionGroupName")))
}

// handler is a route body; a returned error is written in the Azure envelope.
type handler func(w http.ResponseWriter, r *http.Request) error

var apiVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?$`)

func checkAPIVersion(r *http.Request) error {
	vs, ok := r.URL.Query()["api-version"]
	if !ok || len(vs) == 0 || vs[0] == "" {
		return api.Errorf(http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	if !apiVersionRE.MatchString(vs[0]) {
		return api.Errorf(http.StatusBadRequest, "InvalidApiVersionParameter",
			"The api-version '%s' is invalid. The supported versions are dates in the form 'YYYY-MM-DD', optionally followed by '-preview'.",
			truncate(vs[0], 64))
	}
	return nil
}

func (s *Service) wrap(h handler) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
		err := checkAPIVersion(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			api.WriteError(w, r, s.log, err)
		}
	}
}

func precondition(r *http.Request) catalog.Precondition {
	return catalog.Precondition{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")}
}

func actor(r *http.Request) catalog.Actor {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return catalog.Actor{}
	}
	typ := "Application"
	switch p.Kind {
	case identity.KindUser:
		typ = "User"
	case identity.KindManagedIdentity:
		typ = "ManagedIdentity"
	}
	id := p.ObjectID
	if id == "" {
		id = p.AppID
	}
	return catalog.Actor{ID: id, Type: typ}
}

type systemData struct {
	CreatedBy          string `json:"createdBy,omitempty"`
	CreatedByType      string `json:"createdByType,omitempty"`
	CreatedAt          string `json:"createdAt,omitempty"`
	LastModifiedBy     string `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     string `json:"lastModifiedAt,omitempty"`
}

func toSystemData(a catalog.Audit) *systemData {
	return &systemData{
		CreatedBy: a.CreatedBy, CreatedByType: a.CreatedByType, CreatedAt: wireTime(a.CreatedAt),
		LastModifiedBy: a.ModifiedBy, LastModifiedByType: a.ModifiedByType, LastModifiedAt: wireTime(a.ModifiedAt),
	}
}

type list[T any] struct {
	Value []T `json:"value"`
}

func writeJSON(w http.ResponseWriter, status int, etag string, v any) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	api.WriteJSON(w, status, v)
}

func writePut(w http.ResponseWriter, created bool, etag string, v any) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, etag, v)
}

func writeDelete(w http.ResponseWriter, deleted bool) {
	if deleted {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
