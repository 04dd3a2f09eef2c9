package alert

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"custos/internal/catalog"
	"custos/internal/kql"
)

// Rule kinds, operators and aggregations as Azure spells them.
const (
	KindLogAlert = "LogAlert"

	AggCount   = "Count"
	AggAverage = "Average"
	AggMinimum = "Minimum"
	AggMaximum = "Maximum"
	AggTotal   = "Total"

	OpEquals             = "Equals"
	OpGreaterThan        = "GreaterThan"
	OpGreaterThanOrEqual = "GreaterThanOrEqual"
	OpLessThan           = "LessThan"
	OpLessThanOrEqual    = "LessThanOrEqual"

	DimInclude = "Include"
	DimExclude = "Exclude"

	IdentityNone           = "None"
	IdentitySystemAssigned = "SystemAssigned"
	IdentityUserAssigned   = "UserAssigned"
)

// Limits on rules, as Azure documents them for log search alerts.
const (
	minFrequency      = time.Minute
	maxFrequency      = 24 * time.Hour
	minWindow         = time.Minute
	maxWindow         = 2 * 24 * time.Hour
	maxEvalPeriods    = 6
	maxScopes         = 10
	maxDimensions     = 6
	maxActionGroups   = 5
	maxQueryBytes     = 64 << 10
	maxDimensionValue = 256
)

// ruleIdentity is the managed identity block of a rule, as stored. AppID
// stays internal; the wire shows type, principalId and tenantId.
type ruleIdentity struct {
	Type                   string                     `json:"type"`
	PrincipalID            string                     `json:"principalId,omitempty"`
	TenantID               string                     `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]json.RawMessage `json:"userAssignedIdentities,omitempty"`
	AppID                  string                     `json:"custosAppId,omitempty"`
}

// ruleProperties is the properties object of a scheduledQueryRules resource,
// with Azure's JSON names. EvaluationStatus is a read-only Custos extension.
type ruleProperties struct {
	CreatedWithAPIVersion                 string            `json:"createdWithApiVersion,omitempty"`
	IsLegacyLogAnalyticsRule              bool              `json:"isLegacyLogAnalyticsRule"`
	Description                           string            `json:"description,omitempty"`
	DisplayName                           string            `json:"displayName,omitempty"`
	Severity                              *int              `json:"severity,omitempty"`
	Enabled                               *bool             `json:"enabled,omitempty"`
	Scopes                                []string          `json:"scopes"`
	EvaluationFrequency                   string            `json:"evaluationFrequency,omitempty"`
	WindowSize                            string            `json:"windowSize,omitempty"`
	OverrideQueryTimeRange                string            `json:"overrideQueryTimeRange,omitempty"`
	TargetResourceTypes                   []string          `json:"targetResourceTypes,omitempty"`
	Criteria                              *ruleCriteria     `json:"criteria,omitempty"`
	MuteActionsDuration                   string            `json:"muteActionsDuration,omitempty"`
	Actions                               *ruleActions      `json:"actions,omitempty"`
	IsWorkspaceAlertsStorageConfigured    bool              `json:"isWorkspaceAlertsStorageConfigured"`
	CheckWorkspaceAlertsStorageConfigured *bool             `json:"checkWorkspaceAlertsStorageConfigured,omitempty"`
	SkipQueryValidation                   *bool             `json:"skipQueryValidation,omitempty"`
	AutoMitigate                          *bool             `json:"autoMitigate,omitempty"`
	RuleResolveConfiguration              json.RawMessage   `json:"ruleResolveConfiguration,omitempty"`
	EvaluationStatus                      *evaluationStatus `json:"evaluationStatus,omitempty"`
}

type ruleCriteria struct {
	AllOf []criterion `json:"allOf"`
}

type criterion struct {
	Query               string          `json:"query"`
	TimeAggregation     string          `json:"timeAggregation"`
	MetricMeasureColumn string          `json:"metricMeasureColumn,omitempty"`
	ResourceIDColumn    string          `json:"resourceIdColumn,omitempty"`
	Dimensions          []dimension     `json:"dimensions,omitempty"`
	Operator            string          `json:"operator"`
	Threshold           *float64        `json:"threshold,omitempty"`
	FailingPeriods      *failingPeriods `json:"failingPeriods,omitempty"`
	MetricName          string          `json:"metricName,omitempty"`
}

type dimension struct {
	Name     string   `json:"name"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

type failingPeriods struct {
	NumberOfEvaluationPeriods int64 `json:"numberOfEvaluationPeriods"`
	MinFailingPeriodsToAlert  int64 `json:"minFailingPeriodsToAlert"`
}

type ruleActions struct {
	ActionGroups     []string          `json:"actionGroups"`
	CustomProperties map[string]string `json:"customProperties,omitempty"`
	ActionProperties map[string]string `json:"actionProperties,omitempty"`
}

// evaluationStatus reports the scheduler's view of a rule (read-only).
type evaluationStatus struct {
	State                  string `json:"state"` // "Scheduled" | "Disabled"
	LastEvaluationTime     string `json:"lastEvaluationTime,omitempty"`
	LastWindowEndTime      string `json:"lastWindowEndTime,omitempty"`
	LastEvaluationDuration string `json:"lastEvaluationDurationMs,omitempty"`
	LastResult             string `json:"lastResult,omitempty"` // "Succeeded" | "Failed" | "Skipped"
	LastError              string `json:"lastError,omitempty"`
	// SkipReason, SkippedEvaluations and LastSkippedTime describe the
	// evaluations skipped since the last committed one (see skipped.go).
	SkipReason          string `json:"skipReason,omitempty"`
	SkippedEvaluations  int64  `json:"skippedEvaluations,omitempty"`
	LastSkippedTime     string `json:"lastSkippedTime,omitempty"`
	NextWindowEndTime   string `json:"nextWindowEndTime,omitempty"`
	ConsecutiveFailures int    `json:"consecutiveFailures,omitempty"`
	MissedEvaluations   int64  `json:"missedEvaluations,omitempty"`
	FiredSeries         int    `json:"firedSeries"`
}

// rule is a validated scheduled query rule, ready to evaluate.
type rule struct {
	ID             string
	Type           string // catalog.TypeScheduledQueryRule, TypeMetricAlert or TypeActivityLogAlert
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Props          ruleProperties
	Identity       *ruleIdentity
	ETag           string
	Created        time.Time // the first window ends on the first grid point after it

	Enabled      bool
	Severity     int
	Frequency    time.Duration
	Window       time.Duration
	QueryRange   time.Duration
	Mute         time.Duration
	AutoMitigate bool
	Crit         criterion   // log search rules
	Metric       *metricSpec // metric alert rules
	// contentErr is set when the rule's sealed query could not be opened:
	// every evaluation fails with it.
	contentErr error
	Periods    int
	MinFailing int
}

// isLog reports whether r is a log search alert rule.
func (r *rule) isLog() bool { return r.Metric == nil }

// parseRule validates the stored or requested properties of a rule. It
// checks what can be checked without the catalog.
func parseRule(res *catalog.AlertResource) (*rule, error) {
	if res.Type == catalog.TypeMetricAlert {
		return parseMetricRule(res)
	}
	var p ruleProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, fmt.Errorf("decode stored rule %s: %w", res.Name, err)
	}
	r := &rule{ID: res.ID(), Type: catalog.TypeScheduledQueryRule, SubscriptionID: res.SubscriptionID, ResourceGroup: res.ResourceGroup, Name: res.Name,
		Location: res.Location, Props: p, ETag: res.ETag, Created: res.Audit.CreatedAt}
	if len(res.Identity) > 0 {
		var id ruleIdentity
		if err := json.Unmarshal(res.Identity, &id); err != nil {
			return nil, fmt.Errorf("decode stored rule identity %s: %w", res.Name, err)
		}
		r.Identity = &id
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// validateSeverityAndScopes checks what log search and metric alert rules
// share: a severity from 0 to 4 (required), and 1 to maxScopes workspace
// scopes. kind names the rule type in messages ("metric alert"); scopesDo
// says what the rule does with its workspaces.
func (r *rule) validateSeverityAndScopes(severity *int, scopes []string, kind, scopesDo string) error {
	if severity == nil {
		return invalid("properties.severity", "The severity property is required for %s rules (0 to 4).", kind)
	}
	if *severity < 0 || *severity > 4 {
		return invalid("properties.severity", "The severity %d is invalid: it must be between 0 and 4.", *severity)
	}
	r.Severity = *severity
	if len(scopes) == 0 || len(scopes) > maxScopes {
		return invalid("properties.scopes", "A %s rule needs 1 to %d scopes.", kind, maxScopes)
	}
	for i, sc := range scopes {
		if _, _, _, ok := catalog.ParseWorkspaceResourceID(sc); !ok {
			return invalid(fmt.Sprintf("properties.scopes[%d]", i),
				"The scope '%s' is not supported: Custos %s rules %s (/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/workspaces/{name}).",
				truncate(sc, 300), kind, scopesDo)
		}
	}
	return nil
}

func (r *rule) validate() error {
	p := &r.Props
	r.Enabled = p.Enabled == nil || *p.Enabled
	if err := r.validateSeverityAndScopes(p.Severity, p.Scopes, "log search alert", "target Log Analytics workspaces"); err != nil {
		return err
	}
	var err error
	if r.Frequency, err = requiredDuration(p.EvaluationFrequency, "properties.evaluationFrequency", minFrequency, maxFrequency); err != nil {
		return err
	}
	if r.Frequency%time.Minute != 0 {
		return invalid("properties.evaluationFrequency", "The evaluation frequency must be a whole number of minutes.")
	}
	if r.Window, err = requiredDuration(p.WindowSize, "properties.windowSize", minWindow, maxWindow); err != nil {
		return err
	}
	r.QueryRange = r.Window
	if p.OverrideQueryTimeRange != "" {
		if r.QueryRange, err = requiredDuration(p.OverrideQueryTimeRange, "properties.overrideQueryTimeRange", r.Window, maxWindow); err != nil {
			return err
		}
	}
	if p.MuteActionsDuration != "" {
		if r.Mute, err = requiredDuration(p.MuteActionsDuration, "properties.muteActionsDuration", time.Minute, maxWindow); err != nil {
			return err
		}
	}
	r.AutoMitigate = p.AutoMitigate == nil || *p.AutoMitigate
	if p.Criteria == nil || len(p.Criteria.AllOf) != 1 {
		return invalid("properties.criteria.allOf", "A log search alert rule needs exactly one criterion in criteria.allOf.")
	}
	c := p.Criteria.AllOf[0]
	if err := validateCriterion(&c); err != nil {
		return err
	}
	r.Crit = c
	r.Periods, r.MinFailing = 1, 1
	if c.FailingPeriods != nil {
		r.Periods, r.MinFailing = int(c.FailingPeriods.NumberOfEvaluationPeriods), int(c.FailingPeriods.MinFailingPeriodsToAlert)
	}
	if p.Actions != nil {
		if len(p.Actions.ActionGroups) > maxActionGroups {
			return invalid("properties.actions.actionGroups", "A rule may name at most %d action groups.", maxActionGroups)
		}
		for i, ag := range p.Actions.ActionGroups {
			if _, _, _, ok := parseActionGroupID(ag); !ok {
				return invalid(fmt.Sprintf("properties.actions.actionGroups[%d]", i), "'%s' is not an action group resource ID.", truncate(ag, 300))
			}
		}
	}
	return r.validateIdentity()
}

// validateIdentity checks the rule's identity block.
func (r *rule) validateIdentity() error {
	if r.Identity != nil {
		switch r.Identity.Type {
		case IdentitySystemAssigned, IdentityNone:
		case IdentityUserAssigned:
			if len(r.Identity.UserAssignedIdentities) != 1 {
				return invalidCode("InvalidIdentity", "identity.userAssignedIdentities",
					"A rule with a user-assigned identity names exactly one identity in userAssignedIdentities.")
			}
			for id := range r.Identity.UserAssignedIdentities {
				if _, _, _, ok := parseUserAssignedID(id); !ok {
					return invalidCode("InvalidIdentity", "identity.userAssignedIdentities",
						"'%s' is not a Microsoft.ManagedIdentity/userAssignedIdentities resource ID.", truncate(id, 300))
				}
			}
		default:
			return invalidCode("InvalidIdentityType", "identity.type",
				"The identity type '%s' is invalid. It must be 'None', 'SystemAssigned' or 'UserAssigned'.", truncate(r.Identity.Type, 50))
		}
	}
	return nil
}

func validateCriterion(c *criterion) error {
	const t = "properties.criteria.allOf[0]"
	if strings.TrimSpace(c.Query) == "" {
		return invalid(t+".query", "The query of the criterion is required.")
	}
	if len(c.Query) > maxQueryBytes {
		return invalid(t+".query", "The query is longer than %d bytes.", maxQueryBytes)
	}
	if _, err := kql.Parse(c.Query); err != nil {
		return invalidCode("InvalidQuery", t+".query", "The query is invalid: %v", err)
	}
	switch c.TimeAggregation {
	case AggCount:
	case AggAverage, AggMinimum, AggMaximum, AggTotal:
		if c.MetricMeasureColumn == "" {
			return invalid(t+".metricMeasureColumn", "The metricMeasureColumn is required when timeAggregation is %s.", c.TimeAggregation)
		}
	default:
		return invalid(t+".timeAggregation", "The timeAggregation '%s' is invalid. It must be Count, Average, Minimum, Maximum or Total.",
			truncate(c.TimeAggregation, 50))
	}
	switch c.Operator {
	case OpEquals, OpGreaterThan, OpGreaterThanOrEqual, OpLessThan, OpLessThanOrEqual:
	default:
		return invalid(t+".operator", "The operator '%s' is invalid. It must be Equals, GreaterThan, GreaterThanOrEqual, LessThan or LessThanOrEqual.",
			truncate(c.Operator, 50))
	}
	if c.Threshold == nil {
		return invalid(t+".threshold", "The threshold of the criterion is required.")
	}
	if math.IsNaN(*c.Threshold) || math.IsInf(*c.Threshold, 0) {
		return invalid(t+".threshold", "The threshold must be a finite number.")
	}
	if len(c.Dimensions) > maxDimensions {
		return invalid(t+".dimensions", "A criterion may split by at most %d dimensions.", maxDimensions)
	}
	seen := map[string]bool{}
	for i, d := range c.Dimensions {
		dt := fmt.Sprintf("%s.dimensions[%d]", t, i)
		if d.Name == "" || len(d.Name) > 256 {
			return invalid(dt+".name", "A dimension needs a column name of 1 to 256 characters.")
		}
		if seen[d.Name] {
			return invalid(dt+".name", "The dimension '%s' is listed twice.", truncate(d.Name, 100))
		}
		seen[d.Name] = true
		if d.Name == c.MetricMeasureColumn {
			return invalid(dt+".name", "The dimension '%s' is also the metricMeasureColumn.", truncate(d.Name, 100))
		}
		if d.Operator != DimInclude && d.Operator != DimExclude {
			return invalid(dt+".operator", "The dimension operator '%s' is invalid. It must be Include or Exclude.", truncate(d.Operator, 50))
		}
		if len(d.Values) == 0 {
			return invalid(dt+".values", "The dimension '%s' needs at least one value (\"*\" selects all).", truncate(d.Name, 100))
		}
		for _, v := range d.Values {
			if len(v) > maxDimensionValue {
				return invalid(dt+".values", "A dimension value is longer than %d characters.", maxDimensionValue)
			}
		}
	}
	if fp := c.FailingPeriods; fp != nil {
		if fp.NumberOfEvaluationPeriods < 1 || fp.NumberOfEvaluationPeriods > maxEvalPeriods {
			return invalid(t+".failingPeriods.numberOfEvaluationPeriods", "numberOfEvaluationPeriods must be between 1 and %d.", maxEvalPeriods)
		}
		if fp.MinFailingPeriodsToAlert < 1 || fp.MinFailingPeriodsToAlert > fp.NumberOfEvaluationPeriods {
			return invalid(t+".failingPeriods.minFailingPeriodsToAlert",
				"minFailingPeriodsToAlert must be between 1 and numberOfEvaluationPeriods (%d).", fp.NumberOfEvaluationPeriods)
		}
	}
	return nil
}

func requiredDuration(s, target string, min, max time.Duration) (time.Duration, error) {
	if s == "" {
		return 0, invalid(target, "The %s property is required.", target[strings.LastIndexByte(target, '.')+1:])
	}
	d, err := ParseISODuration(s)
	if err != nil {
		return 0, invalid(target, "The value of %s is invalid: %v.", target, err)
	}
	if d < min || d > max {
		return 0, invalid(target, "The value of %s must be between %s and %s.", target, FormatISODuration(min), FormatISODuration(max))
	}
	return d, nil
}

// parseActionGroupID splits an action group resource ID.
func parseActionGroupID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	if len(p) != 9 || p[0] != "" || !strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.Insights") ||
		!strings.EqualFold(p[7], "actionGroups") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}

// severityName is the common schema's spelling of a severity.
func severityName(s int) string { return fmt.Sprintf("Sev%d", s) }

// compare applies a rule operator.
func compare(op string, v, threshold float64) bool {
	switch op {
	case OpEquals:
		return v == threshold
	case OpGreaterThan:
		return v > threshold
	case OpGreaterThanOrEqual:
		return v >= threshold
	case OpLessThan:
		return v < threshold
	case OpLessThanOrEqual:
		return v <= threshold
	}
	return false
}

// parseUserAssignedID splits a user-assigned identity resource ID.
func parseUserAssignedID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	if len(p) != 9 || p[0] != "" || !strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.ManagedIdentity") ||
		!strings.EqualFold(p[7], "userAssignedIdentities") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}
