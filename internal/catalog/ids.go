package catalog

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Resource types as ARM spells them.
const (
	TypeResourceGroup      = "Microsoft.Resources/resourceGroups"
	TypeWorkspace          = "Microsoft.OperationalInsights/workspaces"
	TypeTable              = "Microsoft.OperationalInsights/workspaces/tables"
	TypeDataCollectionRule = "Microsoft.Insights/dataCollectionRules"
)

// SubscriptionResourceID returns "/subscriptions/{sub}".
func SubscriptionResourceID(sub string) string { return "/subscriptions/" + sub }

// ResourceGroupResourceID returns the ARM ID of a resource group.
func ResourceGroupResourceID(sub, rg string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg
}

// WorkspaceResourceID returns the ARM ID of a Log Analytics workspace.
func WorkspaceResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeWorkspace + "/" + name
}

// TableResourceID returns the ARM ID of a workspace table.
func TableResourceID(sub, rg, ws, table string) string {
	return WorkspaceResourceID(sub, rg, ws) + "/tables/" + table
}

// DataCollectionRuleResourceID returns the ARM ID of a data collection rule.
func DataCollectionRuleResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeDataCollectionRule + "/" + name
}

func key(id string) string { return strings.ToLower(id) }

// ParseWorkspaceResourceID splits a workspace resource ID, comparing the fixed
// segments case-insensitively.
func ParseWorkspaceResourceID(id string) (sub, rg, name string, ok bool) {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	// "", subscriptions, {sub}, resourceGroups, {rg}, providers, Microsoft.OperationalInsights, workspaces, {name}
	if len(p) != 9 || p[0] != "" ||
		!strings.EqualFold(p[1], "subscriptions") || !strings.EqualFold(p[3], "resourceGroups") ||
		!strings.EqualFold(p[5], "providers") || !strings.EqualFold(p[6], "Microsoft.OperationalInsights") ||
		!strings.EqualFold(p[7], "workspaces") || p[2] == "" || p[4] == "" || p[8] == "" {
		return "", "", "", false
	}
	return p[2], p[4], p[8], true
}

var (
	guidRE          = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	resourceGroupRE = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	workspaceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]$`)
	dcrNameRE       = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$`)
)

// IsGUID reports whether s is a GUID in 8-4-4-4-12 form.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// ValidateSubscriptionID checks a subscription ID (a GUID).
func ValidateSubscriptionID(sub string) error {
	if !IsGUID(sub) {
		return Invalid("InvalidSubscriptionId", "subscriptionId",
			"The provided subscription identifier '%s' is malformed or invalid.", truncate(sub, 100))
	}
	return nil
}

// ValidateResourceGroupName checks ARM's resource group naming rules.
func ValidateResourceGroupName(rg string) error {
	if !resourceGroupRE.MatchString(rg) || strings.HasSuffix(rg, ".") {
		return Invalid("InvalidResourceGroup", "resourceGroupName",
			"The provided resource group name '%s' has these invalid characters or length. The name can be up to 90 characters in length, must not end with a period, and can contain only alphanumeric characters, underscores, parentheses, hyphens and periods.",
			truncate(rg, 100))
	}
	return nil
}

// ValidateWorkspaceName checks Log Analytics' workspace naming rules.
func ValidateWorkspaceName(name string) error {
	if !workspaceNameRE.MatchString(name) {
		return Invalid("InvalidWorkspaceName", "workspaceName",
			"The workspace name '%s' is invalid. It must be 4 to 63 characters long, contain only letters, digits and hyphens, and start and end with a letter or digit.",
			truncate(name, 100))
	}
	return nil
}

// ValidateDataCollectionRuleName checks data collection rule naming rules.
func ValidateDataCollectionRuleName(name string) error {
	if !dcrNameRE.MatchString(name) {
		return Invalid("InvalidResourceName", "dataCollectionRuleName",
			"The data collection rule name '%s' is invalid. It must be 1 to 63 characters long, start with a letter or digit, and contain only letters, digits, '-', '_' and '.'.",
			truncate(name, 100))
	}
	return nil
}

// Tag limits, as ARM enforces them.
const (
	maxTags        = 50
	maxTagKeyLen   = 512
	maxTagValueLen = 256
	maxLocationLen = 64
)

// ValidateTags checks ARM's tag limits.
func ValidateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return Invalid("InvalidTag", "tags", "A resource can have at most %d tags; %d were given.", maxTags, len(tags))
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKeyLen || strings.ContainsAny(k, "<>%&\\?/") {
			return Invalid("InvalidTagNameCharacters", "tags",
				"The tag name '%s' is invalid: it must be 1 to %d characters and not contain '<', '>', '%%', '&', '\\', '?' or '/'.",
				truncate(k, 100), maxTagKeyLen)
		}
		if len(v) > maxTagValueLen {
			return Invalid("InvalidTag", "tags", "The value of tag '%s' exceeds %d characters.", truncate(k, 100), maxTagValueLen)
		}
	}
	return nil
}

// ValidateLocation checks that a location is present and plausible.
func ValidateLocation(loc string) error {
	if strings.TrimSpace(loc) == "" {
		return Invalid("LocationRequired", "location", "The location property is required for this definition.")
	}
	if len(loc) > maxLocationLen {
		return Invalid("InvalidLocation", "location", "The location '%s' is invalid.", truncate(loc, 100))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func marshalTags(tags map[string]string) (string, error) {
	if tags == nil {
		tags = map[string]string{}
	}
	b, err := json.Marshal(tags)
	if err != nil {
		return "", fmt.Errorf("encode tags: %w", err)
	}
	return string(b), nil
}

func unmarshalTags(s string) (map[string]string, error) {
	tags := map[string]string{}
	if s == "" {
		return tags, nil
	}
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("decode stored tags: %w", err)
	}
	return tags, nil
}
