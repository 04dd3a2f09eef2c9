package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"custos/internal/activity"
	"custos/internal/arm"
	"custos/internal/catalog"
)

// Activity log alert fields Custos evaluates: the activity record's own
// fields and "properties.<name>" for its properties.
var activityFields = map[string]bool{
	"category": true, "operationname": true, "resourcegroup": true, "resourceprovider": true, "resourcetype": true,
	"resourceid": true, "status": true, "substatus": true, "caller": true, "level": true,
	"authorization.action": true, "authorization.scope": true, "correlationid": true,
}

// Limits on activity log alert rules (Azure's).
const (
	maxActivityScopes     = 50
	maxActivityConditions = 10
	maxActivityAnyOf      = 50
	maxActivityValue      = 1024
	activityBatch         = 500
)

// activityAlertProperties is the properties object of a
// Microsoft.Insights/activityLogAlerts resource (api-version 2020-10-01).
type activityAlertProperties struct {
	Scopes           []string           `json:"scopes"`
	Condition        *activityCondition `json:"condition"`
	Actions          *activityActions   `json:"actions"`
	Enabled          *bool              `json:"enabled,omitempty"`
	Description      string             `json:"description,omitempty"`
	TenantScope      string             `json:"tenantScope,omitempty"`
	EvaluationStatus *activityStatus    `json:"evaluationStatus,omitempty"`
}

type activityCondition struct {
	AllOf []activityAnyOfOrLeaf `json:"allOf"`
}

// activityAnyOfOrLeaf is a leaf (field with equals or containsAny) or an
// anyOf of leaves.
type activityAnyOfOrLeaf struct {
	Field       string         `json:"field,omitempty"`
	Equals      *string        `json:"equals,omitempty"`
	ContainsAny []string       `json:"containsAny,omitempty"`
	AnyOf       []activityLeaf `json:"anyOf,omitempty"`
}

type activityLeaf struct {
	Field       string   `json:"field"`
	Equals      *string  `json:"equals,omitempty"`
	ContainsAny []string `json:"containsAny,omitempty"`
}

type activityActions struct {
	ActionGroups []activityActionGroup `json:"actionGroups"`
}

type activityActionGroup struct {
	ActionGroupID     string            `json:"actionGroupId"`
	WebhookProperties map[string]string `json:"webhookProperties,omitempty"`
}

// activityStatus reports the evaluator's position (read-only Custos
// extension).
type activityStatus struct {
	State            string `json:"state"` // "Enabled" | "Disabled"
	EvaluatedThrough int64  `json:"evaluatedThroughSequence"`
}

// activityRule is a validated activity log alert rule.
type activityRule struct {
	rule // ID, names, Props (scopes, description, action groups), Created
	cond []activityAnyOfOrLeaf
}

func parseActivityRule(res *catalog.AlertResource) (*activityRule, error) {
	var p activityAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, fmt.Errorf("decode stored activity log alert %s: %w", res.Name, err)
	}
	ar := &activityRule{rule: rule{ID: res.ID(), Type: catalog.TypeActivityLogAlert, SubscriptionID: res.SubscriptionID,
		ResourceGroup: res.ResourceGroup, Name: res.Name, Location: res.Location, ETag: res.ETag, Created: res.Audit.CreatedAt}}
	if err := ar.validate(&p); err != nil {
		return nil, err
	}
	return ar, nil
}

func (ar *activityRule) validate(p *activityAlertProperties) error {
	ar.Enabled = p.Enabled == nil || *p.Enabled
	ar.Severity = 4 // activity log alerts are Sev4 in the common alert schema
	if len(p.Scopes) == 0 || len(p.Scopes) > maxActivityScopes {
		return invalid("properties.scopes", "An activity log alert needs 1 to %d scopes.", maxActivityScopes)
	}
	for i, sc := range p.Scopes {
		sub, ok := scopeSubscription(sc)
		if !ok {
			return invalid(fmt.Sprintf("properties.scopes[%d]", i),
				"The scope '%s' is invalid: it must be a subscription, resource group or resource ID.", truncate(sc, 300))
		}
		if !strings.EqualFold(sub, ar.SubscriptionID) {
			return invalid(fmt.Sprintf("properties.scopes[%d]", i),
				"The scope '%s' is not in the subscription of the alert rule.", truncate(sc, 300))
		}
	}
	if p.Condition == nil || len(p.Condition.AllOf) == 0 || len(p.Condition.AllOf) > maxActivityConditions {
		return invalid("properties.condition.allOf", "An activity log alert needs 1 to %d conditions in condition.allOf.", maxActivityConditions)
	}
	for i, c := range p.Condition.AllOf {
		t := fmt.Sprintf("properties.condition.allOf[%d]", i)
		if len(c.AnyOf) > 0 {
			if c.Field != "" || c.Equals != nil || len(c.ContainsAny) > 0 {
				return invalid(t, "A condition has either anyOf or a field with equals or containsAny, not both.")
			}
			if len(c.AnyOf) > maxActivityAnyOf {
				return invalid(t+".anyOf", "anyOf may hold at most %d conditions.", maxActivityAnyOf)
			}
			for j, l := range c.AnyOf {
				if err := validateActivityLeaf(l.Field, l.Equals, l.ContainsAny, fmt.Sprintf("%s.anyOf[%d]", t, j)); err != nil {
					return err
				}
			}
			continue
		}
		if err := validateActivityLeaf(c.Field, c.Equals, c.ContainsAny, t); err != nil {
			return err
		}
	}
	ar.cond = p.Condition.AllOf
	ar.Props = ruleProperties{Description: p.Description, Scopes: p.Scopes, Enabled: p.Enabled}
	if p.Actions != nil && len(p.Actions.ActionGroups) > 0 {
		if len(p.Actions.ActionGroups) > maxActionGroups {
			return invalid("properties.actions.actionGroups", "A rule may name at most %d action groups.", maxActionGroups)
		}
		acts := &ruleActions{CustomProperties: map[string]string{}}
		for i, g := range p.Actions.ActionGroups {
			if _, _, _, ok := parseActionGroupID(g.ActionGroupID); !ok {
				return invalid(fmt.Sprintf("properties.actions.actionGroups[%d].actionGroupId", i),
					"'%s' is not an action group resource ID.", truncate(g.ActionGroupID, 300))
			}
			acts.ActionGroups = append(acts.ActionGroups, g.ActionGroupID)
			for k, v := range g.WebhookProperties {
				acts.CustomProperties[k] = v
			}
		}
		ar.Props.Actions = acts
	}
	return nil
}

func validateActivityLeaf(field string, equals *string, containsAny []string, t string) error {
	f := strings.ToLower(field)
	if !activityFields[f] && !(strings.HasPrefix(f, "properties.") && len(f) > len("properties.")) {
		return invalid(t+".field", "The field '%s' is not supported. Use one of category, operationName, resourceGroup, resourceProvider, resourceType, resourceId, status, subStatus, caller, level, correlationId, authorization.action, authorization.scope or properties.<name>.",
			truncate(field, 100))
	}
	if (equals == nil) == (len(containsAny) == 0) {
		return invalid(t, "A condition on '%s' needs exactly one of equals and containsAny.", truncate(field, 100))
	}
	if equals != nil && len(*equals) > maxActivityValue {
		return invalid(t+".equals", "The value is longer than %d characters.", maxActivityValue)
	}
	if len(containsAny) > maxActivityAnyOf {
		return invalid(t+".containsAny", "containsAny may hold at most %d values.", maxActivityAnyOf)
	}
	for _, v := range containsAny {
		if len(v) > maxActivityValue {
			return invalid(t+".containsAny", "A value is longer than %d characters.", maxActivityValue)
		}
	}
	return nil
}

// scopeSubscription returns the subscription of a subscription, resource
// group or resource ID.
func scopeSubscription(scope string) (string, bool) {
	p := strings.Split(strings.TrimSuffix(scope, "/"), "/")
	if len(p) < 3 || p[0] != "" || !strings.EqualFold(p[1], "subscriptions") || p[2] == "" {
		return "", false
	}
	for _, x := range p[1:] {
		if x == "" {
			return "", false
		}
	}
	return p[2], true
}

// activityEvent is an activity record with the fields conditions test.
type activityEvent struct {
	seq    int64
	rec    activity.Record
	fields map[string]string // lower-case field name → value
}

func newActivityEvent(e catalog.ActivityEntry) (*activityEvent, error) {
	var rec activity.Record
	if err := json.Unmarshal(e.Record, &rec); err != nil {
		return nil, fmt.Errorf("decode activity record %d: %w", e.Seq, err)
	}
	rt := resourceTypeOf(rec.OperationName, rec.ResourceID)
	prov, _, _ := strings.Cut(rt, "/")
	f := map[string]string{
		"category": rec.Category, "operationname": rec.OperationName, "resourceid": rec.ResourceID,
		"resourcegroup": resourceGroupOf(rec.ResourceID), "resourcetype": rt, "resourceprovider": prov,
		"status": rec.Status, "substatus": rec.SubStatus, "caller": rec.Caller, "level": rec.Level,
		"authorization.action": rec.Action, "authorization.scope": rec.ResourceID, "correlationid": rec.CorrelationID,
	}
	for k, v := range rec.Properties {
		f["properties."+strings.ToLower(k)] = v
	}
	return &activityEvent{seq: e.Seq, rec: rec, fields: f}, nil
}

// resourceTypeOf derives the resource type of an activity record from its
// operation (as Azure does: "Microsoft.Authorization/roleAssignments/write"
// is about Microsoft.Authorization/roleAssignments), or from its resource
// ID when the operation names none.
func resourceTypeOf(op, resourceID string) string {
	p := strings.Split(op, "/")
	if len(p) >= 3 {
		n := len(p) - 1
		if strings.EqualFold(p[n], "action") && n >= 3 {
			n-- // ".../purge/action": the action name is not a type
		}
		return strings.Join(p[:n], "/")
	}
	seg := strings.Split(strings.Trim(resourceID, "/"), "/")
	for i := len(seg) - 1; i >= 0; i-- {
		if strings.EqualFold(seg[i], "providers") && i+2 < len(seg) {
			return seg[i+1] + "/" + seg[i+2]
		}
	}
	return ""
}

// resourceGroupOf returns the resource group of a resource ID, or "".
func resourceGroupOf(id string) string {
	p := strings.Split(id, "/")
	for i := 0; i+1 < len(p); i++ {
		if strings.EqualFold(p[i], "resourceGroups") {
			return p[i+1]
		}
	}
	return ""
}

// underScope reports whether resource ID id is scope or below it.
func underScope(id, scope string) bool {
	id, scope = strings.ToLower(strings.TrimSuffix(id, "/")), strings.ToLower(strings.TrimSuffix(scope, "/"))
	return id == scope || strings.HasPrefix(id, scope+"/")
}

// matches reports whether the rule selects the event: its resource is in
// one of the scopes and every condition of allOf holds.
func (ar *activityRule) matches(ev *activityEvent) bool {
	in := false
	for _, sc := range ar.Props.Scopes {
		if underScope(ev.rec.ResourceID, sc) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, c := range ar.cond {
		if len(c.AnyOf) > 0 {
			any := false
			for _, l := range c.AnyOf {
				if leafMatches(ev, l.Field, l.Equals, l.ContainsAny) {
					any = true
					break
				}
			}
			if !any {
				return false
			}
			continue
		}
		if !leafMatches(ev, c.Field, c.Equals, c.ContainsAny) {
			return false
		}
	}
	return true
}

// leafMatches compares case-insensitively, as Azure does: equals the whole
// value, containsAny any substring.
func leafMatches(ev *activityEvent, field string, equals *string, containsAny []string) bool {
	v := strings.ToLower(ev.fields[strings.ToLower(field)])
	if equals != nil {
		return v == strings.ToLower(*equals)
	}
	for _, want := range containsAny {
		if strings.Contains(v, strings.ToLower(want)) {
			return true
		}
	}
	return false
}

// ActivityAlertContext is the alertContext of an activity log alert (the
// common alert schema's "Activity Log - Administrative" and "Activity Log -
// Security" contexts).
type ActivityAlertContext struct {
	Authorization       ActivityAuthorization `json:"authorization"`
	Channels            string                `json:"channels"`
	Claims              string                `json:"claims"`
	Caller              string                `json:"caller"`
	CorrelationID       string                `json:"correlationId"`
	EventSource         string                `json:"eventSource"`
	EventTimestamp      string                `json:"eventTimestamp"`
	EventDataID         string                `json:"eventDataId"`
	Level               string                `json:"level"`
	OperationName       string                `json:"operationName"`
	OperationID         string                `json:"operationId"`
	Properties          map[string]string     `json:"properties"`
	Status              string                `json:"status"`
	SubStatus           string                `json:"subStatus"`
	SubmissionTimestamp string                `json:"submissionTimestamp"`
}

// ActivityAuthorization is the RBAC action and scope of the event.
type ActivityAuthorization struct {
	Action string `json:"action"`
	Scope  string `json:"scope"`
}

// activityAlertID derives the alert of one rule and one activity entry, so
// that evaluating the entry again names the same alert.
func activityAlertID(ruleID string, seq int64) string {
	h := sha256.Sum256([]byte("custos/activity-alert/v1\x00" + strings.ToLower(ruleID) + "\x00" + strconv.FormatInt(seq, 10)))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// eventDataID is the activity entry's stable ID in payloads.
func eventDataID(seq int64) string {
	h := sha256.Sum256([]byte("custos/activity/v1\x00" + strconv.FormatInt(seq, 10)))
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func (s *Service) activityPayload(ar *activityRule, ev *activityEvent, alertID string) CommonAlertSchema {
	rec := &ev.rec
	source := rec.Category
	if source == "" {
		source = activity.CategoryAdministrative
	}
	target := strings.ToLower(rec.ResourceID)
	items := []string{}
	if p := strings.Split(strings.TrimSuffix(rec.ResourceID, "/"), "/"); len(p) > 0 && p[len(p)-1] != "" {
		items = append(items, p[len(p)-1])
	}
	props := rec.Properties
	if props == nil {
		props = map[string]string{}
	}
	custom := map[string]string{}
	if ar.Props.Actions != nil {
		custom = ar.Props.Actions.CustomProperties
	}
	claims, _ := json.Marshal(map[string]string{"oid": rec.Caller, "name": rec.CallerName, "ipaddr": rec.CallerIPAddress, "idtyp": rec.CallerType})
	at := arm.WireTime(rec.Time)
	return CommonAlertSchema{
		SchemaID: "azureMonitorCommonAlertSchema",
		Data: CommonAlertData{
			Essentials: Essentials{
				AlertID: alertResourceID(ar.SubscriptionID, alertID), AlertRule: ar.Name, Severity: severityName(ar.Severity),
				SignalType: "Activity Log", MonitorCondition: ConditionFired, MonitoringService: "Activity Log - " + source,
				AlertTargetIDs: []string{target}, ConfigurationItems: items, OriginAlertID: eventDataID(ev.seq),
				FiredDateTime: at, Description: ar.Props.Description, EssentialsVersion: "1.0", AlertContextVersion: "1.0",
				AlertRuleID: ar.ID, TargetResourceGroup: resourceGroupOf(rec.ResourceID),
				TargetResourceType: strings.ToLower(resourceTypeOf(rec.OperationName, rec.ResourceID)),
			},
			AlertContext: AlertContext{Activity: &ActivityAlertContext{
				Authorization: ActivityAuthorization{Action: rec.Action, Scope: rec.ResourceID}, Channels: "Operation",
				Claims: string(claims), Caller: rec.Caller, CorrelationID: rec.CorrelationID, EventSource: source,
				EventTimestamp: at, EventDataID: eventDataID(ev.seq), Level: rec.Level, OperationName: rec.OperationName,
				OperationID: rec.CorrelationID, Properties: props, Status: rec.Status, SubStatus: rec.SubStatus,
				SubmissionTimestamp: at,
			}},
			CustomProperties: custom,
		},
	}
}

// ActivityAppended wakes the activity log alert evaluator. The server calls
// it for every record appended to the activity log (activity.Log.Subscribe).
func (s *Service) ActivityAppended() { wake(s.wakeActivity) }

func (s *Service) activityLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if err := s.ProcessActivity(ctx); err != nil && ctx.Err() == nil {
			s.log.LogAttrs(ctx, slog.LevelWarn, "evaluate activity log alerts", slog.Any("error", err))
		}
		timer.Reset(s.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wakeActivity:
		}
	}
}

// ProcessActivity evaluates the enabled activity log alert rules over the
// activity log entries appended since the last call, and commits the alerts
// and notifications they raise together with the new position, so that an
// entry raises its alerts exactly once across restarts. The first call on a
// new catalog starts at the current end of the log.
func (s *Service) ProcessActivity(ctx context.Context) error {
	s.activityMu.Lock()
	defer s.activityMu.Unlock()
	for round := 0; round < 20; round++ {
		cur, ok, err := s.cat.ActivityAlertCursor(ctx)
		if err != nil {
			return err
		}
		if !ok {
			head, _, err := s.cat.ActivityHead(ctx)
			if err != nil {
				return fmt.Errorf("activity log head: %w", err)
			}
			if err := s.cat.CommitActivityAlerts(ctx, catalog.ActivityAlertCommit{Next: head}); err != nil {
				return err
			}
			cur = head
		}
		entries, err := s.cat.ActivityEntries(ctx, cur, activityBatch)
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		rules, err := s.activityRules(ctx)
		if err != nil {
			return err
		}
		commit := catalog.ActivityAlertCommit{Prev: &cur, Next: entries[len(entries)-1].Seq}
		for _, e := range entries {
			if len(rules) == 0 {
				break
			}
			ev, err := newActivityEvent(e)
			if err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "activity log entry unreadable; skipped by activity log alerts", slog.Int64("seq", e.Seq), slog.Any("error", err))
				continue
			}
			for _, ar := range rules {
				// A rule sees only what happened after it was created.
				if ev.rec.Time.Before(ar.Created) || !ar.matches(ev) {
					continue
				}
				if err := s.activityEvent(ctx, ar, ev, &commit); err != nil {
					return err
				}
			}
		}
		if err := s.cat.CommitActivityAlerts(ctx, commit); err != nil {
			if errors.Is(err, catalog.ErrConflict) {
				continue
			}
			return err
		}
		s.stats.activityEvents.Add(int64(len(entries)))
		s.stats.notificationsMade.Add(int64(len(commit.Notifications)))
		if len(commit.Notifications) > 0 {
			wake(s.wakeDeliver)
		}
		if len(entries) < activityBatch {
			return nil
		}
	}
	return nil
}

// activityRules loads the enabled activity log alert rules.
func (s *Service) activityRules(ctx context.Context) ([]*activityRule, error) {
	all, err := s.cat.AllAlertResources(ctx, catalog.TypeActivityLogAlert)
	if err != nil {
		return nil, err
	}
	var out []*activityRule
	for i := range all {
		ar, err := parseActivityRule(&all[i])
		if err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "stored activity log alert is invalid; not evaluated",
				slog.String("rule_id", all[i].ID()), slog.Any("error", err))
			continue
		}
		if ar.Enabled {
			out = append(out, ar)
		}
	}
	return out, nil
}

// activityEvent adds the alert, history and notifications one matching
// entry raises. Activity log alerts are stateless: each entry fires a new
// alert, which is never resolved.
func (s *Service) activityEvent(ctx context.Context, ar *activityRule, ev *activityEvent, commit *catalog.ActivityAlertCommit) error {
	now := s.now().UTC()
	id := activityAlertID(ar.ID, ev.seq)
	p := s.activityPayload(ar, ev, id)
	rec := catalog.AlertRecord{ID: id, SubscriptionID: ar.SubscriptionID, RuleID: ar.ID, SeriesKey: strconv.FormatInt(ev.seq, 10),
		MonitorCondition: ConditionFired, AlertState: StateNew, Severity: severityName(ar.Severity), FiredAt: ev.rec.Time, ModifiedAt: now}
	doc := alertDoc{LastModifiedBy: systemActor, TargetResource: ev.rec.ResourceID}
	if items := p.Data.Essentials.ConfigurationItems; len(items) > 0 {
		doc.TargetName = items[0]
	}
	hist := []catalog.AlertHistoryEvent{{AlertID: id, At: now, Event: historyOf("AlertCreated", "", "", systemActor, "Alert fired", now)}}
	proc := s.applyProcessingRules(ctx, &ar.rule, &p, ev.rec.Time)
	var ns []catalog.Notification
	if proc.suppressedBy == "" {
		groups := s.loadActionGroups(ctx, &ar.rule)
		if len(proc.addGroups) > 0 {
			groups = append(groups, s.loadGroups(ctx, &ar.rule, proc.addGroups, groups)...)
		}
		payload, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode alert payload: %w", err)
		}
		ns = s.notificationsFor(&ar.rule, id, ConditionFired, groups, payload, now)
	}
	doc.Payload = p
	switch {
	case proc.suppressedBy != "":
		doc.ActionSuppressed = true
		hist = append(hist, catalog.AlertHistoryEvent{AlertID: id, At: now,
			Event: historyOf("ActionsSuppressed", "", "", systemActor, "Actions suppressed by alert processing rule "+proc.suppressedBy, now)})
	case len(ns) > 0:
		hist = append(hist, catalog.AlertHistoryEvent{AlertID: id, At: now,
			Event: historyOf("ActionsTriggered", "", strconv.Itoa(len(ns)), systemActor, "Notifications queued", now)})
	}
	var err error
	if rec.Doc, err = json.Marshal(doc); err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	commit.Alerts = append(commit.Alerts, rec)
	commit.History = append(commit.History, hist...)
	commit.Notifications = append(commit.Notifications, ns...)
	return nil
}
