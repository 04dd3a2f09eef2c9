package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"custos/internal/arm"
	"custos/internal/catalog"
)

// Monitor conditions and user states of an alert.
const (
	ConditionFired    = "Fired"
	ConditionResolved = "Resolved"

	StateNew          = "New"
	StateAcknowledged = "Acknowledged"
	StateClosed       = "Closed"

	monitoringService       = "Log Alerts V2"
	monitoringServiceMetric = "Platform"
	receiverWebhook         = "webhook"
	receiverEmail           = "email"
	systemActor             = "System"
)

// CommonAlertSchema is the notification payload (Azure's common alert
// schema, schemaId azureMonitorCommonAlertSchema).
type CommonAlertSchema struct {
	SchemaID string          `json:"schemaId"`
	Data     CommonAlertData `json:"data"`
}

// CommonAlertData is the data object of the common alert schema.
type CommonAlertData struct {
	Essentials       Essentials        `json:"essentials"`
	AlertContext     AlertContext      `json:"alertContext"`
	CustomProperties map[string]string `json:"customProperties"`
}

// AlertContext is the alertContext of the common alert schema, whose shape
// depends on the monitoring service: a log search alert's LogQueryCriteria
// (the embedded LogAlertContext), a metric alert's criteria (Metric), or
// an activity log event (Activity). Exactly one is encoded.
type AlertContext struct {
	LogAlertContext
	Metric   *MetricAlertContext
	Activity *ActivityAlertContext
}

// MarshalJSON encodes the context that is set.
func (c AlertContext) MarshalJSON() ([]byte, error) {
	switch {
	case c.Metric != nil:
		return json.Marshal(c.Metric)
	case c.Activity != nil:
		return json.Marshal(c.Activity)
	}
	return json.Marshal(c.LogAlertContext)
}

// UnmarshalJSON decodes a context by its conditionType (metric and log
// alerts) or its eventSource (activity log alerts).
func (c *AlertContext) UnmarshalJSON(b []byte) error {
	var probe struct {
		ConditionType string          `json:"conditionType"`
		EventSource   json.RawMessage `json:"eventSource"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return err
	}
	*c = AlertContext{}
	switch {
	case probe.ConditionType == conditionSingleResource || probe.ConditionType == conditionMultipleResource:
		c.Metric = &MetricAlertContext{}
		return json.Unmarshal(b, c.Metric)
	case probe.ConditionType == "" && probe.EventSource != nil:
		c.Activity = &ActivityAlertContext{}
		return json.Unmarshal(b, c.Activity)
	}
	return json.Unmarshal(b, &c.LogAlertContext)
}

// Metric alert condition types of the common alert schema.
const (
	conditionSingleResource   = "SingleResourceMultipleMetricCriteria"
	conditionMultipleResource = "MultipleResourceMultipleMetricCriteria"
)

// MetricAlertContext is the alertContext of a metric alert.
type MetricAlertContext struct {
	Properties    map[string]string `json:"properties"`
	ConditionType string            `json:"conditionType"`
	Condition     MetricCondition   `json:"condition"`
}

// MetricCondition is the condition of a metric alert context.
type MetricCondition struct {
	WindowSize      string                `json:"windowSize"`
	AllOf           []MetricConditionItem `json:"allOf"`
	WindowStartTime string                `json:"windowStartTime"`
	WindowEndTime   string                `json:"windowEndTime"`
}

// MetricConditionItem is one criterion of a metric alert with its value
// (null when the metric had no data in the window).
type MetricConditionItem struct {
	MetricName      string     `json:"metricName"`
	MetricNamespace string     `json:"metricNamespace"`
	Operator        string     `json:"operator"`
	Threshold       string     `json:"threshold"`
	TimeAggregation string     `json:"timeAggregation"`
	Dimensions      []dimValue `json:"dimensions"`
	MetricValue     *float64   `json:"metricValue"`
	WebTestName     *string    `json:"webTestName"`
}

// Essentials is the essentials object of the common alert schema.
type Essentials struct {
	AlertID             string   `json:"alertId"`
	AlertRule           string   `json:"alertRule"`
	Severity            string   `json:"severity"`
	SignalType          string   `json:"signalType"`
	MonitorCondition    string   `json:"monitorCondition"`
	MonitoringService   string   `json:"monitoringService"`
	AlertTargetIDs      []string `json:"alertTargetIDs"`
	ConfigurationItems  []string `json:"configurationItems"`
	OriginAlertID       string   `json:"originAlertId"`
	FiredDateTime       string   `json:"firedDateTime"`
	ResolvedDateTime    string   `json:"resolvedDateTime,omitempty"`
	Description         string   `json:"description"`
	EssentialsVersion   string   `json:"essentialsVersion"`
	AlertContextVersion string   `json:"alertContextVersion"`
	AlertRuleID         string   `json:"alertRuleID"`
	TargetResourceGroup string   `json:"targetResourceGroup,omitempty"`
	TargetResourceType  string   `json:"targetResourceType,omitempty"`
	InvestigationLink   string   `json:"investigationLink,omitempty"`
}

// LogAlertContext is the alertContext of a log search alert.
type LogAlertContext struct {
	Properties    map[string]string `json:"properties"`
	ConditionType string            `json:"conditionType"`
	Condition     LogCondition      `json:"condition"`
}

// LogCondition is the condition of a LogQueryCriteria context.
type LogCondition struct {
	WindowSize      string             `json:"windowSize"`
	AllOf           []LogConditionItem `json:"allOf"`
	WindowStartTime string             `json:"windowStartTime"`
	WindowEndTime   string             `json:"windowEndTime"`
}

// LogConditionItem is one criterion with its evaluated value.
type LogConditionItem struct {
	SearchQuery                    string          `json:"searchQuery"`
	MetricMeasureColumn            string          `json:"metricMeasureColumn"`
	TargetResourceTypes            string          `json:"targetResourceTypes"`
	Operator                       string          `json:"operator"`
	Threshold                      string          `json:"threshold"`
	TimeAggregation                string          `json:"timeAggregation"`
	Dimensions                     []dimValue      `json:"dimensions"`
	MetricValue                    float64         `json:"metricValue"`
	FailingPeriods                 *failingPeriods `json:"failingPeriods"`
	LinkToSearchResultsUI          string          `json:"linkToSearchResultsUI"`
	LinkToFilteredSearchResultsUI  string          `json:"linkToFilteredSearchResultsUI"`
	LinkToSearchResultsAPI         string          `json:"linkToSearchResultsAPI"`
	LinkToFilteredSearchResultsAPI string          `json:"linkToFilteredSearchResultsAPI"`
}

// alertDoc is what the catalog keeps of an alert: the payload of its latest
// event and the ARM view's extra fields.
type alertDoc struct {
	Payload          CommonAlertSchema `json:"payload,omitzero"`
	SealedPayload    *sealedContent    `json:"sealedPayload,omitempty"` // Payload, sealed under its workspace's key
	TargetResource   string            `json:"targetResource"`
	TargetName       string            `json:"targetResourceName"`
	ResolvedAt       time.Time         `json:"resolvedAt,omitzero"`
	LastModifiedBy   string            `json:"lastModifiedBy"`
	ActionSuppressed bool              `json:"actionSuppressed"`
}

// historyEvent is one modification of an alert, as the history API shows it.
type historyEvent struct {
	Event       string `json:"event"`
	OldValue    string `json:"oldValue"`
	NewValue    string `json:"newValue"`
	ModifiedAt  string `json:"modifiedAt"`
	ModifiedBy  string `json:"modifiedBy"`
	Comments    string `json:"comments"`
	Description string `json:"description"`
}

func historyOf(event, oldV, newV, by, desc string, at time.Time) json.RawMessage {
	b, _ := json.Marshal(historyEvent{Event: event, OldValue: oldV, NewValue: newV, ModifiedAt: arm.WireTime(at), ModifiedBy: by, Description: desc})
	return b
}

// alertResourceID is the ARM ID of an alert instance.
func alertResourceID(sub, id string) string {
	return "/subscriptions/" + sub + "/providers/Microsoft.AlertsManagement/alerts/" + id
}

// buildEvents turns the series events of one evaluation into alert records,
// history and notifications on the commit.
func (s *Service) buildEvents(ctx context.Context, r *rule, st *ruleState, events []alertEvent, wss []catalog.Workspace,
	start, end time.Time, commit *catalog.EvaluationCommit) error {
	now := s.now().UTC()
	groups := s.loadActionGroups(ctx, r)
	for _, ev := range events {
		condition := ConditionFired
		if ev.resolved {
			condition = ConditionResolved
		}
		rec := catalog.AlertRecord{ID: ev.ser.AlertID, SubscriptionID: r.SubscriptionID, RuleID: r.ID, SeriesKey: seriesRef(ev.key),
			MonitorCondition: condition, AlertState: StateNew, Severity: severityName(r.Severity), FiredAt: ev.ser.FiredAt, ModifiedAt: now}
		doc := alertDoc{LastModifiedBy: systemActor}
		if ev.resolved {
			old, err := s.cat.Alert(ctx, r.SubscriptionID, ev.ser.AlertID)
			switch {
			case err == nil:
				rec.AlertState = old.AlertState
				rec.FiredAt = old.FiredAt
				_ = json.Unmarshal(old.Doc, &doc)
			case errors.Is(err, catalog.ErrNotFound):
			default:
				return err
			}
			doc.ResolvedAt = end
		}
		doc.SealedPayload = nil
		doc.Payload = s.payload(r, ev.ser, condition, wss, start, end, rec.FiredAt, doc.ResolvedAt)
		contentWS := ""
		for i := range wss {
			if contentWS == "" || strings.EqualFold(wss[i].ID(), ev.ser.Target) {
				contentWS = wss[i].CustomerID
			}
		}
		if len(wss) > 0 {
			doc.TargetResource, doc.TargetName = wss[0].ID(), wss[0].Name
		}
		if ev.ser.Target != "" {
			for i := range wss {
				if strings.EqualFold(wss[i].ID(), ev.ser.Target) {
					doc.TargetResource, doc.TargetName = wss[i].ID(), wss[i].Name
				}
			}
		}
		plain, err := json.Marshal(doc.Payload)
		if err != nil {
			return fmt.Errorf("encode alert payload: %w", err)
		}
		payload, err := s.sealPayload(ctx, contentWS, plain, rec.ID)
		if err != nil {
			return err
		}
		hist := []catalog.AlertHistoryEvent{}
		if ev.resolved {
			hist = append(hist, catalog.AlertHistoryEvent{AlertID: rec.ID, At: now,
				Event: historyOf("MonitorConditionChange", ConditionFired, ConditionResolved, systemActor, "Monitor condition changed to Resolved", now)})
		} else {
			hist = append(hist, catalog.AlertHistoryEvent{AlertID: rec.ID, At: now,
				Event: historyOf("AlertCreated", "", "", systemActor, "Alert fired", now)})
		}
		muted := !ev.resolved && r.Mute > 0 && end.Before(st.MutedUntil)
		proc := s.applyProcessingRules(ctx, r, &doc.Payload, end) // the schedule applies at the event time
		var ns []catalog.Notification
		if !muted && proc.suppressedBy == "" {
			evGroups := groups
			if len(proc.addGroups) > 0 {
				evGroups = append(append([]*actionGroup(nil), groups...), s.loadGroups(ctx, r, proc.addGroups, groups)...)
			}
			ns = s.notificationsFor(r, rec.ID, condition, evGroups, payload, now)
			if !ev.resolved && r.Mute > 0 && len(ns) > 0 {
				st.MutedUntil = end.Add(r.Mute)
			}
		}
		switch {
		case proc.suppressedBy != "":
			doc.ActionSuppressed = true
			hist = append(hist, catalog.AlertHistoryEvent{AlertID: rec.ID, At: now,
				Event: historyOf("ActionsSuppressed", "", "", systemActor, "Actions suppressed by alert processing rule "+proc.suppressedBy, now)})
		case muted:
			doc.ActionSuppressed = true
			hist = append(hist, catalog.AlertHistoryEvent{AlertID: rec.ID, At: now,
				Event: historyOf("ActionsSuppressed", "", "", systemActor, "Actions muted until "+arm.WireTime(st.MutedUntil)+" (muteActionsDuration)", now)})
		case len(ns) > 0:
			hist = append(hist, catalog.AlertHistoryEvent{AlertID: rec.ID, At: now,
				Event: historyOf("ActionsTriggered", "", strconv.Itoa(len(ns)), systemActor, "Notifications queued", now)})
		}
		if contentWS != "" {
			if doc.SealedPayload, err = s.seal(ctx, contentWS, plain, payloadAAD(rec.ID)); err != nil {
				return err
			}
			if doc.SealedPayload != nil {
				doc.Payload = CommonAlertSchema{}
			}
		}
		rec.Doc, err = json.Marshal(doc)
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		commit.Alerts = append(commit.Alerts, rec)
		commit.History = append(commit.History, hist...)
		commit.Notifications = append(commit.Notifications, ns...)
	}
	return nil
}

// loadActionGroups reads the rule's action groups; missing or invalid ones
// are logged and skipped (the rule still fires).
func (s *Service) loadActionGroups(ctx context.Context, r *rule) []*actionGroup {
	if r.Props.Actions == nil {
		return nil
	}
	return s.loadGroups(ctx, r, r.Props.Actions.ActionGroups, nil)
}

// loadGroups reads the enabled action groups with the given IDs, skipping
// those already in have.
func (s *Service) loadGroups(ctx context.Context, r *rule, ids []string, have []*actionGroup) []*actionGroup {
	var out []*actionGroup
	seen := map[string]bool{}
	for _, g := range have {
		seen[strings.ToLower(g.ID)] = true
	}
	for _, id := range ids {
		if seen[strings.ToLower(id)] {
			continue
		}
		seen[strings.ToLower(id)] = true
		res, err := s.cat.AlertResourceByID(ctx, id)
		if err == nil && res.Type != catalog.TypeActionGroup {
			err = catalog.ErrNotFound
		}
		var g *actionGroup
		if err == nil {
			g, err = parseActionGroup(&res)
		}
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "alert rule action group unavailable", slog.String("rule_id", r.ID),
				slog.String("action_group_id", id), slog.Any("error", err))
			continue
		}
		if g.Enabled {
			out = append(out, g)
		}
	}
	return out
}

func (s *Service) notificationsFor(r *rule, alertID, condition string, groups []*actionGroup, payload []byte, now time.Time) []catalog.Notification {
	var out []catalog.Notification
	add := func(g *actionGroup, typ, name string) {
		out = append(out, catalog.Notification{
			ID: notificationID(alertID, condition, g.ID, typ, name), AlertID: alertID, SubscriptionID: r.SubscriptionID,
			ReceiverType: typ, ActionGroupID: g.ID, Receiver: name, Status: catalog.NotificationPending,
			NextAttemptAt: now, CreatedAt: now, Payload: payload,
		})
	}
	for _, g := range groups {
		for _, w := range g.Props.WebhookReceivers {
			add(g, receiverWebhook, w.Name)
		}
		for _, e := range g.Props.EmailReceivers {
			add(g, receiverEmail, e.Name)
		}
	}
	return out
}

// payload builds the common alert schema for one series event.
func (s *Service) payload(r *rule, ser *seriesState, condition string, wss []catalog.Workspace, start, end, firedAt, resolvedAt time.Time) CommonAlertSchema {
	if r.Metric != nil {
		return s.metricPayload(r, ser, condition, wss, start, end, firedAt, resolvedAt)
	}
	return s.logPayload(r, ser, condition, wss, start, end, firedAt, resolvedAt)
}

// metricPayload builds the common alert schema of a metric alert event.
func (s *Service) metricPayload(r *rule, ser *seriesState, condition string, wss []catalog.Workspace, start, end, firedAt, resolvedAt time.Time) CommonAlertSchema {
	target := ser.Target
	if target == "" && len(r.Props.Scopes) > 0 {
		target = r.Props.Scopes[0]
	}
	var ws *catalog.Workspace
	for i := range wss {
		if strings.EqualFold(wss[i].ID(), target) {
			ws = &wss[i]
		}
	}
	items := configurationItems(ser.Dims)
	rg := ""
	if _, g, name, ok := catalog.ParseWorkspaceResourceID(target); ok {
		rg = g
		if len(items) == 0 {
			items = []string{name}
		}
	}
	if ws != nil {
		rg = ws.ResourceGroup
	}
	custom := map[string]string{}
	if r.Props.Actions != nil && r.Props.Actions.CustomProperties != nil {
		custom = r.Props.Actions.CustomProperties
	}
	ct := conditionSingleResource
	if r.Metric.ODataType == CriteriaMultipleResource {
		ct = conditionMultipleResource
	}
	var allOf []MetricConditionItem
	for i := range r.Metric.Criteria {
		c := &r.Metric.Criteria[i]
		it := MetricConditionItem{MetricName: c.MetricName, MetricNamespace: c.MetricNamespace, Operator: c.Operator,
			Threshold: strconv.FormatFloat(*c.Threshold, 'f', -1, 64), TimeAggregation: c.TimeAggregation,
			Dimensions: criterionDims(c, ser.Dims)}
		if i < len(ser.Values) {
			v := ser.Values[i]
			it.MetricValue = &v
		}
		allOf = append(allOf, it)
	}
	resolved := ""
	if condition == ConditionResolved {
		resolved = arm.WireTime(resolvedAt)
	}
	return CommonAlertSchema{
		SchemaID: "azureMonitorCommonAlertSchema",
		Data: CommonAlertData{
			Essentials: Essentials{
				AlertID: alertResourceID(r.SubscriptionID, ser.AlertID), AlertRule: r.Name, Severity: severityName(r.Severity),
				SignalType: "Metric", MonitorCondition: condition, MonitoringService: monitoringServiceMetric,
				AlertTargetIDs: []string{strings.ToLower(target)}, ConfigurationItems: items, OriginAlertID: ser.AlertID,
				FiredDateTime: arm.WireTime(firedAt), ResolvedDateTime: resolved, Description: r.Props.Description,
				EssentialsVersion: "1.0", AlertContextVersion: "1.0", AlertRuleID: r.ID,
				TargetResourceGroup: rg, TargetResourceType: strings.ToLower(workspaceType),
			},
			AlertContext: AlertContext{Metric: &MetricAlertContext{
				ConditionType: ct,
				Condition: MetricCondition{WindowSize: FormatISODuration(r.Window), AllOf: allOf,
					WindowStartTime: arm.WireTime(start), WindowEndTime: arm.WireTime(end)},
			}},
			CustomProperties: custom,
		},
	}
}

// configurationItems picks the configuration item of a series from its
// dimensions, in Azure's order of preference.
func configurationItems(dims []dimValue) []string {
	var items []string
	for _, pref := range []string{"_ResourceId", "ResourceId", "Resource", "Computer"} {
		for _, d := range dims {
			if d.Name == pref && d.Value != "" {
				items = append(items, d.Value)
			}
		}
		if len(items) > 0 {
			break
		}
	}
	return items
}

// logPayload builds the common alert schema of a log search alert event.
func (s *Service) logPayload(r *rule, ser *seriesState, condition string, wss []catalog.Workspace, start, end, firedAt, resolvedAt time.Time) CommonAlertSchema {
	targets := make([]string, 0, len(r.Props.Scopes))
	for _, sc := range r.Props.Scopes {
		targets = append(targets, strings.ToLower(sc))
	}
	items := configurationItems(ser.Dims)
	rg := ""
	if len(wss) > 0 {
		rg = wss[0].ResourceGroup
		if len(items) == 0 {
			items = []string{wss[0].Name}
		}
	}
	if items == nil {
		items = []string{}
	}
	custom := map[string]string{}
	if r.Props.Actions != nil && r.Props.Actions.CustomProperties != nil {
		custom = r.Props.Actions.CustomProperties
	}
	dims := ser.Dims
	if dims == nil {
		dims = []dimValue{}
	}
	fp := &failingPeriods{NumberOfEvaluationPeriods: int64(r.Periods), MinFailingPeriodsToAlert: int64(r.MinFailing)}
	link, filtered := s.searchLinks(r, wss, ser.Dims, start, end)
	resolved := ""
	if condition == ConditionResolved {
		resolved = arm.WireTime(resolvedAt)
	}
	return CommonAlertSchema{
		SchemaID: "azureMonitorCommonAlertSchema",
		Data: CommonAlertData{
			Essentials: Essentials{
				AlertID: alertResourceID(r.SubscriptionID, ser.AlertID), AlertRule: r.Name, Severity: severityName(r.Severity),
				SignalType: "Log", MonitorCondition: condition, MonitoringService: monitoringService,
				AlertTargetIDs: targets, ConfigurationItems: items, OriginAlertID: ser.AlertID,
				FiredDateTime: arm.WireTime(firedAt), ResolvedDateTime: resolved, Description: r.Props.Description,
				EssentialsVersion: "1.0", AlertContextVersion: "1.0", AlertRuleID: r.ID,
				TargetResourceGroup: rg, TargetResourceType: "microsoft.operationalinsights/workspaces",
			},
			AlertContext: AlertContext{LogAlertContext: LogAlertContext{
				Properties: custom, ConditionType: "LogQueryCriteria",
				Condition: LogCondition{
					WindowSize: FormatISODuration(r.Window),
					AllOf: []LogConditionItem{{
						SearchQuery: r.Crit.Query, MetricMeasureColumn: r.Crit.MetricMeasureColumn,
						TargetResourceTypes: "['Microsoft.OperationalInsights/workspaces']", Operator: r.Crit.Operator,
						Threshold: strconv.FormatFloat(*r.Crit.Threshold, 'f', -1, 64), TimeAggregation: r.Crit.TimeAggregation,
						Dimensions: dims, MetricValue: ser.LastValue, FailingPeriods: fp,
						LinkToSearchResultsUI: link, LinkToFilteredSearchResultsUI: filtered,
						LinkToSearchResultsAPI: link, LinkToFilteredSearchResultsAPI: filtered,
					}},
					WindowStartTime: arm.WireTime(start), WindowEndTime: arm.WireTime(end),
				},
			}},
			CustomProperties: custom,
		},
	}
}

// searchLinks are Log Analytics Query API URLs on this server for the
// rule's query over the window, unfiltered and filtered to the series'
// dimension values. Custos has no portal, so the UI links are the same.
func (s *Service) searchLinks(r *rule, wss []catalog.Workspace, dims []dimValue, start, end time.Time) (string, string) {
	if s.opts.Endpoint == "" || len(wss) == 0 {
		return "", ""
	}
	base := s.opts.Endpoint + "/v1/workspaces/" + url.PathEscape(wss[0].CustomerID) + "/query"
	ts := start.UTC().Format(time.RFC3339) + "/" + end.UTC().Format(time.RFC3339)
	q := url.Values{"query": {r.Crit.Query}, "timespan": {ts}}
	link := base + "?" + q.Encode()
	if len(dims) == 0 {
		return link, link
	}
	var b strings.Builder
	b.WriteString(r.Crit.Query)
	for _, d := range dims {
		fmt.Fprintf(&b, "\n| where tostring(['%s']) == '%s'", kqlEscape(d.Name), kqlEscape(d.Value))
	}
	q.Set("query", b.String())
	return link, base + "?" + q.Encode()
}

func kqlEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`).Replace(s)
}
