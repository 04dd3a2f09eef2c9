package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/rbac"
)

// Actions of alert processing rules, as Azure names them.
const (
	ActionActionRuleRead   rbac.Action = "Microsoft.AlertsManagement/actionRules/read"
	ActionActionRuleWrite  rbac.Action = "Microsoft.AlertsManagement/actionRules/write"
	ActionActionRuleDelete rbac.Action = "Microsoft.AlertsManagement/actionRules/delete"
)

const (
	actionRuleTypeWire    = "Microsoft.AlertsManagement/actionRules"
	actionRemoveAllGroups = "RemoveAllActionGroups"
	actionAddGroups       = "AddActionGroups"
	maxActionRuleItems    = 50
)

// actionRuleProperties is the properties object of an alert processing
// rule (Microsoft.AlertsManagement/actionRules, api-version 2021-08-08).
type actionRuleProperties struct {
	Scopes      []string         `json:"scopes"`
	Conditions  []ruleCondition  `json:"conditions,omitempty"`
	Schedule    *ruleSchedule    `json:"schedule,omitempty"`
	Actions     []processingItem `json:"actions"`
	Description string           `json:"description,omitempty"`
	Enabled     *bool            `json:"enabled,omitempty"`
}

type ruleCondition struct {
	Field    string   `json:"field"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

type ruleSchedule struct {
	EffectiveFrom  string       `json:"effectiveFrom,omitempty"`
	EffectiveUntil string       `json:"effectiveUntil,omitempty"`
	TimeZone       string       `json:"timeZone,omitempty"`
	Recurrences    []recurrence `json:"recurrences,omitempty"`
}

type recurrence struct {
	RecurrenceType string   `json:"recurrenceType"` // Daily | Weekly | Monthly
	StartTime      string   `json:"startTime,omitempty"`
	EndTime        string   `json:"endTime,omitempty"`
	DaysOfWeek     []string `json:"daysOfWeek,omitempty"`
	DaysOfMonth    []int    `json:"daysOfMonth,omitempty"`
}

type processingItem struct {
	ActionType     string   `json:"actionType"`
	ActionGroupIDs []string `json:"actionGroupIds,omitempty"`
}

// actionRule is a validated alert processing rule.
type actionRule struct {
	ID      string
	Props   actionRuleProperties
	Enabled bool
	loc     *time.Location
	from    time.Time
	until   time.Time
}

var conditionFields = map[string]bool{
	"AlertRuleId": true, "AlertRuleName": true, "Description": true, "MonitorCondition": true, "MonitorService": true,
	"Severity": true, "SignalType": true, "TargetResource": true, "TargetResourceGroup": true, "TargetResourceType": true,
	"AlertContext": true,
}

var weekdays = map[string]time.Weekday{"Sunday": time.Sunday, "Monday": time.Monday, "Tuesday": time.Tuesday,
	"Wednesday": time.Wednesday, "Thursday": time.Thursday, "Friday": time.Friday, "Saturday": time.Saturday}

func parseActionRule(res *catalog.AlertResource) (*actionRule, error) {
	var p actionRuleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, fmt.Errorf("decode stored action rule %s: %w", res.Name, err)
	}
	ar := &actionRule{ID: res.ID(), Props: p}
	return ar, ar.validate()
}

func (ar *actionRule) validate() error {
	p := &ar.Props
	ar.Enabled = p.Enabled == nil || *p.Enabled
	if len(p.Scopes) == 0 || len(p.Scopes) > maxActionRuleItems {
		return invalid("properties.scopes", "An alert processing rule needs 1 to %d scopes.", maxActionRuleItems)
	}
	for i, sc := range p.Scopes {
		if !strings.HasPrefix(strings.ToLower(sc), "/subscriptions/") || len(sc) > 1024 {
			return invalid(fmt.Sprintf("properties.scopes[%d]", i), "The scope '%s' is not a subscription, resource group or resource ID.", truncate(sc, 300))
		}
	}
	if len(p.Conditions) > maxActionRuleItems {
		return invalid("properties.conditions", "At most %d conditions are allowed.", maxActionRuleItems)
	}
	for i, c := range p.Conditions {
		t := fmt.Sprintf("properties.conditions[%d]", i)
		if !conditionFields[c.Field] {
			return invalid(t+".field", "The condition field '%s' is invalid.", truncate(c.Field, 50))
		}
		switch c.Operator {
		case "Equals", "NotEquals", "Contains", "DoesNotContain":
		default:
			return invalid(t+".operator", "The condition operator '%s' is invalid. It must be Equals, NotEquals, Contains or DoesNotContain.", truncate(c.Operator, 50))
		}
		if len(c.Values) == 0 || len(c.Values) > maxActionRuleItems {
			return invalid(t+".values", "A condition needs 1 to %d values.", maxActionRuleItems)
		}
	}
	if len(p.Actions) != 1 {
		return invalid("properties.actions", "An alert processing rule has exactly one action.")
	}
	switch a := p.Actions[0]; a.ActionType {
	case actionRemoveAllGroups:
		if len(a.ActionGroupIDs) > 0 {
			return invalid("properties.actions[0].actionGroupIds", "RemoveAllActionGroups takes no action groups.")
		}
	case actionAddGroups:
		if len(a.ActionGroupIDs) == 0 || len(a.ActionGroupIDs) > maxActionGroups {
			return invalid("properties.actions[0].actionGroupIds", "AddActionGroups needs 1 to %d action groups.", maxActionGroups)
		}
		for i, id := range a.ActionGroupIDs {
			if _, _, _, ok := parseActionGroupID(id); !ok {
				return invalid(fmt.Sprintf("properties.actions[0].actionGroupIds[%d]", i), "'%s' is not an action group resource ID.", truncate(id, 300))
			}
		}
	default:
		return invalid("properties.actions[0].actionType", "The action type '%s' is invalid. It must be AddActionGroups or RemoveAllActionGroups.", truncate(a.ActionType, 50))
	}
	ar.loc = time.UTC
	if s := p.Schedule; s != nil {
		if s.TimeZone != "" {
			loc, err := time.LoadLocation(s.TimeZone)
			if err != nil {
				return invalid("properties.schedule.timeZone", "The time zone '%s' is unknown; use an IANA name such as 'Europe/Berlin' or 'UTC'.", truncate(s.TimeZone, 64))
			}
			ar.loc = loc
		}
		var err error
		if ar.from, err = parseLocalTime(s.EffectiveFrom, ar.loc); err != nil {
			return invalid("properties.schedule.effectiveFrom", "effectiveFrom must look like 2024-01-31T22:00:00.")
		}
		if ar.until, err = parseLocalTime(s.EffectiveUntil, ar.loc); err != nil {
			return invalid("properties.schedule.effectiveUntil", "effectiveUntil must look like 2024-01-31T22:00:00.")
		}
		if !ar.from.IsZero() && !ar.until.IsZero() && !ar.until.After(ar.from) {
			return invalid("properties.schedule.effectiveUntil", "effectiveUntil must be after effectiveFrom.")
		}
		for i, r := range s.Recurrences {
			t := fmt.Sprintf("properties.schedule.recurrences[%d]", i)
			if _, err := parseClock(r.StartTime); err != nil {
				return invalid(t+".startTime", "startTime must look like 22:00:00.")
			}
			if _, err := parseClock(r.EndTime); err != nil {
				return invalid(t+".endTime", "endTime must look like 04:00:00.")
			}
			switch r.RecurrenceType {
			case "Daily":
			case "Weekly":
				if len(r.DaysOfWeek) == 0 {
					return invalid(t+".daysOfWeek", "A weekly recurrence needs daysOfWeek.")
				}
				for _, d := range r.DaysOfWeek {
					if _, ok := weekdays[d]; !ok {
						return invalid(t+".daysOfWeek", "'%s' is not a day of the week.", truncate(d, 20))
					}
				}
			case "Monthly":
				if len(r.DaysOfMonth) == 0 {
					return invalid(t+".daysOfMonth", "A monthly recurrence needs daysOfMonth.")
				}
				for _, d := range r.DaysOfMonth {
					if d < 1 || d > 31 {
						return invalid(t+".daysOfMonth", "%d is not a day of the month.", d)
					}
				}
			default:
				return invalid(t+".recurrenceType", "The recurrence type '%s' is invalid. It must be Daily, Weekly or Monthly.", truncate(r.RecurrenceType, 20))
			}
		}
	}
	return nil
}

func parseLocalTime(s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

// parseClock parses "HH:MM:SS" into an offset from midnight ("" is 0).
func parseClock(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	t, err := time.Parse("15:04:05", s)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, nil
}

// activeAt reports whether the rule's schedule covers t.
func (ar *actionRule) activeAt(t time.Time) bool {
	if !ar.from.IsZero() && t.Before(ar.from) {
		return false
	}
	if !ar.until.IsZero() && !t.Before(ar.until) {
		return false
	}
	s := ar.Props.Schedule
	if s == nil || len(s.Recurrences) == 0 {
		return true
	}
	lt := t.In(ar.loc)
	for _, r := range s.Recurrences {
		start, _ := parseClock(r.StartTime)
		end, _ := parseClock(r.EndTime)
		if r.EndTime == "" {
			end = 24 * time.Hour
		}
		// A window that ends before it starts runs past midnight: it is
		// active late on a matching day or early on the day after one.
		tod := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute + time.Duration(lt.Second())*time.Second
		if end > start {
			if tod >= start && tod < end && dayMatches(&r, lt) {
				return true
			}
			continue
		}
		if tod >= start && dayMatches(&r, lt) {
			return true
		}
		if tod < end && dayMatches(&r, lt.AddDate(0, 0, -1)) {
			return true
		}
	}
	return false
}

func dayMatches(r *recurrence, t time.Time) bool {
	switch r.RecurrenceType {
	case "Weekly":
		for _, d := range r.DaysOfWeek {
			if weekdays[d] == t.Weekday() {
				return true
			}
		}
		return false
	case "Monthly":
		for _, d := range r.DaysOfMonth {
			if d == t.Day() {
				return true
			}
		}
		return false
	}
	return true
}

// matches reports whether the rule's scopes and conditions select an alert.
func (ar *actionRule) matches(fields map[string]string, target string) bool {
	in := false
	for _, sc := range ar.Props.Scopes {
		sc = strings.ToLower(strings.TrimSuffix(sc, "/"))
		t := strings.ToLower(target)
		if t == sc || strings.HasPrefix(t, sc+"/") || strings.EqualFold(fields["AlertRuleId"], sc) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, c := range ar.Props.Conditions {
		v := strings.ToLower(fields[c.Field])
		any := false
		for _, want := range c.Values {
			w := strings.ToLower(want)
			switch c.Operator {
			case "Equals", "NotEquals":
				any = any || v == w
			default:
				any = any || strings.Contains(v, w)
			}
		}
		if (c.Operator == "Equals" || c.Operator == "Contains") != any {
			return false
		}
	}
	return true
}

// processing is the effect of the matching alert processing rules on one
// alert event.
type processing struct {
	suppressedBy string
	addGroups    []string
}

// applyProcessingRules evaluates the subscription's enabled alert
// processing rules for an event at now.
func (s *Service) applyProcessingRules(ctx context.Context, r *rule, p *CommonAlertSchema, now time.Time) processing {
	var out processing
	all, err := s.cat.AlertResources(ctx, catalog.TypeActionRule, r.SubscriptionID, "")
	if err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "list alert processing rules", slog.Any("error", err))
		return out
	}
	es := &p.Data.Essentials
	ctxJSON, _ := json.Marshal(p.Data.AlertContext)
	fields := map[string]string{
		"AlertRuleId": r.ID, "AlertRuleName": r.Name, "Description": es.Description, "MonitorCondition": es.MonitorCondition,
		"MonitorService": es.MonitoringService, "Severity": es.Severity, "SignalType": es.SignalType,
		"TargetResourceGroup": es.TargetResourceGroup, "TargetResourceType": es.TargetResourceType, "AlertContext": string(ctxJSON),
	}
	for _, target := range es.AlertTargetIDs {
		fields["TargetResource"] = target
		for i := range all {
			ar, err := parseActionRule(&all[i])
			if err != nil || !ar.Enabled || !ar.matches(fields, target) || !ar.activeAt(now) {
				continue
			}
			switch ar.Props.Actions[0].ActionType {
			case actionRemoveAllGroups:
				if out.suppressedBy == "" {
					out.suppressedBy = ar.ID
				}
			case actionAddGroups:
				out.addGroups = append(out.addGroups, ar.Props.Actions[0].ActionGroupIDs...)
			}
		}
	}
	return out
}

// ARM handlers.

type actionRuleWire struct {
	ID         string               `json:"id"`
	Name       string               `json:"name"`
	Type       string               `json:"type"`
	Location   string               `json:"location"`
	Tags       map[string]string    `json:"tags"`
	Properties actionRuleProperties `json:"properties"`
	SystemData *systemData          `json:"systemData,omitempty"`
}

func toActionRuleWire(res *catalog.AlertResource) (actionRuleWire, error) {
	var p actionRuleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return actionRuleWire{}, fmt.Errorf("decode stored action rule: %w", err)
	}
	out := actionRuleWire{ID: res.ID(), Name: res.Name, Type: actionRuleTypeWire, Location: res.Location, Tags: res.Tags,
		Properties: p, SystemData: toSystemData(res.Audit)}
	if out.Tags == nil {
		out.Tags = map[string]string{}
	}
	return out, nil
}

func actionRuleScope(r *http.Request) rbac.Scope {
	return rbac.Scope(catalog.AlertResourceID(catalog.TypeActionRule, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("actionRuleName")))
}

func (s *Service) putActionRule(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Location   string                `json:"location"`
		Tags       map[string]string     `json:"tags"`
		Properties *actionRuleProperties `json:"properties"`
		ID         *string               `json:"id"`
		Name       *string               `json:"name"`
		Type       *string               `json:"type"`
		SystemData json.RawMessage       `json:"systemData"`
	}
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	if req.Properties == nil {
		return invalid("properties", "The properties of the alert processing rule are required.")
	}
	ar := &actionRule{Props: *req.Properties}
	if err := ar.validate(); err != nil {
		return err
	}
	if ar.Props.Enabled == nil {
		t := true
		ar.Props.Enabled = &t
	}
	for i, id := range ar.Props.Actions[0].ActionGroupIDs {
		sub, rg, name, _ := parseActionGroupID(id)
		if _, err := s.cat.AlertResource(r.Context(), catalog.TypeActionGroup, sub, rg, name); err != nil {
			if errors.Is(err, catalog.ErrNotFound) {
				return invalidCode("ActionGroupNotFound", fmt.Sprintf("properties.actions[0].actionGroupIds[%d]", i), "The action group '%s' does not exist.", truncate(id, 300))
			}
			return err
		}
	}
	props, err := json.Marshal(ar.Props)
	if err != nil {
		return fmt.Errorf("encode action rule: %w", err)
	}
	loc := req.Location
	if loc == "" {
		loc = "Global"
	}
	saved, created, _, err := s.cat.PutAlertResource(r.Context(), catalog.AlertResource{Type: catalog.TypeActionRule,
		SubscriptionID: r.PathValue("subscriptionId"), ResourceGroup: r.PathValue("resourceGroupName"), Name: r.PathValue("actionRuleName"),
		Location: loc, Tags: req.Tags, Properties: props}, nil, precondition(r), actor(r))
	if err != nil {
		return err
	}
	aw, err := toActionRuleWire(&saved)
	if err != nil {
		return err
	}
	writePut(w, created, saved.ETag, aw)
	return nil
}

func (s *Service) deleteActionRule(w http.ResponseWriter, r *http.Request) error {
	_, deleted, err := s.cat.DeleteAlertResource(r.Context(), catalog.TypeActionRule, r.PathValue("subscriptionId"),
		r.PathValue("resourceGroupName"), r.PathValue("actionRuleName"), precondition(r))
	if err != nil {
		return err
	}
	writeDelete(w, deleted)
	return nil
}
