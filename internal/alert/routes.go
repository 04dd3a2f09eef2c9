package alert

import (
	"net/http"

	"custos/internal/api"
	"custos/internal/arm"
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
	pMetricSub  = pSub + "/providers/Microsoft.Insights/metricAlerts"
	pMetricRG   = pRG + "/providers/Microsoft.Insights/metricAlerts"
	pMetric     = pMetricRG + "/{ruleName}"
	pActLogSub  = pSub + "/providers/Microsoft.Insights/activityLogAlerts"
	pActLogRG   = pRG + "/providers/Microsoft.Insights/activityLogAlerts"
	pActLog     = pActLogRG + "/{ruleName}"
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
	listRules, getRule := listResources(s, catalog.TypeScheduledQueryRule, s.toRuleWire),
		getResource(s, catalog.TypeScheduledQueryRule, "ruleName", s.toRuleWire)
	listMetricAlerts, getMetricAlert := listResources(s, catalog.TypeMetricAlert, s.toMetricAlertWire),
		getResource(s, catalog.TypeMetricAlert, "ruleName", s.toMetricAlertWire)
	listActivityAlerts, getActivityAlert := listResources(s, catalog.TypeActivityLogAlert, s.toActivityAlertWire),
		getResource(s, catalog.TypeActivityLogAlert, "ruleName", s.toActivityAlertWire)
	toGroup := withoutContext(func(res *catalog.AlertResource) (groupWire, error) { return toGroupWire(res, nil) })
	listGroups, getGroup := listResources(s, catalog.TypeActionGroup, toGroup),
		getResource(s, catalog.TypeActionGroup, "actionGroupName", toGroup)
	listActionRules, getActionRule := listResources(s, catalog.TypeActionRule, withoutContext(toActionRuleWire)),
		getResource(s, catalog.TypeActionRule, "actionRuleName", withoutContext(toActionRuleWire))
	return []api.Route{
		r(http.MethodGet, pRulesSub, rbac.ActionScheduledQueryRuleRead, subScope, listRules),
		r(http.MethodGet, pRulesRG, rbac.ActionScheduledQueryRuleRead, rgScope, listRules),
		r(http.MethodGet, pRule, rbac.ActionScheduledQueryRuleRead, ruleScope, getRule),
		r(http.MethodPut, pRule, rbac.ActionScheduledQueryRuleWrite, ruleScope, s.putRule),
		r(http.MethodPatch, pRule, rbac.ActionScheduledQueryRuleWrite, ruleScope, s.patchRule),
		r(http.MethodDelete, pRule, rbac.ActionScheduledQueryRuleDelete, ruleScope, s.deleteRule),

		r(http.MethodGet, pMetricSub, ActionMetricAlertRead, subScope, listMetricAlerts),
		r(http.MethodGet, pMetricRG, ActionMetricAlertRead, rgScope, listMetricAlerts),
		r(http.MethodGet, pMetric, ActionMetricAlertRead, metricAlertScope, getMetricAlert),
		r(http.MethodPut, pMetric, ActionMetricAlertWrite, metricAlertScope, s.putMetricAlert),
		r(http.MethodPatch, pMetric, ActionMetricAlertWrite, metricAlertScope, s.patchMetricAlert),
		r(http.MethodDelete, pMetric, ActionMetricAlertDelete, metricAlertScope, s.deleteMetricAlert),

		r(http.MethodGet, pActLogSub, ActionActivityLogAlertRead, subScope, listActivityAlerts),
		r(http.MethodGet, pActLogRG, ActionActivityLogAlertRead, rgScope, listActivityAlerts),
		r(http.MethodGet, pActLog, ActionActivityLogAlertRead, activityAlertScope, getActivityAlert),
		r(http.MethodPut, pActLog, ActionActivityLogAlertWrite, activityAlertScope, s.putActivityAlert),
		r(http.MethodPatch, pActLog, ActionActivityLogAlertWrite, activityAlertScope, s.patchActivityAlert),
		r(http.MethodDelete, pActLog, ActionActivityLogAlertDelete, activityAlertScope, s.deleteActivityAlert),

		r(http.MethodGet, pGroupsSub, rbac.ActionActionGroupRead, subScope, listGroups),
		r(http.MethodGet, pGroupsRG, rbac.ActionActionGroupRead, rgScope, listGroups),
		r(http.MethodGet, pGroup, rbac.ActionActionGroupRead, groupScope, getGroup),
		r(http.MethodPut, pGroup, rbac.ActionActionGroupWrite, groupScope, s.putGroup),
		r(http.MethodDelete, pGroup, rbac.ActionActionGroupDelete, groupScope, s.deleteGroup),
		// Test notifications need write on the group: they send to its receivers.
		r(http.MethodPost, pGroup+"/createNotifications", rbac.ActionActionGroupWrite, groupScope, s.createNotifications),
		r(http.MethodGet, pGroup+"/notificationStatus/{notificationId}", rbac.ActionActionGroupRead, groupScope, s.notificationStatus),

		r(http.MethodGet, pARulesSub, ActionActionRuleRead, subScope, listActionRules),
		r(http.MethodGet, pARulesRG, ActionActionRuleRead, rgScope, listActionRules),
		r(http.MethodGet, pARule, ActionActionRuleRead, actionRuleScope, getActionRule),
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

// The request and response helpers below are this package's short names for
// the ARM conventions shared with internal/arm.

func (s *Service) wrap(h handler) api.HandlerFunc { return arm.Handle(s.log, h) }

func precondition(r *http.Request) catalog.Precondition { return arm.RequestPrecondition(r) }

func actor(r *http.Request) catalog.Actor { return arm.RequestActor(r) }

type systemData = arm.SystemData

func toSystemData(a catalog.Audit) *systemData { return arm.NewSystemData(a) }

type list[T any] = arm.List[T]

func writeJSON(w http.ResponseWriter, status int, etag string, v any) {
	arm.WriteJSON(w, status, etag, v)
}

func writePut(w http.ResponseWriter, created bool, etag string, v any) {
	arm.WritePut(w, created, etag, v)
}

func writeDelete(w http.ResponseWriter, deleted bool) { arm.WriteDelete(w, deleted) }
