package rbac

import (
	"slices"
	"testing"
)

// TestSelfGrantProbes: beside the standard probes, a role's concrete log
// data operations are probed one by one, and a wildcard that reaches into
// log data without covering any standard probe is reported (and so refused
// for a self-assignment), while wildcards that cover a probe (Owner's "*",
// Reader's "*/read") and patterns outside log data are left to the probes.
func TestSelfGrantProbes(t *testing.T) {
	role := func(actions, data []string) RoleDefinition {
		return RoleDefinition{Name: "custom", Permissions: []Permission{{Actions: actions, DataActions: data}}}
	}
	legacy := "Microsoft.OperationalInsights/workspaces/query/Perf/read"
	probes, wild := selfGrantProbes(role([]string{legacy, "Microsoft.Insights/dataCollectionRules/read"}, nil))
	if wild != "" || !slices.Contains(probes, Action("microsoft.operationalinsights/workspaces/query/perf/read")) {
		t.Errorf("legacy table action: probes %v, wild %q; want it probed", probes, wild)
	}
	if slices.Contains(probes, Action("microsoft.insights/datacollectionrules/read")) {
		t.Errorf("a non-data action was probed: %v", probes)
	}
	for _, w := range []string{"Microsoft.OperationalInsights/workspaces/query/Perf/*", "Microsoft.OperationalInsights/workspaces/tables/*/data/*"} {
		if _, wild := selfGrantProbes(role([]string{w}, nil)); wild != w {
			t.Errorf("%s: wild %q; want it reported", w, wild)
		}
	}
	for _, r := range []RoleDefinition{
		role([]string{"*"}, nil),
		role([]string{"*/read"}, nil),
		role([]string{"Microsoft.OperationalInsights/workspaces/*"}, nil),
		role(nil, []string{"Microsoft.OperationalInsights/workspaces/tables/data/*"}),
		role([]string{"Microsoft.Insights/dataCollectionRules/*"}, nil),
	} {
		if probes, wild := selfGrantProbes(r); wild != "" || len(probes) != len(jitProbes) {
			t.Errorf("%v: probes %v, wild %q; want only the standard probes", r.Permissions, probes, wild)
		}
	}
}
