package alert

import (
	"encoding/json"
	"testing"
	"time"

	"custos/internal/activity"
	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/kql"
)

// FuzzParseISODuration: no panic, bounded results, and formatting a parsed
// duration parses back to the same value.
func FuzzParseISODuration(f *testing.F) {
	for _, s := range []string{"PT5M", "P1D", "PT1H30M", "P2DT3H", "PT0S", "P1W", "PT", "P", "PT5M5M", "pt1h", "P99999999D", "PT1.5M", "-PT1M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseISODuration(s)
		if err != nil {
			return
		}
		if d < 0 || d > maxISODuration {
			t.Fatalf("%q parsed to %v", s, d)
		}
		back, err := ParseISODuration(FormatISODuration(d))
		if d > 0 && (err != nil || back != d) {
			t.Fatalf("%q → %v → %q → %v, %v", s, d, FormatISODuration(d), back, err)
		}
	})
}

// FuzzRuleAndGroupBodies: PUT bodies of rules and action groups decode and
// validate without panicking, and a rule that validates evaluates its
// comparisons on finite thresholds only.
func FuzzRuleAndGroupBodies(f *testing.F) {
	f.Add([]byte(`{"location":"eastus","identity":{"type":"SystemAssigned"},"properties":{"severity":2,"scopes":["/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w"],"evaluationFrequency":"PT5M","windowSize":"PT10M","criteria":{"allOf":[{"query":"Perf | where X > 1","timeAggregation":"Average","metricMeasureColumn":"X","dimensions":[{"name":"C","operator":"Include","values":["*"]}],"operator":"GreaterThan","threshold":1,"failingPeriods":{"numberOfEvaluationPeriods":3,"minFailingPeriodsToAlert":2}}]},"muteActionsDuration":"PT1H","autoMitigate":false,"actions":{"actionGroups":["/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/actionGroups/a"]}}}`))
	f.Add([]byte(`{"location":"Global","properties":{"groupShortName":"ops","emailReceivers":[{"name":"e","emailAddress":"a@b.c","useCommonAlertSchema":true}],"webhookReceivers":[{"name":"w","serviceUri":"https://h/x","useCommonAlertSchema":true,"useAadAuth":true,"identifierUri":"api://x"}]}}`))
	f.Add([]byte(`{"properties":{"criteria":{"allOf":[{"query":"T | summarize count() by bin(TimeGenerated, 1m","threshold":1e309}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var rr ruleRequest
		if err := api.UnmarshalStrict(body, &rr); err == nil && rr.Properties != nil {
			props, err := json.Marshal(rr.Properties)
			if err != nil {
				t.Fatal(err)
			}
			res := catalog.AlertResource{Type: catalog.TypeScheduledQueryRule, SubscriptionID: "s", ResourceGroup: "g", Name: "r",
				Properties: props, Audit: catalog.Audit{CreatedAt: time.Unix(0, 0)}}
			if r, err := parseRule(&res); err == nil {
				if r.Frequency < minFrequency || r.Window < minWindow || r.Periods < r.MinFailing || r.MinFailing < 1 {
					t.Fatalf("validated rule out of bounds: %+v", r)
				}
				_ = compare(r.Crit.Operator, 1, *r.Crit.Threshold)
			}
		}
		var gr groupRequest
		if err := api.UnmarshalStrict(body, &gr); err == nil && gr.Properties != nil {
			g := &actionGroup{Props: gr.Properties.actionGroupProperties}
			_ = g.validate()
		}
	})
}

// FuzzMetricAndActivityBodies: PUT bodies of metric alerts and activity log
// alerts decode and validate without panicking; a metric alert that
// validates generates a metric query that parses, and an activity log
// alert that validates can be matched against a record.
func FuzzMetricAndActivityBodies(f *testing.F) {
	f.Add([]byte(`{"location":"global","properties":{"severity":3,"scopes":["/subscriptions/s/resourceGroups/g/providers/Microsoft.OperationalInsights/workspaces/w"],"evaluationFrequency":"PT1M","windowSize":"PT5M","criteria":{"odata.type":"Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria","allOf":[{"criterionType":"StaticThresholdCriterion","name":"c","metricName":"% Processor Time","metricNamespace":"Processor","operator":"GreaterThan","threshold":80,"timeAggregation":"Average","dimensions":[{"name":"Computer","operator":"Exclude","values":["a'b"]}]}]}}}`))
	f.Add([]byte(`{"location":"global","properties":{"scopes":["/subscriptions/s"],"condition":{"allOf":[{"field":"category","equals":"Administrative"},{"anyOf":[{"field":"properties.x","containsAny":["y"]}]}]},"actions":{"actionGroups":[{"actionGroupId":"/subscriptions/s/resourceGroups/g/providers/Microsoft.Insights/actionGroups/a"}]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var mr metricAlertRequest
		if err := api.UnmarshalStrict(body, &mr); err == nil && mr.Properties != nil {
			props, err := json.Marshal(mr.Properties)
			if err != nil {
				t.Fatal(err)
			}
			res := catalog.AlertResource{Type: catalog.TypeMetricAlert, SubscriptionID: "s", ResourceGroup: "g", Name: "m",
				Properties: props, Audit: catalog.Audit{CreatedAt: time.Unix(0, 0)}}
			if r, err := parseRule(&res); err == nil {
				for i := range r.Metric.Criteria {
					q, err := r.Metric.Sources[i].query(&r.Metric.Criteria[i], nil)
					if err != nil {
						continue // a dimension that is not a column of Perf
					}
					if _, err := kql.Parse(q); err != nil {
						t.Fatalf("generated metric query does not parse: %v\n%s", err, q)
					}
				}
			}
		}
		var ar activityAlertRequest
		if err := api.UnmarshalStrict(body, &ar); err == nil && ar.Properties != nil {
			props, err := json.Marshal(ar.Properties)
			if err != nil {
				t.Fatal(err)
			}
			res := catalog.AlertResource{Type: catalog.TypeActivityLogAlert, SubscriptionID: "s", ResourceGroup: "g", Name: "a", Properties: props}
			if rule, err := parseActivityRule(&res); err == nil {
				rec, _ := json.Marshal(activity.Record{OperationName: "Microsoft.Authorization/roleAssignments/write", ResourceID: "/subscriptions/s/resourceGroups/g",
					Category: "Administrative", Properties: map[string]string{"x": "y"}})
				ev, err := newActivityEvent(catalog.ActivityEntry{Seq: 1, Record: rec})
				if err != nil {
					t.Fatal(err)
				}
				_ = rule.matches(ev)
			}
		}
	})
}
