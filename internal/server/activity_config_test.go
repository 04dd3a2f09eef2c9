package server

import (
	"errors"
	"testing"
)

func TestActivityWorkspaceSetting(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{
		{"", true},
		{"none", true},
		{"NONE", true},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/workspaces/sec", true},
		{"/subscriptions/s/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/sec/", true},
		{"sec", false},
		{"/subscriptions/s/resourceGroups/rg", false},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/dataCollectionRules/x", false},
	} {
		cfg := testConfig(t.TempDir())
		cfg.Activity.Workspace = tc.v
		err := cfg.withDefaults().Validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
			t.Errorf("activity.workspace %q: %v; want ok=%v", tc.v, err, tc.ok)
		}
	}
}
