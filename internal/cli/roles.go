package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// APIVersionAuthorization is the api-version for role definitions and role
// assignments (Microsoft.Authorization), as Azure's REST reference uses it.
const APIVersionAuthorization = "2022-04-01"

// RoleDefinition is a role definition as the control plane returns it.
type RoleDefinition struct {
	ID         string `json:"id"`
	Name       string `json:"name"` // the role's GUID
	Properties struct {
		RoleName    string `json:"roleName"`
		Type        string `json:"type"` // BuiltInRole or CustomRole
		Description string `json:"description"`
		Permissions []struct {
			Actions        []string `json:"actions"`
			NotActions     []string `json:"notActions"`
			DataActions    []string `json:"dataActions"`
			NotDataActions []string `json:"notDataActions"`
		} `json:"permissions"`
	} `json:"properties"`
	Raw json.RawMessage `json:"-"`
}

// RoleAssignment is a role assignment as the control plane returns it.
type RoleAssignment struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		Scope            string `json:"scope"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType"`
		Description      string `json:"description"`
		Condition        string `json:"condition"`
		ExpiresOn        string `json:"expiresOn"`
	} `json:"properties"`
	Raw json.RawMessage `json:"-"`
}

// RoleGUID returns the last segment of a role definition ID.
func RoleGUID(roleDefinitionID string) string {
	if i := strings.LastIndexByte(roleDefinitionID, '/'); i >= 0 {
		return roleDefinitionID[i+1:]
	}
	return roleDefinitionID
}

func roleDefinitionRaw(d *RoleDefinition) *json.RawMessage { return &d.Raw }
func roleAssignmentRaw(a *RoleAssignment) *json.RawMessage { return &a.Raw }

// authzPath returns the Microsoft.Authorization collection path of kind
// ("roleDefinitions", "roleAssignments") at scope ("/" or an ARM ID).
func authzPath(scope, kind string) (string, error) {
	s, err := CleanScope(scope)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(s, "/") + "/providers/Microsoft.Authorization/" + kind, nil
}

// CleanScope checks that scope is "/" or an ARM resource ID path, and
// returns it without a trailing slash (except for "/").
func CleanScope(scope string) (string, error) {
	if scope == "" || scope[0] != '/' {
		return "", fmt.Errorf("scope %q: want \"/\" or an ARM ID such as /subscriptions/{id}/resourceGroups/{name}", scope)
	}
	if strings.ContainsAny(scope, "?#\\ \t\r\n") {
		return "", fmt.Errorf("scope %q: must be a plain resource ID path", scope)
	}
	for _, seg := range strings.Split(strings.Trim(scope, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("scope %q: must be a plain resource ID path", scope)
		}
	}
	if scope == "/" {
		return scope, nil
	}
	return strings.TrimRight(scope, "/"), nil
}

// ListRoleDefinitions lists the role definitions usable at scope: the
// built-in roles and the custom roles assignable there.
func (c *Client) ListRoleDefinitions(ctx context.Context, scope string) ([]RoleDefinition, error) {
	p, err := authzPath(scope, "roleDefinitions")
	if err != nil {
		return nil, err
	}
	items, err := c.list(ctx, p, APIVersionAuthorization)
	if err != nil {
		return nil, err
	}
	return decodeList(items, roleDefinitionRaw)
}

// ResolveRole finds a role definition by GUID or by role name (compared
// case-insensitively, as "Monitoring Metrics Publisher").
func (c *Client) ResolveRole(ctx context.Context, scope, nameOrID string) (RoleDefinition, error) {
	defs, err := c.ListRoleDefinitions(ctx, scope)
	if err != nil {
		return RoleDefinition{}, fmt.Errorf("look up role %q: %w", nameOrID, err)
	}
	want := RoleGUID(strings.TrimSpace(nameOrID))
	for _, d := range defs {
		if strings.EqualFold(d.Name, want) || strings.EqualFold(d.Properties.RoleName, strings.TrimSpace(nameOrID)) {
			return d, nil
		}
	}
	return RoleDefinition{}, fmt.Errorf("no role %q at scope %s (custos role definition list shows the roles)", nameOrID, scope)
}

// ListRoleAssignments lists the role assignments at, above and below scope,
// as Azure's list at a scope does.
func (c *Client) ListRoleAssignments(ctx context.Context, scope string) ([]RoleAssignment, error) {
	p, err := authzPath(scope, "roleAssignments")
	if err != nil {
		return nil, err
	}
	items, err := c.list(ctx, p, APIVersionAuthorization)
	if err != nil {
		return nil, err
	}
	return decodeList(items, roleAssignmentRaw)
}

// RoleAssignmentSpec is what `custos role assignment create` sends.
type RoleAssignmentSpec struct {
	Scope            string
	RoleDefinitionID string // full ID or GUID
	PrincipalID      string // object ID
	PrincipalType    string // User, Group, ServicePrincipal; empty lets the server decide
	Description      string
}

// CreateRoleAssignment assigns a role, under a new random GUID name.
func (c *Client) CreateRoleAssignment(ctx context.Context, spec RoleAssignmentSpec) (RoleAssignment, error) {
	p, err := authzPath(spec.Scope, "roleAssignments")
	if err != nil {
		return RoleAssignment{}, err
	}
	if !guidPattern.MatchString(spec.PrincipalID) {
		return RoleAssignment{}, fmt.Errorf("principal %q: want an object ID (GUID)", spec.PrincipalID)
	}
	name, err := newGUID()
	if err != nil {
		return RoleAssignment{}, err
	}
	props := map[string]any{"roleDefinitionId": spec.RoleDefinitionID, "principalId": spec.PrincipalID}
	if spec.PrincipalType != "" {
		props["principalType"] = spec.PrincipalType
	}
	if spec.Description != "" {
		props["description"] = spec.Description
	}
	body, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return RoleAssignment{}, fmt.Errorf("encode role assignment: %w", err)
	}
	data, err := c.put(ctx, p+"/"+name, APIVersionAuthorization, body)
	if err != nil {
		return RoleAssignment{}, err
	}
	return decodeResource(data, roleAssignmentRaw)
}

// DeleteRoleAssignment deletes a role assignment given by its full ID, or by
// its name (GUID) at scope.
func (c *Client) DeleteRoleAssignment(ctx context.Context, scope, nameOrID string) error {
	p := nameOrID
	if !strings.HasPrefix(nameOrID, "/") {
		if !guidPattern.MatchString(nameOrID) {
			return fmt.Errorf("role assignment %q: want its name (a GUID) or its full ID", nameOrID)
		}
		base, err := authzPath(scope, "roleAssignments")
		if err != nil {
			return err
		}
		p = base + "/" + nameOrID
	} else if _, err := CleanScope(nameOrID); err != nil || !strings.Contains(strings.ToLower(nameOrID), "/providers/microsoft.authorization/roleassignments/") {
		return fmt.Errorf("role assignment %q: not a role assignment ID", nameOrID)
	}
	return c.del(ctx, p, APIVersionAuthorization)
}

// SelfObjectID returns the object ID of the principal the client signs in
// as, read from the oid claim of its own management token. The token comes
// straight from the token service over TLS, so reading the claim without
// verifying the signature is sound here; the server verifies every use.
func (c *Client) SelfObjectID(ctx context.Context) (string, error) {
	tok, err := c.Token(ctx, "management")
	if err != nil {
		return "", err
	}
	parts := strings.Split(tok.Token, ".")
	if len(parts) != 3 {
		return "", errors.New("the access token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("decode the access token: %w", err)
	}
	var claims struct {
		OID string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.OID == "" {
		return "", errors.New("the access token has no oid claim")
	}
	return claims.OID, nil
}

// newGUID returns a random (version 4) GUID.
func newGUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a GUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
