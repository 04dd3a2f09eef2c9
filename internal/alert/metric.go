package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/store"
)

// Metric alert criteria types and criterion types, as Azure spells them.
const (
	CriteriaSingleResource    = "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria"
	CriteriaMultipleResource  = "Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria"
	CriteriaWebtestLocation   = "Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria"
	CriterionStaticThreshold  = "StaticThresholdCriterion"
	CriterionDynamicThreshold = "DynamicThresholdCriterion"

	// workspaceType is the resource type of metric alert scopes.
	workspaceType = "Microsoft.OperationalInsights/workspaces"
)

// Limits on metric alert rules.
const (
	maxMetricCriteria = 5
	maxMetricName     = 256
)

// Metric alert frequencies and windows Azure allows.
var (
	metricFrequencies = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour}
	metricWindows     = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour,
		6 * time.Hour, 12 * time.Hour, 24 * time.Hour}
)

// metricAlertProperties is the properties object of a
// Microsoft.Insights/metricAlerts resource (api-version 2018-03-01), with
// Azure's JSON names. EvaluationStatus is a read-only Custos extension.
type metricAlertProperties struct {
	Description          string            `json:"description,omitempty"`
	Severity             *int              `json:"severity,omitempty"`
	Enabled              *bool             `json:"enabled,omitempty"`
	Scopes               []string          `json:"scopes"`
	EvaluationFrequency  string            `json:"evaluationFrequency,omitempty"`
	WindowSize           string            `json:"windowSize,omitempty"`
	TargetResourceType   string            `json:"targetResourceType,omitempty"`
	TargetResourceRegion string            `json:"targetResourceRegion,omitempty"`
	Criteria             *metricCriteria   `json:"criteria,omitempty"`
	AutoMitigate         *bool             `json:"autoMitigate,omitempty"`
	Actions              []metricAction    `json:"actions"`
	LastUpdatedTime      string            `json:"lastUpdatedTime,omitempty"`
	IsMigrated           bool              `json:"isMigrated"`
	EvaluationStatus     *evaluationStatus `json:"evaluationStatus,omitempty"`
}

type metricCriteria struct {
	ODataType string            `json:"odata.type"`
	AllOf     []metricCriterion `json:"allOf"`
}

// metricCriterion is one criterion of allOf. The dynamic-threshold members
// are decoded only to refuse them with a clear message.
type metricCriterion struct {
	CriterionType        string      `json:"criterionType"`
	Name                 string      `json:"name"`
	MetricName           string      `json:"metricName"`
	MetricNamespace      string      `json:"metricNamespace,omitempty"`
	Operator             string      `json:"operator"`
	Threshold            *float64    `json:"threshold,omitempty"`
	TimeAggregation      string      `json:"timeAggregation"`
	Dimensions           []dimension `json:"dimensions,omitempty"`
	SkipMetricValidation bool        `json:"skipMetricValidation,omitempty"`

	AlertSensitivity string          `json:"alertSensitivity,omitempty"`
	FailingPeriods   json.RawMessage `json:"failingPeriods,omitempty"`
	IgnoreDataBefore string          `json:"ignoreDataBefore,omitempty"`
}

type metricAction struct {
	ActionGroupID     string            `json:"actionGroupId"`
	WebHookProperties map[string]string `json:"webHookProperties,omitempty"`
}

// metricSpec is a validated metric alert: what the evaluator needs besides
// the common rule fields.
type metricSpec struct {
	ODataType string
	Criteria  []metricCriterion
	Sources   []metricSource // one per criterion
}

// metricSource says where a metric's samples are: a table, the columns and
// values that select the metric, and the value column.
type metricSource struct {
	Table     string  // "Perf" or "InsightsMetrics"
	NSColumn  string  // ObjectName | Namespace
	Namespace string  // its value
	NameCol   string  // CounterName | Name
	Name      string  // its value
	ValueCol  string  // CounterValue | Val
	Scale     float64 // the value is multiplied by it (unit conversion of a mapped Azure metric)
	TagsCol   string  // InsightsMetrics: dimensions that are not columns come from this JSON column
}

// Metric namespaces Custos maps to its metric tables. metricNamespace
// "Perf/<ObjectName>" or a bare "<ObjectName>" selects Perf rows of that
// ObjectName with CounterName = metricName; "InsightsMetrics/<Namespace>"
// selects InsightsMetrics rows with Namespace and Name = metricName.
const (
	nsPerfPrefix            = "Perf/"
	nsInsightsMetricsPrefix = "InsightsMetrics/"
)

// azureVMMetrics maps the platform metrics of virtual machines and Arc
// machines that have an equivalent in VM insights (InsightsMetrics).
var azureVMMetrics = map[string]metricSource{
	"percentage cpu":         {Table: "InsightsMetrics", Namespace: "Processor", Name: "UtilizationPercentage", Scale: 1},
	"available memory bytes": {Table: "InsightsMetrics", Namespace: "Memory", Name: "AvailableMB", Scale: 1 << 20},
}

func isVMNamespace(ns string) bool {
	return strings.EqualFold(ns, "Microsoft.Compute/virtualMachines") || strings.EqualFold(ns, "Microsoft.HybridCompute/machines")
}

// resolveMetric finds the table, columns and values of a criterion's metric.
func resolveMetric(c *metricCriterion, target string) (metricSource, error) {
	ns := c.MetricNamespace
	var src metricSource
	switch {
	case ns == "" || isVMNamespace(ns):
		m, ok := azureVMMetrics[strings.ToLower(c.MetricName)]
		if !ok {
			return src, invalidCode("MetricNotFound", target+".metricName",
				"The metric '%s' in namespace '%s' has no Custos equivalent. Custos evaluates metric alerts over the Perf and InsightsMetrics tables: use metricNamespace 'Perf/<ObjectName>' (or '<ObjectName>') with metricName = CounterName, or 'InsightsMetrics/<Namespace>' with metricName = Name; of the virtual machine metrics, 'Percentage CPU' and 'Available Memory Bytes' are mapped.",
				truncate(c.MetricName, 100), truncate(ns, 100))
		}
		src = m
	case strings.HasPrefix(strings.ToLower(ns), strings.ToLower(nsInsightsMetricsPrefix)):
		src = metricSource{Table: "InsightsMetrics", Namespace: ns[len(nsInsightsMetricsPrefix):], Name: c.MetricName, Scale: 1}
	case strings.HasPrefix(strings.ToLower(ns), strings.ToLower(nsPerfPrefix)):
		src = metricSource{Table: "Perf", Namespace: ns[len(nsPerfPrefix):], Name: c.MetricName, Scale: 1}
	case strings.Contains(ns, "/"):
		return src, invalidCode("MetricNamespaceNotSupported", target+".metricNamespace",
			"The metric namespace '%s' is not supported. Use 'Perf/<ObjectName>', '<ObjectName>' or 'InsightsMetrics/<Namespace>'.", truncate(ns, 100))
	default:
		src = metricSource{Table: "Perf", Namespace: ns, Name: c.MetricName, Scale: 1}
	}
	if src.Namespace == "" {
		return src, invalid(target+".metricNamespace", "The metric namespace '%s' names no object or namespace.", truncate(ns, 100))
	}
	if src.Table == "Perf" {
		src.NSColumn, src.NameCol, src.ValueCol = "ObjectName", "CounterName", "CounterValue"
	} else {
		src.NSColumn, src.NameCol, src.ValueCol, src.TagsCol = "Namespace", "Name", "Val", "Tags"
	}
	return src, nil
}

// kqlQuote quotes s as a KQL string literal.
func kqlQuote(s string) string { return "'" + kqlEscape(s) + "'" }

// metricValueColumn and metricDimColumn name the columns of the generated
// query's result.
const metricValueColumn = "__custos_value"

func metricDimColumn(i int) string { return fmt.Sprintf("__custos_dim%d", i) }

// query returns the KQL that selects the samples of one criterion: one row
// per sample with its value and dimension values, filtered by the
// dimensions' Include/Exclude values. schema is the workspace table's
// schema: a dimension that is not one of its columns is read from the tags
// (InsightsMetrics) or refused.
func (src *metricSource) query(c *metricCriterion, schema store.Schema) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n| where %s == %s and %s == %s\n", src.Table, src.NSColumn, kqlQuote(src.Namespace), src.NameCol, kqlQuote(src.Name))
	val := fmt.Sprintf("todouble(%s)", src.ValueCol)
	if src.Scale != 1 {
		val = fmt.Sprintf("todouble(%s) * %v", src.ValueCol, src.Scale)
	}
	fmt.Fprintf(&b, "| project %s = %s", metricValueColumn, val)
	for i, d := range c.Dimensions {
		var expr string
		switch {
		case schema.Index(d.Name) >= 0:
			expr = fmt.Sprintf("tostring(['%s'])", kqlEscape(d.Name))
		case src.TagsCol != "":
			expr = fmt.Sprintf("tostring(parse_json(%s)[%s])", src.TagsCol, kqlQuote(d.Name))
		default:
			return "", invalidCode("InvalidDimension", "", "The dimension '%s' is not a column of %s.", truncate(d.Name, 100), src.Table)
		}
		fmt.Fprintf(&b, ", %s = %s", metricDimColumn(i), expr)
	}
	for i, d := range c.Dimensions {
		var vals []string
		star := false
		for _, v := range d.Values {
			if v == "*" {
				star = true
			}
			vals = append(vals, kqlQuote(v))
		}
		if star {
			if d.Operator == DimExclude {
				b.WriteString("\n| where false")
			}
			continue
		}
		op := "in"
		if d.Operator == DimExclude {
			op = "!in"
		}
		fmt.Fprintf(&b, "\n| where %s %s (%s)", metricDimColumn(i), op, strings.Join(vals, ", "))
	}
	return b.String(), nil
}

// parseMetricRule validates the stored or requested properties of a metric
// alert rule and returns it as a rule.
func parseMetricRule(res *catalog.AlertResource) (*rule, error) {
	var p metricAlertProperties
	if err := json.Unmarshal(res.Properties, &p); err != nil {
		return nil, fmt.Errorf("decode stored metric alert %s: %w", res.Name, err)
	}
	r := &rule{ID: res.ID(), Type: catalog.TypeMetricAlert, SubscriptionID: res.SubscriptionID, ResourceGroup: res.ResourceGroup,
		Name: res.Name, Location: res.Location, ETag: res.ETag, Created: res.Audit.CreatedAt}
	if len(res.Identity) > 0 {
		var id ruleIdentity
		if err := json.Unmarshal(res.Identity, &id); err != nil {
			return nil, fmt.Errorf("decode stored metric alert identity %s: %w", res.Name, err)
		}
		r.Identity = &id
	}
	if err := r.validateMetric(&p); err != nil {
		return nil, err
	}
	return r, nil
}

// validateMetric checks a metric alert's properties and fills the rule's
// common fields (Props carries scopes, description and action groups for
// the shared evaluation and notification code).
func (r *rule) validateMetric(p *metricAlertProperties) error {
	r.Type = catalog.TypeMetricAlert
	r.Enabled = p.Enabled == nil || *p.Enabled
	if err := r.validateSeverityAndScopes(p.Severity, p.Scopes, "metric alert",
		"evaluate the metric tables (Perf, InsightsMetrics) of Log Analytics workspaces"); err != nil {
		return err
	}
	var err error
	if r.Frequency, err = requiredDuration(p.EvaluationFrequency, "properties.evaluationFrequency", time.Minute, time.Hour); err != nil {
		return err
	}
	if !containsDuration(metricFrequencies, r.Frequency) {
		return invalid("properties.evaluationFrequency", "The evaluation frequency of a metric alert must be PT1M, PT5M, PT15M, PT30M or PT1H.")
	}
	if r.Window, err = requiredDuration(p.WindowSize, "properties.windowSize", time.Minute, 24*time.Hour); err != nil {
		return err
	}
	if !containsDuration(metricWindows, r.Window) {
		return invalid("properties.windowSize", "The window size of a metric alert must be PT1M, PT5M, PT15M, PT30M, PT1H, PT6H, PT12H or P1D.")
	}
	if r.Window < r.Frequency {
		return invalid("properties.windowSize", "The window size must be at least the evaluation frequency.")
	}
	r.QueryRange = r.Window
	r.AutoMitigate = p.AutoMitigate == nil || *p.AutoMitigate
	r.Periods, r.MinFailing = 1, 1
	if p.TargetResourceType != "" && !strings.EqualFold(p.TargetResourceType, workspaceType) {
		return invalid("properties.targetResourceType", "The target resource type '%s' is not supported; Custos metric alerts target %s.",
			truncate(p.TargetResourceType, 100), workspaceType)
	}
	if p.Criteria == nil {
		return invalid("properties.criteria", "The criteria of the metric alert are required.")
	}
	switch p.Criteria.ODataType {
	case CriteriaSingleResource:
		if len(p.Scopes) != 1 {
			return invalid("properties.scopes", "SingleResourceMultipleMetricCriteria needs exactly one scope; use MultipleResourceMultipleMetricCriteria for several.")
		}
	case CriteriaMultipleResource:
		if p.TargetResourceType == "" && len(p.Scopes) > 1 {
			return invalid("properties.targetResourceType", "targetResourceType is required when a metric alert has several scopes.")
		}
	case CriteriaWebtestLocation:
		return invalidCode("CriteriaNotSupported", "properties.criteria.odata.type",
			"WebtestLocationAvailabilityCriteria is not supported: Custos has no availability tests.")
	default:
		return invalid("properties.criteria.odata.type", "The criteria type '%s' is invalid. It must be %s or %s.",
			truncate(p.Criteria.ODataType, 100), CriteriaSingleResource, CriteriaMultipleResource)
	}
	if len(p.Criteria.AllOf) == 0 || len(p.Criteria.AllOf) > maxMetricCriteria {
		return invalid("properties.criteria.allOf", "A metric alert needs 1 to %d criteria in criteria.allOf.", maxMetricCriteria)
	}
	spec := &metricSpec{ODataType: p.Criteria.ODataType}
	names := map[string]bool{}
	for i := range p.Criteria.AllOf {
		c := p.Criteria.AllOf[i]
		t := fmt.Sprintf("properties.criteria.allOf[%d]", i)
		src, err := validateMetricCriterion(&c, t)
		if err != nil {
			return err
		}
		if names[strings.ToLower(c.Name)] {
			return invalid(t+".name", "The criterion name '%s' is used twice.", truncate(c.Name, 100))
		}
		names[strings.ToLower(c.Name)] = true
		spec.Criteria = append(spec.Criteria, c)
		spec.Sources = append(spec.Sources, src)
	}
	r.Metric = spec
	if len(p.Actions) > maxActionGroups {
		return invalid("properties.actions", "A rule may name at most %d action groups.", maxActionGroups)
	}
	r.Props = ruleProperties{Description: p.Description, Scopes: p.Scopes, Enabled: p.Enabled, Severity: p.Severity}
	if len(p.Actions) > 0 {
		acts := &ruleActions{CustomProperties: map[string]string{}}
		for i, a := range p.Actions {
			if _, _, _, ok := parseActionGroupID(a.ActionGroupID); !ok {
				return invalid(fmt.Sprintf("properties.actions[%d].actionGroupId", i), "'%s' is not an action group resource ID.", truncate(a.ActionGroupID, 300))
			}
			acts.ActionGroups = append(acts.ActionGroups, a.ActionGroupID)
			// Azure sends each group its own webHookProperties; Custos
			// sends the union to every group (later groups win on a clash).
			for k, v := range a.WebHookProperties {
				acts.CustomProperties[k] = v
			}
		}
		r.Props.Actions = acts
	}
	return r.validateIdentity()
}

func containsDuration(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func validateMetricCriterion(c *metricCriterion, t string) (metricSource, error) {
	switch c.CriterionType {
	case CriterionStaticThreshold:
	case CriterionDynamicThreshold:
		return metricSource{}, invalidCode("DynamicThresholdNotSupported", t+".criterionType",
			"Dynamic thresholds are not supported by Custos; use a StaticThresholdCriterion with a threshold.")
	default:
		return metricSource{}, invalid(t+".criterionType", "The criterion type '%s' is invalid. It must be StaticThresholdCriterion.", truncate(c.CriterionType, 50))
	}
	if c.AlertSensitivity != "" || len(c.FailingPeriods) > 0 || c.IgnoreDataBefore != "" {
		return metricSource{}, invalid(t, "alertSensitivity, failingPeriods and ignoreDataBefore belong to dynamic threshold criteria, which Custos does not support.")
	}
	if c.Name == "" || len(c.Name) > maxMetricName {
		return metricSource{}, invalid(t+".name", "A criterion needs a name of 1 to %d characters.", maxMetricName)
	}
	if c.MetricName == "" || len(c.MetricName) > maxMetricName {
		return metricSource{}, invalid(t+".metricName", "A criterion needs a metricName of 1 to %d characters.", maxMetricName)
	}
	if len(c.MetricNamespace) > maxMetricName {
		return metricSource{}, invalid(t+".metricNamespace", "The metricNamespace is longer than %d characters.", maxMetricName)
	}
	switch c.Operator {
	case OpEquals, OpGreaterThan, OpGreaterThanOrEqual, OpLessThan, OpLessThanOrEqual:
	default:
		return metricSource{}, invalid(t+".operator", "The operator '%s' is invalid. It must be Equals, GreaterThan, GreaterThanOrEqual, LessThan or LessThanOrEqual.",
			truncate(c.Operator, 50))
	}
	if c.Threshold == nil {
		return metricSource{}, invalid(t+".threshold", "The threshold of a static threshold criterion is required.")
	}
	if math.IsNaN(*c.Threshold) || math.IsInf(*c.Threshold, 0) {
		return metricSource{}, invalid(t+".threshold", "The threshold must be a finite number.")
	}
	switch c.TimeAggregation {
	case AggAverage, AggCount, AggMinimum, AggMaximum, AggTotal:
	default:
		return metricSource{}, invalid(t+".timeAggregation", "The timeAggregation '%s' is invalid. It must be Average, Count, Minimum, Maximum or Total.",
			truncate(c.TimeAggregation, 50))
	}
	if err := validateDimensions(c.Dimensions, t); err != nil {
		return metricSource{}, err
	}
	return resolveMetric(c, t)
}

// validateDimensions checks Include/Exclude dimension filters.
func validateDimensions(ds []dimension, t string) error {
	if len(ds) > maxDimensions {
		return invalid(t+".dimensions", "A criterion may split by at most %d dimensions.", maxDimensions)
	}
	seen := map[string]bool{}
	for i, d := range ds {
		dt := fmt.Sprintf("%s.dimensions[%d]", t, i)
		if d.Name == "" || len(d.Name) > 256 {
			return invalid(dt+".name", "A dimension needs a name of 1 to 256 characters.")
		}
		if seen[d.Name] {
			return invalid(dt+".name", "The dimension '%s' is listed twice.", truncate(d.Name, 100))
		}
		seen[d.Name] = true
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
	return nil
}

// metricSeries is one dimension combination of one scope with the value of
// every criterion.
type metricSeries struct {
	dims   []dimValue
	values []float64
	breach bool
}

// runMetric evaluates a metric alert over [start, end) as the rule's
// identity. Each scope is monitored on its own (a multi-resource rule fires
// per workspace); within a scope the criteria's series are joined on their
// shared dimensions, and a combination breaches when every criterion does.
func (s *Service) runMetric(ctx context.Context, r *rule, start, end time.Time) ([]series, []catalog.Workspace, error) {
	p, err := s.rulePrincipal(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	m := r.Metric
	var out []series
	var wss []catalog.Workspace
	for _, scope := range r.Props.Scopes {
		ws, cat, dec, err := s.authorizeScope(ctx, p, scope)
		if err != nil {
			return nil, nil, err
		}
		wss = append(wss, ws)
		var joined []metricSeries
		for i := range m.Criteria {
			c := &m.Criteria[i]
			src := &m.Sources[i]
			schema, ok := cat[src.Table]
			if !ok {
				return nil, nil, invalidCode("MetricNotFound", "", "The workspace '%s' has no %s table.", ws.Name, src.Table)
			}
			q, err := src.query(c, schema)
			if err != nil {
				return nil, nil, err
			}
			qctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
			res, err := s.opts.Engine.Query(qctx, engine.Request{
				Query: q, Tables: cat, Source: s.opts.Source, WorkspaceID: ws.CustomerID,
				Timespan:      store.TimeRange{From: store.TicksFromTime(start), To: store.TicksFromTime(end)},
				RowConditions: dec.RowConditions, Now: end, Timeout: s.opts.QueryTimeout,
			})
			cancel()
			if err != nil {
				return nil, nil, fmt.Errorf("metric %s on %s: %w", c.Name, ws.Name, err)
			}
			if len(res.Tables) == 0 {
				return nil, nil, invalidCode("InvalidQuery", "", "The metric query of criterion %s returned no table.", c.Name)
			}
			// Aggregate with the generated column names, then name the
			// dimensions as the criterion does.
			ac := criterion{TimeAggregation: c.TimeAggregation, MetricMeasureColumn: metricValueColumn}
			if c.TimeAggregation == AggCount {
				ac.MetricMeasureColumn = ""
			}
			for j, d := range c.Dimensions {
				ac.Dimensions = append(ac.Dimensions, dimension{Name: metricDimColumn(j), Operator: d.Operator, Values: d.Values})
			}
			agg := newAggregator(&ac)
			if err := agg.add(&res.Tables[0]); err != nil {
				return nil, nil, err
			}
			var cur []metricSeries
			for _, sr := range agg.result() {
				if sr.n == 0 && len(c.Dimensions) == 0 && c.TimeAggregation == AggCount {
					continue // a metric without samples has no data, not a count of 0
				}
				dims := make([]dimValue, len(sr.dims))
				for j := range sr.dims {
					dims[j] = dimValue{Name: c.Dimensions[j].Name, Value: sr.dims[j].Value}
				}
				cur = append(cur, metricSeries{dims: dims, values: []float64{sr.value}, breach: compare(c.Operator, sr.value, *c.Threshold)})
			}
			if i == 0 {
				joined = cur
			} else {
				joined = joinSeries(joined, cur)
			}
			if len(joined) == 0 {
				break // a criterion without data: nothing can breach
			}
		}
		for _, js := range joined {
			key := seriesKey(js.dims)
			if len(r.Props.Scopes) > 1 {
				key = strings.ToLower(ws.ID()) + "|" + key
			}
			out = append(out, series{key: key, dims: js.dims, value: js.values[0], values: js.values, breach: js.breach, target: ws.ID()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, wss, nil
}

// joinSeries joins the series of the criteria so far with the next
// criterion's on their shared dimension names.
func joinSeries(acc, next []metricSeries) []metricSeries {
	var out []metricSeries
	for _, a := range acc {
	pair:
		for _, b := range next {
			dims := append([]dimValue(nil), a.dims...)
			for _, bd := range b.dims {
				shared := false
				for _, ad := range a.dims {
					if ad.Name == bd.Name {
						if ad.Value != bd.Value {
							continue pair
						}
						shared = true
					}
				}
				if !shared {
					dims = append(dims, bd)
				}
			}
			out = append(out, metricSeries{dims: dims, values: append(append([]float64(nil), a.values...), b.values...), breach: a.breach && b.breach})
		}
	}
	return out
}

// criterionDims returns the dimension values of a series that belong to
// criterion c.
func criterionDims(c *metricCriterion, dims []dimValue) []dimValue {
	out := []dimValue{}
	for _, d := range c.Dimensions {
		for _, v := range dims {
			if v.Name == d.Name {
				out = append(out, v)
			}
		}
	}
	return out
}
