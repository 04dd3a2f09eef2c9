package ingest

import (
	"testing"

	"custos/internal/store"
)

// Streams of Azure's own data sources are not declared in the rule: their
// schema is the built-in table's, plus _ResourceId.
func TestParseRuleBuiltinStreams(t *testing.T) {
	r, err := ParseRule("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/vm", "", []byte(`{
		"properties": {"immutableId": "dcr-00000000000000000000000000000001",
		"dataSources": {"syslog": [{"name": "sys", "streams": ["Microsoft-Syslog"]}]},
		"destinations": {"logAnalytics": [{"name": "la", "workspaceResourceId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/w"}]},
		"dataFlows": [{"streams": ["Microsoft-Syslog", "Microsoft-Perf"], "destinations": ["la"]},
		              {"streams": ["Microsoft-NoSuchTable"], "destinations": ["la"]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		stream string
		cols   []string
	}{
		{"Microsoft-Syslog", []string{"Facility", "SeverityLevel", "SyslogMessage", "Computer", store.ColResourceID}},
		{"microsoft-perf", []string{"ObjectName", "CounterName", "CounterValue", store.ColResourceID}},
	} {
		name, schema, ok := r.stream(tc.stream)
		if !ok {
			t.Fatalf("stream %s not resolved", tc.stream)
		}
		for _, c := range tc.cols {
			if schema.Index(c) < 0 {
				t.Errorf("stream %s (%s): no column %s in %v", tc.stream, name, c, schema)
			}
		}
		if len(r.flowsFor(name)) != 1 {
			t.Errorf("stream %s: %d data flows; want 1", name, len(r.flowsFor(name)))
		}
	}
	if _, _, ok := r.stream("Microsoft-NoSuchTable"); ok {
		t.Error("a Microsoft- stream without a built-in table resolved")
	}
}
