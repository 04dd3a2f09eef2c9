package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Actor is who made a change, for systemData: an object ID and Azure's
// createdByType ("User", "Application", "ManagedIdentity", "Key").
type Actor struct {
	ID   string
	Type string
}

// Audit is the systemData of a resource.
type Audit struct {
	CreatedBy, CreatedByType   string
	CreatedAt                  time.Time
	ModifiedBy, ModifiedByType string
	ModifiedAt                 time.Time
}

// Precondition carries the HTTP conditional headers of a write. IfMatch is
// "" (no condition), "*" (the resource must exist) or ETags; IfNoneMatch "*"
// means the resource must not exist.
type Precondition struct {
	IfMatch     string
	IfNoneMatch string
}

func (p Precondition) check(exists bool, etag string) error {
	if p.IfNoneMatch != "" && exists {
		if strings.TrimSpace(p.IfNoneMatch) == "*" || etagListMatches(p.IfNoneMatch, etag) {
			return preconditionFailed()
		}
	}
	if p.IfMatch != "" {
		if !exists {
			return preconditionFailed()
		}
		if strings.TrimSpace(p.IfMatch) != "*" && !etagListMatches(p.IfMatch, etag) {
			return preconditionFailed()
		}
	}
	return nil
}

// etagListMatches compares a conditional header (one or more comma-separated
// ETags, quoted or not, weak or strong) with a stored ETag.
func etagListMatches(header, etag string) bool {
	want := strings.Trim(etag, `"`)
	for _, h := range strings.Split(header, ",") {
		h = strings.TrimSpace(h)
		h = strings.TrimPrefix(h, "W/")
		if h == "*" || strings.Trim(h, `"`) == want {
			return true
		}
	}
	return false
}

// Tenant is a directory: the issuer of tokens and owner of subscriptions.
type Tenant struct {
	ID          string // GUID
	DisplayName string
	Created     time.Time
}

// Subscription groups resource groups, as in Azure.
type Subscription struct {
	ID          string // GUID, lower-case
	TenantID    string
	DisplayName string
	State       string // "Enabled"
	Tags        map[string]string
	Created     time.Time
	Modified    time.Time
}

// ResourceGroup is a container of resources in a subscription.
type ResourceGroup struct {
	SubscriptionID string
	Name           string
	Location       string
	ManagedBy      string
	Tags           map[string]string
	Created        time.Time
	Modified       time.Time
}

// ID returns the resource group's ARM ID.
func (g *ResourceGroup) ID() string { return ResourceGroupResourceID(g.SubscriptionID, g.Name) }

// CreateTenant creates a tenant; an existing ID is a conflict.
func (c *DB) CreateTenant(ctx context.Context, t Tenant) (Tenant, error) {
	if !IsGUID(t.ID) {
		return Tenant{}, Invalid("InvalidTenantId", "tenantId", "The tenant ID '%s' is not a GUID.", truncate(t.ID, 100))
	}
	t.ID = strings.ToLower(t.ID)
	t.Created = c.nowUTC()
	_, err := c.r().exec(ctx, `INSERT INTO tenants (id, display_name, created_at) VALUES (?, ?, ?)`,
		t.ID, t.DisplayName, fmtTime(t.Created))
	if c.d.isUniqueViolation(err) {
		return Tenant{}, conflict("TenantAlreadyExists", "The tenant '%s' already exists.", t.ID)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("create tenant: %w", err)
	}
	return t, nil
}

// Tenant returns a tenant by ID.
func (c *DB) Tenant(ctx context.Context, id string) (Tenant, error) {
	var t Tenant
	var created string
	err := c.r().row(ctx, `SELECT id, display_name, created_at FROM tenants WHERE id = ?`, strings.ToLower(id)).
		Scan(&t.ID, &t.DisplayName, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Tenant{}, notFound("TenantNotFound", "The tenant '%s' could not be found.", id)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("get tenant: %w", err)
	}
	if t.Created, err = parseTime(created); err != nil {
		return Tenant{}, err
	}
	return t, nil
}

// Tenants returns every tenant, oldest first.
func (c *DB) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := c.r().query(ctx, `SELECT id, display_name, created_at FROM tenants ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	defer rows.Close()
	var out []Tenant
	for rows.Next() {
		var t Tenant
		var created string
		if err := rows.Scan(&t.ID, &t.DisplayName, &created); err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		if t.Created, err = parseTime(created); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// PutSubscription creates or updates a subscription (a Custos-specific
// operation; Azure creates subscriptions through billing). An empty TenantID
// means the default tenant. It reports whether the subscription was created.
func (c *DB) PutSubscription(ctx context.Context, s Subscription) (Subscription, bool, error) {
	if err := ValidateSubscriptionID(s.ID); err != nil {
		return Subscription{}, false, err
	}
	if err := ValidateTags(s.Tags); err != nil {
		return Subscription{}, false, err
	}
	if len(s.DisplayName) > 64 {
		return Subscription{}, false, Invalid("InvalidParameter", "displayName", "The display name must be at most 64 characters.")
	}
	s.ID = strings.ToLower(s.ID)
	if s.DisplayName == "" {
		s.DisplayName = s.ID
	}
	tags, err := marshalTags(s.Tags)
	if err != nil {
		return Subscription{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		if s.TenantID == "" {
			v, err := getSetting(ctx, r, settingDefaultTenant)
			if err != nil {
				return err
			}
			if v == "" {
				return conflict("TenantNotFound", "No default tenant exists; bootstrap the catalog first.")
			}
			s.TenantID = v
		}
		s.TenantID = strings.ToLower(s.TenantID)
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM tenants WHERE id = ?`, s.TenantID).Scan(&n); err != nil {
			return fmt.Errorf("put subscription: %w", err)
		}
		if n == 0 {
			return notFound("TenantNotFound", "The tenant '%s' could not be found.", s.TenantID)
		}
		old, err := getSubscription(ctx, r, s.ID)
		now := c.nowUTC()
		s.State = "Enabled"
		switch {
		case errors.Is(err, ErrNotFound):
			created = true
			s.Created, s.Modified = now, now
			_, err = r.exec(ctx, `INSERT INTO subscriptions (sub_key, subscription_id, tenant_id, display_name, state, tags, created_at, modified_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, key(s.ID), s.ID, s.TenantID, s.DisplayName, s.State, tags, fmtTime(now), fmtTime(now))
		case err != nil:
			return err
		default:
			if old.TenantID != s.TenantID {
				return conflict("SubscriptionTenantImmutable", "The subscription '%s' belongs to tenant '%s'; it cannot be moved.", s.ID, old.TenantID)
			}
			s.Created, s.Modified = old.Created, now
			_, err = r.exec(ctx, `UPDATE subscriptions SET display_name = ?, tags = ?, modified_at = ? WHERE sub_key = ?`,
				s.DisplayName, tags, fmtTime(now), key(s.ID))
		}
		if err != nil {
			return fmt.Errorf("put subscription: %w", err)
		}
		return nil
	})
	if err != nil {
		return Subscription{}, false, err
	}
	return s, created, nil
}

const subscriptionColumns = `subscription_id, tenant_id, display_name, state, tags, created_at, modified_at`

func scanSubscription(sc interface{ Scan(...any) error }) (Subscription, error) {
	var s Subscription
	var tags, created, modified string
	if err := sc.Scan(&s.ID, &s.TenantID, &s.DisplayName, &s.State, &tags, &created, &modified); err != nil {
		return Subscription{}, err
	}
	var err error
	if s.Tags, err = unmarshalTags(tags); err != nil {
		return Subscription{}, err
	}
	if s.Created, err = parseTime(created); err != nil {
		return Subscription{}, err
	}
	if s.Modified, err = parseTime(modified); err != nil {
		return Subscription{}, err
	}
	return s, nil
}

func getSubscription(ctx context.Context, r run, id string) (Subscription, error) {
	s, err := scanSubscription(r.row(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions WHERE sub_key = ?`, key(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Subscription{}, errSubscriptionNotFound(id)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get subscription: %w", err)
	}
	return s, nil
}

// Subscription returns a subscription by ID (case-insensitive).
func (c *DB) Subscription(ctx context.Context, id string) (Subscription, error) {
	return getSubscription(ctx, c.r(), id)
}

// Subscriptions returns every subscription, ordered by ID.
func (c *DB) Subscriptions(ctx context.Context) ([]Subscription, error) {
	return queryAll(ctx, c.r(), "list subscriptions", scanSubscription, `SELECT `+subscriptionColumns+` FROM subscriptions ORDER BY sub_key`)
}

// DeleteSubscription deletes an empty subscription. It reports false when
// there was nothing to delete; a subscription with resource groups is a
// conflict.
func (c *DB) DeleteSubscription(ctx context.Context, id string) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM resource_groups WHERE sub_key = ?`, key(id)).Scan(&n); err != nil {
			return fmt.Errorf("delete subscription: %w", err)
		}
		if n > 0 {
			return conflict("SubscriptionNotEmpty",
				"The subscription '%s' still contains %d resource group(s); delete them first.", id, n)
		}
		res, err := r.exec(ctx, `DELETE FROM subscriptions WHERE sub_key = ?`, key(id))
		if err != nil {
			return fmt.Errorf("delete subscription: %w", err)
		}
		k, _ := res.RowsAffected()
		deleted = k > 0
		return nil
	})
	return deleted, err
}

// PutResourceGroup creates or updates a resource group. Its location cannot
// change. It reports whether the group was created.
func (c *DB) PutResourceGroup(ctx context.Context, g ResourceGroup) (ResourceGroup, bool, error) {
	if err := ValidateResourceGroupName(g.Name); err != nil {
		return ResourceGroup{}, false, err
	}
	if err := ValidateLocation(g.Location); err != nil {
		return ResourceGroup{}, false, err
	}
	if err := ValidateTags(g.Tags); err != nil {
		return ResourceGroup{}, false, err
	}
	tags, err := marshalTags(g.Tags)
	if err != nil {
		return ResourceGroup{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		sub, err := getSubscription(ctx, r, g.SubscriptionID)
		if err != nil {
			return err
		}
		g.SubscriptionID = sub.ID
		now := c.nowUTC()
		old, err := getResourceGroup(ctx, r, g.SubscriptionID, g.Name)
		switch {
		case errors.Is(err, ErrNotFound):
			created = true
			g.Created, g.Modified = now, now
			_, err = r.exec(ctx, `INSERT INTO resource_groups (rg_key, sub_key, name, location, managed_by, tags, created_at, modified_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, key(g.ID()), key(g.SubscriptionID), g.Name, g.Location, g.ManagedBy, tags, fmtTime(now), fmtTime(now))
		case err != nil:
			return err
		default:
			if !strings.EqualFold(normalizeLocation(old.Location), normalizeLocation(g.Location)) {
				return conflict("InvalidResourceGroupLocation",
					"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", g.Location, old.Location)
			}
			g.Name, g.Location, g.Created, g.Modified = old.Name, old.Location, old.Created, now
			_, err = r.exec(ctx, `UPDATE resource_groups SET managed_by = ?, tags = ?, modified_at = ? WHERE rg_key = ?`,
				g.ManagedBy, tags, fmtTime(now), key(g.ID()))
		}
		if err != nil {
			return fmt.Errorf("put resource group: %w", err)
		}
		return nil
	})
	if err != nil {
		return ResourceGroup{}, false, err
	}
	return g, created, nil
}

func normalizeLocation(l string) string { return strings.ReplaceAll(strings.ToLower(l), " ", "") }

const resourceGroupColumns = `s.subscription_id, g.name, g.location, g.managed_by, g.tags, g.created_at, g.modified_at`

func scanResourceGroup(sc interface{ Scan(...any) error }) (ResourceGroup, error) {
	var g ResourceGroup
	var tags, created, modified string
	if err := sc.Scan(&g.SubscriptionID, &g.Name, &g.Location, &g.ManagedBy, &tags, &created, &modified); err != nil {
		return ResourceGroup{}, err
	}
	var err error
	if g.Tags, err = unmarshalTags(tags); err != nil {
		return ResourceGroup{}, err
	}
	if g.Created, err = parseTime(created); err != nil {
		return ResourceGroup{}, err
	}
	if g.Modified, err = parseTime(modified); err != nil {
		return ResourceGroup{}, err
	}
	return g, nil
}

func getResourceGroup(ctx context.Context, r run, sub, name string) (ResourceGroup, error) {
	g, err := scanResourceGroup(r.row(ctx, `SELECT `+resourceGroupColumns+`
		FROM resource_groups g JOIN subscriptions s ON s.sub_key = g.sub_key WHERE g.rg_key = ?`,
		key(ResourceGroupResourceID(sub, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return ResourceGroup{}, errResourceGroupNotFound(name)
	}
	if err != nil {
		return ResourceGroup{}, fmt.Errorf("get resource group: %w", err)
	}
	return g, nil
}

// requireResourceGroup returns SubscriptionNotFound or ResourceGroupNotFound
// as ARM does when a parent is missing.
func requireResourceGroup(ctx context.Context, r run, sub, rg string) (ResourceGroup, error) {
	if _, err := getSubscription(ctx, r, sub); err != nil {
		return ResourceGroup{}, err
	}
	return getResourceGroup(ctx, r, sub, rg)
}

// ResourceGroup returns a resource group (names compare case-insensitively).
func (c *DB) ResourceGroup(ctx context.Context, sub, name string) (ResourceGroup, error) {
	return requireResourceGroup(ctx, c.r(), sub, name)
}

// ResourceGroups returns the resource groups of a subscription, by name.
func (c *DB) ResourceGroups(ctx context.Context, sub string) ([]ResourceGroup, error) {
	r := c.r()
	if _, err := getSubscription(ctx, r, sub); err != nil {
		return nil, err
	}
	rows, err := r.query(ctx, `SELECT `+resourceGroupColumns+`
		FROM resource_groups g JOIN subscriptions s ON s.sub_key = g.sub_key WHERE g.sub_key = ? ORDER BY g.rg_key`, key(sub))
	if err != nil {
		return nil, fmt.Errorf("list resource groups: %w", err)
	}
	defer rows.Close()
	var out []ResourceGroup
	for rows.Next() {
		g, err := scanResourceGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("list resource groups: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// DeletedResources lists what a resource group deletion removed, so that the
// caller can release the data behind it (store tables and workspaces).
type DeletedResources struct {
	Workspaces          []Workspace
	DataCollectionRules []string // resource IDs
}

// DeleteResourceGroup deletes a resource group. A group that still contains
// resources is a conflict unless force lists every resource type it contains
// (compared case-insensitively; "*" forces all types). It reports false when
// there was nothing to delete.
func (c *DB) DeleteResourceGroup(ctx context.Context, sub, name string, force []string) (DeletedResources, bool, error) {
	var out DeletedResources
	deleted := false
	rgKey := key(ResourceGroupResourceID(sub, name))
	err := c.inTx(ctx, func(r run) error {
		if _, err := getResourceGroup(ctx, r, sub, name); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		wss, err := listWorkspaces(ctx, r, `w.rg_key = ?`, rgKey)
		if err != nil {
			return err
		}
		dcrs, err := listDataCollectionRules(ctx, r, `d.rg_key = ?`, rgKey)
		if err != nil {
			return err
		}
		var blocking []string
		if len(wss) > 0 && !forced(force, TypeWorkspace) {
			blocking = append(blocking, fmt.Sprintf("%d %s", len(wss), TypeWorkspace))
		}
		if len(dcrs) > 0 && !forced(force, TypeDataCollectionRule) {
			blocking = append(blocking, fmt.Sprintf("%d %s", len(dcrs), TypeDataCollectionRule))
		}
		if len(blocking) > 0 {
			return conflict("ResourceGroupNotEmpty",
				"The resource group '%s' still contains resources (%s). Delete them first, or pass forceDeletionTypes listing their types.",
				name, strings.Join(blocking, ", "))
		}
		for _, d := range dcrs {
			if _, err := r.exec(ctx, `DELETE FROM data_collection_rules WHERE dcr_key = ?`, key(d.ID())); err != nil {
				return fmt.Errorf("delete resource group: %w", err)
			}
			out.DataCollectionRules = append(out.DataCollectionRules, d.ID())
		}
		for _, w := range wss {
			if _, err := r.exec(ctx, `DELETE FROM workspaces WHERE ws_key = ?`, key(w.ID())); err != nil {
				return fmt.Errorf("delete resource group: %w", err)
			}
			out.Workspaces = append(out.Workspaces, w)
		}
		if _, err := r.exec(ctx, `DELETE FROM resource_groups WHERE rg_key = ?`, rgKey); err != nil {
			// Resource types that forceDeletionTypes cannot remove (clusters,
			// for one) hold the group through a RESTRICT foreign key.
			if c.d.isForeignKeyViolation(err) {
				return conflict("ResourceGroupNotEmpty",
					"The resource group '%s' still contains resources (for example clusters) that must be deleted first.", name)
			}
			return fmt.Errorf("delete resource group: %w", err)
		}
		deleted = true
		return nil
	})
	if err != nil {
		return DeletedResources{}, false, err
	}
	return out, deleted, nil
}

func forced(force []string, typ string) bool {
	for _, f := range force {
		f = strings.TrimSpace(f)
		if f == "*" || strings.EqualFold(f, typ) {
			return true
		}
	}
	return false
}
