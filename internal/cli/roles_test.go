package cli

import (
	"strings"
	"testing"
)

func TestCleanScope(t *testing.T) {
	for in, want := range map[string]string{
		"/":                                    "/",
		"/subscriptions/s1/resourceGroups/rg/": "/subscriptions/s1/resourceGroups/rg",
		"/subscriptions/s1":                    "/subscriptions/s1",
	} {
		if got, err := CleanScope(in); err != nil || got != want {
			t.Errorf("CleanScope(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "subscriptions/s1", "/subscriptions/../x", "/a?b=c", "/a b", "/a#b"} {
		if _, err := CleanScope(bad); err == nil {
			t.Errorf("CleanScope(%q) accepted", bad)
		}
	}
	if p, err := authzPath("/", "roleAssignments"); err != nil || p != "/providers/Microsoft.Authorization/roleAssignments" {
		t.Errorf("authzPath(/) = %q, %v", p, err)
	}
}

func TestRoleGUIDAndNewGUID(t *testing.T) {
	if got := RoleGUID("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/3913510d-42f4-4e42-8a64-420c390055eb"); got != "3913510d-42f4-4e42-8a64-420c390055eb" {
		t.Errorf("RoleGUID = %q", got)
	}
	seen := map[string]bool{}
	for range 100 {
		g, err := newGUID()
		if err != nil {
			t.Fatal(err)
		}
		if !guidPattern.MatchString(g) || g[14] != '4' || !strings.ContainsRune("89ab", rune(g[19])) || seen[g] {
			t.Fatalf("newGUID = %q", g)
		}
		seen[g] = true
	}
}
