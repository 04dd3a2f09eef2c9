package rbac

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrInvalidRole is wrapped by the errors of ValidateRoleDefinition.
var ErrInvalidRole = errors.New("rbac: invalid role definition")

// Limits on custom role definitions.
const (
	maxRoleNameLen      = 512
	maxRoleDescLen      = 2048
	maxPatternsPerBlock = 2000
	maxPatternLen       = 512
	maxAssignableScopes = 200
)

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsGUID reports whether s is a GUID in 8-4-4-4-12 form.
func IsGUID(s string) bool { return guidPattern.MatchString(s) }

// ValidateRoleDefinition checks a custom role definition: a GUID ID, a role
// name, exactly one permissions block (as Azure requires), well-formed action
// patterns, and at least one well-formed assignable scope. A bare "*" is
// refused in dataActions: a custom role that reads and writes every kind of
// data is almost always a mistake, and none of the built-in roles has one.
func ValidateRoleDefinition(d RoleDefinition) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRole, fmt.Sprintf(format, args...))
	}
	if !IsGUID(d.ID) {
		return bad("the role definition ID %q is not a GUID", clipText(d.ID, 80))
	}
	name := strings.TrimSpace(d.Name)
	if name == "" {
		return bad("roleName is required")
	}
	if len(name) > maxRoleNameLen || strings.ContainsAny(name, "\x00\r\n\t") {
		return bad("roleName must be at most %d characters without control characters", maxRoleNameLen)
	}
	if len(d.Description) > maxRoleDescLen {
		return bad("description must be at most %d characters", maxRoleDescLen)
	}
	if len(d.Permissions) != 1 {
		return bad("a role definition must have exactly one permissions block; it has %d", len(d.Permissions))
	}
	p := d.Permissions[0]
	if len(p.Actions) == 0 && len(p.DataActions) == 0 {
		return bad("permissions must list at least one action or data action")
	}
	for _, set := range []struct {
		name string
		list []string
	}{{"actions", p.Actions}, {"notActions", p.NotActions}, {"dataActions", p.DataActions}, {"notDataActions", p.NotDataActions}} {
		if len(set.list) > maxPatternsPerBlock {
			return bad("%s lists more than %d entries", set.name, maxPatternsPerBlock)
		}
		for _, pat := range set.list {
			if err := validPattern(pat); err != nil {
				return bad("%s entry %q: %v", set.name, clipText(pat, 120), err)
			}
			if set.name == "dataActions" && strings.TrimSpace(pat) == "*" {
				return bad("dataActions must not be a bare \"*\"; name the data actions the role grants")
			}
		}
	}
	if len(d.AssignableScopes) == 0 {
		return bad("assignableScopes must list at least one scope")
	}
	if len(d.AssignableScopes) > maxAssignableScopes {
		return bad("assignableScopes lists more than %d scopes", maxAssignableScopes)
	}
	for _, s := range d.AssignableScopes {
		if _, ok := normalizeScope(Scope(s)); !ok {
			return bad("assignable scope %q is not a valid scope", clipText(s, 200))
		}
	}
	return nil
}

// validPattern checks one action pattern: "*", or
// "{Namespace}/{...}" with optional "*" wildcards, no spaces or control
// characters, and no empty segments.
func validPattern(p string) error {
	if p == "*" {
		return nil
	}
	if p == "" || len(p) > maxPatternLen {
		return fmt.Errorf("must be 1 to %d characters", maxPatternLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == '\'' || c == '"' {
			return errors.New("contains a character that is not allowed")
		}
	}
	if strings.Contains(p, "//") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return errors.New("has an empty segment")
	}
	if !strings.Contains(p, "/") && !strings.HasPrefix(p, "*") {
		return errors.New("must look like {Namespace}/{resourceType}/{operation}")
	}
	return nil
}

// AssignableAt reports whether role d may be assigned at scope: one of its
// assignable scopes is scope or above it.
func (d RoleDefinition) AssignableAt(scope Scope) bool {
	target, ok := normalizeScope(scope)
	if !ok {
		return false
	}
	for _, s := range d.AssignableScopes {
		if as, ok := normalizeScope(Scope(s)); ok && covers(as, target) {
			return true
		}
	}
	return false
}

// Covers reports whether scope parent is child or an ancestor of it (ARM
// IDs compare case-insensitively, on segment boundaries). Malformed scopes
// cover nothing.
func Covers(parent, child Scope) bool {
	p, ok1 := normalizeScope(parent)
	c, ok2 := normalizeScope(child)
	return ok1 && ok2 && covers(p, c)
}

// NormalizeScope returns the canonical lower-case form of a scope, and
// whether it is well formed.
func NormalizeScope(s Scope) (Scope, bool) {
	n, ok := normalizeScope(s)
	return Scope(n), ok
}

// ValidateAssignment checks a role assignment before it is stored: GUID name
// and principal, a well-formed scope, a role assignable there, a condition
// that parses with conditionVersion "2.0", and an expiry after now (when set).
func ValidateAssignment(ra RoleAssignment, role RoleDefinition) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
	}
	if !IsGUID(ra.Name) {
		return bad("the role assignment name %q is not a GUID", clipText(ra.Name, 80))
	}
	if !IsGUID(ra.PrincipalID) {
		return bad("principalId %q is not a GUID", clipText(ra.PrincipalID, 80))
	}
	if _, ok := normalizeScope(ra.Scope); !ok {
		return bad("the scope is not valid")
	}
	if !role.AssignableAt(ra.Scope) {
		return bad("the role definition %s is not assignable at scope %s", role.ID, clipText(string(ra.Scope), 300))
	}
	if strings.TrimSpace(ra.Condition) != "" {
		if ra.ConditionVersion != ConditionVersion {
			return bad("conditionVersion must be %q when a condition is set", ConditionVersion)
		}
		if _, err := ParseCondition(ra.Condition); err != nil {
			return err
		}
	} else if ra.ConditionVersion != "" && ra.ConditionVersion != ConditionVersion {
		return bad("conditionVersion must be %q", ConditionVersion)
	}
	return nil
}
