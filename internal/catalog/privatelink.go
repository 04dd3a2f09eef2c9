package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// TypePrivateLinkScope is the ARM type of an Azure Monitor private link scope.
const TypePrivateLinkScope = "Microsoft.Insights/privateLinkScopes"

// TypeScopedResource is the ARM type of a private link scope's scoped resource.
const TypeScopedResource = "Microsoft.Insights/privateLinkScopes/scopedResources"

// Access modes of a private link scope.
const (
	AccessModeOpen        = "Open"
	AccessModePrivateOnly = "PrivateOnly"
)

// Limits Azure documents for private link scopes.
const (
	// MaxScopedResources bounds the scoped resources of one scope.
	MaxScopedResources = 3000
	// MaxScopesPerResource bounds the scopes one resource may be in.
	MaxScopesPerResource = 100
	maxScopeExclusions   = 100
)

// AccessModeExclusion overrides a scope's access modes for one private
// endpoint connection. Custos has no private endpoint connections, so
// exclusions are stored and returned but change nothing.
type AccessModeExclusion struct {
	PrivateEndpointConnectionName string `json:"privateEndpointConnectionName"`
	IngestionAccessMode           string `json:"ingestionAccessMode,omitempty"`
	QueryAccessMode               string `json:"queryAccessMode,omitempty"`
}

// PrivateLinkScope is a Microsoft.Insights/privateLinkScopes resource. A
// scope whose IngestionAccessMode or QueryAccessMode is PrivateOnly makes
// its scoped workspaces refuse public requests of that kind.
type PrivateLinkScope struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Tags           map[string]string

	IngestionAccessMode string // Open or PrivateOnly
	QueryAccessMode     string // Open or PrivateOnly
	Exclusions          []AccessModeExclusion

	ETag  string
	Audit Audit
}

// ID returns the scope's resource ID.
func (p *PrivateLinkScope) ID() string {
	return PrivateLinkScopeResourceID(p.SubscriptionID, p.ResourceGroup, p.Name)
}

// ScopedResource is one resource (a workspace or a data collection
// endpoint) in a private link scope.
type ScopedResource struct {
	ScopeID          string // the scope's resource ID
	Name             string
	LinkedResourceID string
	Audit            Audit
}

// ID returns the scoped resource's resource ID.
func (s *ScopedResource) ID() string { return s.ScopeID + "/scopedResources/" + s.Name }

// PrivateLinkScopeResourceID returns .../providers/Microsoft.Insights/privateLinkScopes/{name}.
func PrivateLinkScopeResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypePrivateLinkScope + "/" + name
}

// Scope names: 1 to 255 letters, digits, '-', '_', '.' and '(' ')' (Azure's
// rule), not ending with '.'.
var plsNameRE = regexp.MustCompile(`^[A-Za-z0-9_().-]{1,255}$`)

// Scoped resource names: 1 to 255 letters, digits, '-', '_' and '.'.
var scopedNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

func normalizeAccessMode(target, v string) (string, error) {
	switch {
	case strings.EqualFold(v, AccessModeOpen):
		return AccessModeOpen, nil
	case strings.EqualFold(v, AccessModePrivateOnly):
		return AccessModePrivateOnly, nil
	}
	return "", Invalid("InvalidParameter", target, "The access mode '%s' is invalid: use 'Open' or 'PrivateOnly'.", truncate(v, 100))
}

func validatePrivateLinkScope(p *PrivateLinkScope) error {
	if !plsNameRE.MatchString(p.Name) || strings.HasSuffix(p.Name, ".") {
		return Invalid("InvalidResourceName", "name",
			"The private link scope name '%s' is invalid: use 1 to 255 letters, digits, '-', '_', '.', '(' and ')', not ending with '.'.",
			truncate(p.Name, 100))
	}
	if err := ValidateTags(p.Tags); err != nil {
		return err
	}
	var err error
	if p.IngestionAccessMode, err = normalizeAccessMode("properties.accessModeSettings.ingestionAccessMode", p.IngestionAccessMode); err != nil {
		return err
	}
	if p.QueryAccessMode, err = normalizeAccessMode("properties.accessModeSettings.queryAccessMode", p.QueryAccessMode); err != nil {
		return err
	}
	if len(p.Exclusions) > maxScopeExclusions {
		return Invalid("InvalidParameter", "properties.accessModeSettings.exclusions", "At most %d exclusions are allowed.", maxScopeExclusions)
	}
	for i := range p.Exclusions {
		e := &p.Exclusions[i]
		target := fmt.Sprintf("properties.accessModeSettings.exclusions[%d]", i)
		if e.PrivateEndpointConnectionName == "" || len(e.PrivateEndpointConnectionName) > 255 {
			return Invalid("InvalidParameter", target+".privateEndpointConnectionName", "Each exclusion names a private endpoint connection (1 to 255 characters).")
		}
		if e.IngestionAccessMode != "" {
			if e.IngestionAccessMode, err = normalizeAccessMode(target+".ingestionAccessMode", e.IngestionAccessMode); err != nil {
				return err
			}
		}
		if e.QueryAccessMode != "" {
			if e.QueryAccessMode, err = normalizeAccessMode(target+".queryAccessMode", e.QueryAccessMode); err != nil {
				return err
			}
		}
	}
	return nil
}

const plsColumns = `s.subscription_id, g.name, p.name, p.location, p.tags, p.ingestion_mode, p.query_mode, p.exclusions,
	p.etag, p.created_at, p.created_by, p.created_by_type, p.modified_at, p.modified_by, p.modified_by_type`

const plsFrom = ` FROM private_link_scopes p JOIN resource_groups g ON g.rg_key = p.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanPrivateLinkScope(sc interface{ Scan(...any) error }) (PrivateLinkScope, error) {
	var p PrivateLinkScope
	var tags, excl, created, modified string
	err := sc.Scan(&p.SubscriptionID, &p.ResourceGroup, &p.Name, &p.Location, &tags, &p.IngestionAccessMode, &p.QueryAccessMode,
		&excl, &p.ETag, &created, &p.Audit.CreatedBy, &p.Audit.CreatedByType, &modified, &p.Audit.ModifiedBy, &p.Audit.ModifiedByType)
	if err != nil {
		return PrivateLinkScope{}, err
	}
	if p.Tags, err = unmarshalTags(tags); err != nil {
		return PrivateLinkScope{}, err
	}
	if err := json.Unmarshal([]byte(excl), &p.Exclusions); err != nil {
		return PrivateLinkScope{}, fmt.Errorf("private link scope exclusions: %w", err)
	}
	if p.Audit.CreatedAt, err = parseTime(created); err != nil {
		return PrivateLinkScope{}, err
	}
	if p.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return PrivateLinkScope{}, err
	}
	return p, nil
}

func getPrivateLinkScope(ctx context.Context, r run, sub, rg, name string) (PrivateLinkScope, error) {
	p, err := scanPrivateLinkScope(r.row(ctx, `SELECT `+plsColumns+plsFrom+`WHERE p.pls_key = ?`,
		key(PrivateLinkScopeResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return PrivateLinkScope{}, errResourceNotFound(TypePrivateLinkScope+"/"+name, rg)
	}
	if err != nil {
		return PrivateLinkScope{}, fmt.Errorf("get private link scope: %w", err)
	}
	return p, nil
}

// PutPrivateLinkScope creates or replaces a private link scope, keeping the
// name's casing and the creation data of an existing one. It reports
// whether the scope was created.
func (c *DB) PutPrivateLinkScope(ctx context.Context, p PrivateLinkScope, pre Precondition, by Actor) (PrivateLinkScope, bool, error) {
	if err := validatePrivateLinkScope(&p); err != nil {
		return PrivateLinkScope{}, false, err
	}
	tags, err := marshalTags(p.Tags)
	if err != nil {
		return PrivateLinkScope{}, false, err
	}
	if p.Exclusions == nil {
		p.Exclusions = []AccessModeExclusion{}
	}
	excl, err := json.Marshal(p.Exclusions)
	if err != nil {
		return PrivateLinkScope{}, false, fmt.Errorf("encode exclusions: %w", err)
	}
	etag, err := c.newETag()
	if err != nil {
		return PrivateLinkScope{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, p.SubscriptionID, p.ResourceGroup)
		if err != nil {
			return err
		}
		p.SubscriptionID, p.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getPrivateLinkScope(ctx, r, p.SubscriptionID, p.ResourceGroup, p.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		p.ETag = etag
		p.Audit.ModifiedAt, p.Audit.ModifiedBy, p.Audit.ModifiedByType = now, by.ID, by.Type
		if exists {
			p.Name = old.Name
			p.Audit.CreatedAt, p.Audit.CreatedBy, p.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE private_link_scopes SET location = ?, tags = ?, ingestion_mode = ?, query_mode = ?,
				exclusions = ?, etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE pls_key = ?`,
				p.Location, tags, p.IngestionAccessMode, p.QueryAccessMode, string(excl), p.ETag, fmtTime(now), by.ID, by.Type, key(p.ID()))
		} else {
			created = true
			p.Audit.CreatedAt, p.Audit.CreatedBy, p.Audit.CreatedByType = now, by.ID, by.Type
			_, err = r.exec(ctx, `INSERT INTO private_link_scopes (pls_key, rg_key, sub_key, name, location, tags, ingestion_mode,
				query_mode, exclusions, etag, created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(p.ID()), key(g.ID()), key(SubscriptionResourceID(p.SubscriptionID)), p.Name, p.Location, tags, p.IngestionAccessMode, p.QueryAccessMode,
				string(excl), p.ETag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put private link scope: %w", err)
		}
		return nil
	})
	if err != nil {
		return PrivateLinkScope{}, false, err
	}
	return p, created, nil
}

// PrivateLinkScope returns a scope by subscription, resource group and name.
func (c *DB) PrivateLinkScope(ctx context.Context, sub, rg, name string) (PrivateLinkScope, error) {
	if _, err := requireResourceGroup(ctx, c.r(), sub, rg); err != nil {
		return PrivateLinkScope{}, err
	}
	return getPrivateLinkScope(ctx, c.r(), sub, rg, name)
}

// PrivateLinkScopes lists the scopes of a subscription, or of one resource
// group when rg is not "".
func (c *DB) PrivateLinkScopes(ctx context.Context, sub, rg string) ([]PrivateLinkScope, error) {
	q := `SELECT ` + plsColumns + plsFrom
	if rg != "" {
		if _, err := requireResourceGroup(ctx, c.r(), sub, rg); err != nil {
			return nil, err
		}
		return queryAll(ctx, c.r(), "list private link scopes", scanPrivateLinkScope, q+`WHERE p.rg_key = ? ORDER BY p.pls_key`,
			key(ResourceGroupResourceID(sub, rg)))
	}
	if _, err := getSubscription(ctx, c.r(), sub); err != nil {
		return nil, err
	}
	return queryAll(ctx, c.r(), "list private link scopes", scanPrivateLinkScope, q+`WHERE p.sub_key = ? ORDER BY p.pls_key`,
		key(SubscriptionResourceID(sub)))
}

// DeletePrivateLinkScope removes a scope and its scoped resources; it
// reports whether the scope existed.
func (c *DB) DeletePrivateLinkScope(ctx context.Context, sub, rg, name string, pre Precondition) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return err
		}
		old, err := getPrivateLinkScope(ctx, r, sub, rg, name)
		if errors.Is(err, ErrNotFound) {
			return pre.check(false, "")
		}
		if err != nil {
			return err
		}
		if err := pre.check(true, old.ETag); err != nil {
			return err
		}
		if _, err := r.exec(ctx, `DELETE FROM private_link_scoped_resources WHERE pls_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete private link scope: %w", err)
		}
		if _, err := r.exec(ctx, `DELETE FROM private_link_scopes WHERE pls_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete private link scope: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// isDataCollectionEndpointID reports whether id names a
// Microsoft.Insights/dataCollectionEndpoints resource.
func isDataCollectionEndpointID(id string) bool {
	p := strings.Split(strings.TrimSuffix(id, "/"), "/")
	return len(p) == 9 && p[0] == "" && strings.EqualFold(p[1], "subscriptions") && strings.EqualFold(p[3], "resourceGroups") &&
		strings.EqualFold(p[5], "providers") && strings.EqualFold(p[6], "Microsoft.Insights") &&
		strings.EqualFold(p[7], "dataCollectionEndpoints") && p[2] != "" && p[4] != "" && p[8] != ""
}

const scopedColumns = `p.pls_key, x.name, x.linked_id, x.created_at, x.created_by, x.created_by_type, x.modified_at,
	x.modified_by, x.modified_by_type`

func scanScopedResource(sc interface{ Scan(...any) error }) (ScopedResource, error) {
	var s ScopedResource
	var plsKey, created, modified string
	if err := sc.Scan(&plsKey, &s.Name, &s.LinkedResourceID, &created, &s.Audit.CreatedBy, &s.Audit.CreatedByType,
		&modified, &s.Audit.ModifiedBy, &s.Audit.ModifiedByType); err != nil {
		return ScopedResource{}, err
	}
	var err error
	if s.Audit.CreatedAt, err = parseTime(created); err != nil {
		return ScopedResource{}, err
	}
	if s.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return ScopedResource{}, err
	}
	return s, nil
}

func listScopedResources(ctx context.Context, r run, scope *PrivateLinkScope, where string, args ...any) ([]ScopedResource, error) {
	q := `SELECT ` + scopedColumns + ` FROM private_link_scoped_resources x JOIN private_link_scopes p ON p.pls_key = x.pls_key
		WHERE x.pls_key = ?`
	if where != "" {
		q += ` AND ` + where
	}
	out, err := queryAll(ctx, r, "list scoped resources", scanScopedResource, q+` ORDER BY x.name_key`,
		append([]any{key(scope.ID())}, args...)...)
	for i := range out {
		out[i].ScopeID = scope.ID()
	}
	return out, err
}

// PutScopedResource adds or replaces a scoped resource of a scope. The
// linked resource must be an existing workspace or a data collection
// endpoint ID. It reports whether the scoped resource was created.
func (c *DB) PutScopedResource(ctx context.Context, sub, rg, scopeName string, s ScopedResource, by Actor) (ScopedResource, bool, error) {
	if !scopedNameRE.MatchString(s.Name) {
		return ScopedResource{}, false, Invalid("InvalidResourceName", "name",
			"The scoped resource name '%s' is invalid: use 1 to 255 letters, digits, '-', '_' and '.'.", truncate(s.Name, 100))
	}
	if s.LinkedResourceID == "" {
		return ScopedResource{}, false, Invalid("InvalidParameter", "properties.linkedResourceId", "The property 'linkedResourceId' is required.")
	}
	created := false
	err := c.inTx(ctx, func(r run) error {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return err
		}
		scope, err := getPrivateLinkScope(ctx, r, sub, rg, scopeName)
		if err != nil {
			return err
		}
		s.ScopeID = scope.ID()
		switch {
		case isDataCollectionEndpointID(s.LinkedResourceID):
		default:
			if _, _, _, ok := ParseWorkspaceResourceID(s.LinkedResourceID); !ok {
				return Invalid("InvalidParameter", "properties.linkedResourceId",
					"'%s' is neither a Log Analytics workspace nor a data collection endpoint resource ID.", truncate(s.LinkedResourceID, 300))
			}
			ws, err := workspaceByID(ctx, r, s.LinkedResourceID)
			if errors.Is(err, ErrNotFound) {
				return Invalid("InvalidParameter", "properties.linkedResourceId", "The workspace '%s' does not exist.", truncate(s.LinkedResourceID, 300))
			}
			if err != nil {
				return err
			}
			s.LinkedResourceID = ws.ID()
		}
		old, err := listScopedResources(ctx, r, &scope, `x.name_key = ?`, key(s.Name))
		if err != nil {
			return err
		}
		now := c.nowUTC()
		s.Audit.ModifiedAt, s.Audit.ModifiedBy, s.Audit.ModifiedByType = now, by.ID, by.Type
		if len(old) == 1 {
			o := old[0]
			s.Name = o.Name
			s.Audit.CreatedAt, s.Audit.CreatedBy, s.Audit.CreatedByType = o.Audit.CreatedAt, o.Audit.CreatedBy, o.Audit.CreatedByType
		} else {
			created = true
			s.Audit.CreatedAt, s.Audit.CreatedBy, s.Audit.CreatedByType = now, by.ID, by.Type
			var n int
			if err := r.row(ctx, `SELECT COUNT(*) FROM private_link_scoped_resources WHERE pls_key = ?`, key(scope.ID())).Scan(&n); err != nil {
				return fmt.Errorf("put scoped resource: %w", err)
			}
			if n >= MaxScopedResources {
				return conflict("ScopedResourceLimitExceeded", "The private link scope '%s' already holds %d resources.", scope.Name, n)
			}
		}
		// A resource may be in at most MaxScopesPerResource scopes, and in a
		// scope only once.
		var inScopes, here int
		if err := r.row(ctx, `SELECT COUNT(DISTINCT pls_key), COALESCE(SUM(CASE WHEN pls_key = ? AND name_key <> ? THEN 1 ELSE 0 END), 0)
			FROM private_link_scoped_resources WHERE linked_key = ?`, key(scope.ID()), key(s.Name), key(s.LinkedResourceID)).Scan(&inScopes, &here); err != nil {
			return fmt.Errorf("put scoped resource: %w", err)
		}
		if here > 0 {
			return conflict("Conflict", "The resource '%s' is already in the private link scope '%s' under another name.",
				truncate(s.LinkedResourceID, 300), scope.Name)
		}
		if created && inScopes >= MaxScopesPerResource {
			return conflict("ScopeLimitExceeded", "The resource '%s' is already in %d private link scopes.", truncate(s.LinkedResourceID, 300), inScopes)
		}
		if len(old) == 1 {
			_, err = r.exec(ctx, `UPDATE private_link_scoped_resources SET linked_id = ?, linked_key = ?, modified_at = ?, modified_by = ?,
				modified_by_type = ? WHERE pls_key = ? AND name_key = ?`, s.LinkedResourceID, key(s.LinkedResourceID), fmtTime(now),
				by.ID, by.Type, key(scope.ID()), key(s.Name))
		} else {
			_, err = r.exec(ctx, `INSERT INTO private_link_scoped_resources (pls_key, name_key, name, linked_id, linked_key, created_at,
				created_by, created_by_type, modified_at, modified_by, modified_by_type) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				key(scope.ID()), key(s.Name), s.Name, s.LinkedResourceID, key(s.LinkedResourceID), fmtTime(now), by.ID, by.Type,
				fmtTime(now), by.ID, by.Type)
		}
		if err != nil {
			return fmt.Errorf("put scoped resource: %w", err)
		}
		return nil
	})
	if err != nil {
		return ScopedResource{}, false, err
	}
	return s, created, nil
}

// ScopedResource returns one scoped resource of a scope.
func (c *DB) ScopedResource(ctx context.Context, sub, rg, scopeName, name string) (ScopedResource, error) {
	scope, err := c.PrivateLinkScope(ctx, sub, rg, scopeName)
	if err != nil {
		return ScopedResource{}, err
	}
	out, err := listScopedResources(ctx, c.r(), &scope, `x.name_key = ?`, key(name))
	if err != nil {
		return ScopedResource{}, err
	}
	if len(out) == 0 {
		return ScopedResource{}, errResourceNotFound(TypeScopedResource+"/"+name, rg)
	}
	return out[0], nil
}

// ScopedResources lists the scoped resources of a scope.
func (c *DB) ScopedResources(ctx context.Context, sub, rg, scopeName string) ([]ScopedResource, error) {
	scope, err := c.PrivateLinkScope(ctx, sub, rg, scopeName)
	if err != nil {
		return nil, err
	}
	return listScopedResources(ctx, c.r(), &scope, "")
}

// DeleteScopedResource removes a scoped resource; it reports whether it existed.
func (c *DB) DeleteScopedResource(ctx context.Context, sub, rg, scopeName, name string) (bool, error) {
	scope, err := c.PrivateLinkScope(ctx, sub, rg, scopeName)
	if err != nil {
		return false, err
	}
	res, err := c.r().exec(ctx, `DELETE FROM private_link_scoped_resources WHERE pls_key = ? AND name_key = ?`, key(scope.ID()), key(name))
	if err != nil {
		return false, fmt.Errorf("delete scoped resource: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete scoped resource: %w", err)
	}
	return n > 0, nil
}

// PrivateOnlyModes reports whether any private link scope holding the
// workspace (by resource ID) has its ingestion or query access mode set to
// PrivateOnly. The server's network rules call it for every public
// data-plane request; it reads the catalog each time (no cache), so a
// change applies to the next request.
func (c *DB) PrivateOnlyModes(ctx context.Context, workspaceResourceID string) (ingestion, query bool, err error) {
	var ing, q int
	err = c.r().row(ctx, `SELECT
			COALESCE(MAX(CASE WHEN p.ingestion_mode = ? THEN 1 ELSE 0 END), 0),
			COALESCE(MAX(CASE WHEN p.query_mode = ? THEN 1 ELSE 0 END), 0)
		FROM private_link_scoped_resources x JOIN private_link_scopes p ON p.pls_key = x.pls_key
		WHERE x.linked_key = ?`, AccessModePrivateOnly, AccessModePrivateOnly, key(workspaceResourceID)).Scan(&ing, &q)
	if err != nil {
		return false, false, fmt.Errorf("private link scopes of %s: %w", workspaceResourceID, err)
	}
	return ing == 1, q == 1, nil
}
