package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Workspace defaults and limits, as Azure's PerGB2018 tier.
const (
	DefaultRetentionInDays = 30
	MinRetentionInDays     = 30
	MaxRetentionInDays     = 730
	DefaultSKU             = "PerGB2018"
	NetworkAccessEnabled   = "Enabled"
	NetworkAccessDisabled  = "Disabled"
)

// Workspace is a Log Analytics workspace.
type Workspace struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Tags           map[string]string
	// CustomerID is the server-assigned workspace GUID that the data plane
	// uses; it never changes.
	CustomerID      string
	SKU             string
	RetentionInDays int     // 30–730; 0 means DefaultRetentionInDays
	DailyQuotaGB    float64 // -1 means no cap
	// EnableLogAccessUsingOnlyResourcePermissions is the access control mode:
	// true means "use resource or workspace permissions".
	EnableLogAccessUsingOnlyResourcePermissions bool
	DisableLocalAuth                            bool
	PublicNetworkAccessForIngestion             string // "Enabled" or "Disabled"
	PublicNetworkAccessForQuery                 string
	ProvisioningState                           string // "Succeeded"
	ETag                                        string
	Audit                                       Audit
}

// ID returns the workspace's ARM resource ID.
func (w *Workspace) ID() string {
	return WorkspaceResourceID(w.SubscriptionID, w.ResourceGroup, w.Name)
}

var skus = []string{"PerGB2018", "Free", "Standalone", "PerNode", "Standard", "Premium", "CapacityReservation", "LACluster"}

var networkAccessValues = []string{NetworkAccessEnabled, NetworkAccessDisabled, "SecuredByPerimeter"}

// canonical returns the member of allowed equal to v ignoring case.
func canonical(v string, allowed []string) (string, bool) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, true
		}
	}
	return "", false
}

// normalizeWorkspace applies defaults and validates w's writable properties.
func normalizeWorkspace(w *Workspace) error {
	if err := ValidateWorkspaceName(w.Name); err != nil {
		return err
	}
	if err := ValidateLocation(w.Location); err != nil {
		return err
	}
	if err := ValidateTags(w.Tags); err != nil {
		return err
	}
	if w.SKU == "" {
		w.SKU = DefaultSKU
	}
	sku, ok := canonical(w.SKU, skus)
	if !ok {
		return Invalid("InvalidParameter", "properties.sku.name", "The SKU '%s' is not valid. Valid values are: %s.", truncate(w.SKU, 64), strings.Join(skus, ", "))
	}
	w.SKU = sku
	if w.RetentionInDays == 0 {
		w.RetentionInDays = DefaultRetentionInDays
	}
	if w.RetentionInDays < MinRetentionInDays || w.RetentionInDays > MaxRetentionInDays {
		return Invalid("InvalidParameter", "properties.retentionInDays",
			"The retentionInDays value %d is out of range: it must be between %d and %d days.", w.RetentionInDays, MinRetentionInDays, MaxRetentionInDays)
	}
	if w.DailyQuotaGB == 0 {
		w.DailyQuotaGB = -1
	}
	if w.DailyQuotaGB < 0 && w.DailyQuotaGB != -1 {
		return Invalid("InvalidParameter", "properties.workspaceCapping.dailyQuotaGb",
			"The dailyQuotaGb value must be -1 (no cap) or a positive number.")
	}
	for _, p := range []struct {
		v      *string
		target string
	}{
		{&w.PublicNetworkAccessForIngestion, "properties.publicNetworkAccessForIngestion"},
		{&w.PublicNetworkAccessForQuery, "properties.publicNetworkAccessForQuery"},
	} {
		if *p.v == "" {
			*p.v = NetworkAccessEnabled
		}
		c, ok := canonical(*p.v, networkAccessValues)
		if !ok {
			return Invalid("InvalidParameter", p.target, "The value '%s' is not valid for %s. Valid values are: %s.",
				truncate(*p.v, 64), p.target, strings.Join(networkAccessValues, ", "))
		}
		*p.v = c
	}
	return nil
}

// PutWorkspace creates or replaces a workspace. A new workspace gets a fresh
// customerId and its standard tables in the same transaction; an update keeps
// the customerId (a different non-empty w.CustomerID is rejected), the name's
// original casing and the creation data. It reports whether it was created.
func (c *DB) PutWorkspace(ctx context.Context, w Workspace, pre Precondition, by Actor) (Workspace, bool, error) {
	if err := normalizeWorkspace(&w); err != nil {
		return Workspace{}, false, err
	}
	tags, err := marshalTags(w.Tags)
	if err != nil {
		return Workspace{}, false, err
	}
	etag, err := c.newETag()
	if err != nil {
		return Workspace{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, w.SubscriptionID, w.ResourceGroup)
		if err != nil {
			return err
		}
		w.SubscriptionID, w.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getWorkspace(ctx, r, w.SubscriptionID, w.ResourceGroup, w.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		w.ETag = etag
		w.ProvisioningState = "Succeeded"
		w.Audit.ModifiedAt, w.Audit.ModifiedBy, w.Audit.ModifiedByType = now, by.ID, by.Type
		if exists {
			if w.CustomerID != "" && !strings.EqualFold(w.CustomerID, old.CustomerID) {
				return Invalid("InvalidParameter", "properties.customerId",
					"The customerId of workspace '%s' is assigned by the service and cannot be changed.", old.Name)
			}
			w.Name, w.CustomerID = old.Name, old.CustomerID
			w.Audit.CreatedAt, w.Audit.CreatedBy, w.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE workspaces SET location = ?, tags = ?, sku = ?, retention_days = ?, daily_quota_gb = ?,
				log_access_resource_perms = ?, disable_local_auth = ?, pna_ingestion = ?, pna_query = ?, provisioning_state = ?,
				etag = ?, modified_at = ?, modified_by = ?, modified_by_type = ? WHERE ws_key = ?`,
				w.Location, tags, w.SKU, w.RetentionInDays, w.DailyQuotaGB,
				boolInt(w.EnableLogAccessUsingOnlyResourcePermissions), boolInt(w.DisableLocalAuth),
				w.PublicNetworkAccessForIngestion, w.PublicNetworkAccessForQuery, w.ProvisioningState,
				w.ETag, fmtTime(now), by.ID, by.Type, key(w.ID()))
			if err != nil {
				return fmt.Errorf("update workspace: %w", err)
			}
			return nil
		}
		created = true
		if w.CustomerID, err = c.newGUID(); err != nil {
			return err
		}
		w.Audit.CreatedAt, w.Audit.CreatedBy, w.Audit.CreatedByType = now, by.ID, by.Type
		_, err = r.exec(ctx, `INSERT INTO workspaces (ws_key, rg_key, sub_key, name, location, tags, customer_id, sku, retention_days,
			daily_quota_gb, log_access_resource_perms, disable_local_auth, pna_ingestion, pna_query, provisioning_state, etag,
			created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			key(w.ID()), key(g.ID()), key(w.SubscriptionID), w.Name, w.Location, tags, w.CustomerID, w.SKU, w.RetentionInDays,
			w.DailyQuotaGB, boolInt(w.EnableLogAccessUsingOnlyResourcePermissions), boolInt(w.DisableLocalAuth),
			w.PublicNetworkAccessForIngestion, w.PublicNetworkAccessForQuery, w.ProvisioningState, w.ETag,
			fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("insert workspace: %w", err)
		}
		return c.insertStandardTables(ctx, r, &w, by)
	})
	if err != nil {
		return Workspace{}, false, err
	}
	return w, created, nil
}

const workspaceColumns = `s.subscription_id, g.name, w.name, w.location, w.tags, w.customer_id, w.sku, w.retention_days,
	w.daily_quota_gb, w.log_access_resource_perms, w.disable_local_auth, w.pna_ingestion, w.pna_query, w.provisioning_state,
	w.etag, w.created_at, w.created_by, w.created_by_type, w.modified_at, w.modified_by, w.modified_by_type`

const workspaceFrom = ` FROM workspaces w JOIN resource_groups g ON g.rg_key = w.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanWorkspace(sc interface{ Scan(...any) error }) (Workspace, error) {
	var w Workspace
	var tags, created, modified string
	var logAccess, disableLocal int
	err := sc.Scan(&w.SubscriptionID, &w.ResourceGroup, &w.Name, &w.Location, &tags, &w.CustomerID, &w.SKU, &w.RetentionInDays,
		&w.DailyQuotaGB, &logAccess, &disableLocal, &w.PublicNetworkAccessForIngestion, &w.PublicNetworkAccessForQuery,
		&w.ProvisioningState, &w.ETag, &created, &w.Audit.CreatedBy, &w.Audit.CreatedByType, &modified,
		&w.Audit.ModifiedBy, &w.Audit.ModifiedByType)
	if err != nil {
		return Workspace{}, err
	}
	w.EnableLogAccessUsingOnlyResourcePermissions = logAccess != 0
	w.DisableLocalAuth = disableLocal != 0
	if w.Tags, err = unmarshalTags(tags); err != nil {
		return Workspace{}, err
	}
	if w.Audit.CreatedAt, err = parseTime(created); err != nil {
		return Workspace{}, err
	}
	if w.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return Workspace{}, err
	}
	return w, nil
}

func getWorkspace(ctx context.Context, r run, sub, rg, name string) (Workspace, error) {
	w, err := scanWorkspace(r.row(ctx, `SELECT `+workspaceColumns+workspaceFrom+`WHERE w.ws_key = ?`,
		key(WorkspaceResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return Workspace{}, errResourceNotFound(TypeWorkspace+"/"+name, rg)
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("get workspace: %w", err)
	}
	return w, nil
}

func listWorkspaces(ctx context.Context, r run, where string, args ...any) ([]Workspace, error) {
	q := `SELECT ` + workspaceColumns + workspaceFrom
	if where != "" {
		q += `WHERE ` + where
	}
	return queryAll(ctx, r, "list workspaces", scanWorkspace, q+` ORDER BY w.ws_key`, args...)
}

// Workspace returns a workspace by subscription, resource group and name
// (case-insensitive). A missing parent is reported as ARM does.
func (c *DB) Workspace(ctx context.Context, sub, rg, name string) (Workspace, error) {
	r := c.r()
	w, err := getWorkspace(ctx, r, sub, rg, name)
	if errors.Is(err, ErrNotFound) {
		if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
			return Workspace{}, perr
		}
	}
	return w, err
}

// WorkspaceByResourceID returns a workspace by its ARM ID (case-insensitive).
func (c *DB) WorkspaceByResourceID(ctx context.Context, id string) (Workspace, error) {
	sub, rg, name, ok := ParseWorkspaceResourceID(id)
	if !ok {
		return Workspace{}, Invalid("InvalidResourceId", "workspaceResourceId", "'%s' is not a Log Analytics workspace resource ID.", truncate(id, 200))
	}
	return getWorkspace(ctx, c.r(), sub, rg, name)
}

// WorkspaceByCustomerID returns the workspace with the given customerId GUID.
func (c *DB) WorkspaceByCustomerID(ctx context.Context, customerID string) (Workspace, error) {
	w, err := scanWorkspace(c.r().row(ctx, `SELECT `+workspaceColumns+workspaceFrom+`WHERE w.customer_id = ?`, strings.ToLower(customerID)))
	if errors.Is(err, sql.ErrNoRows) {
		return Workspace{}, notFound("WorkspaceNotFound", "The workspace '%s' could not be found.", truncate(customerID, 100))
	}
	if err != nil {
		return Workspace{}, fmt.Errorf("get workspace by customer id: %w", err)
	}
	return w, nil
}

// Workspaces lists the workspaces of a subscription, or of one of its
// resource groups when rg is not empty.
func (c *DB) Workspaces(ctx context.Context, sub, rg string) ([]Workspace, error) {
	r := c.r()
	if rg == "" {
		if _, err := getSubscription(ctx, r, sub); err != nil {
			return nil, err
		}
		return listWorkspaces(ctx, r, `w.sub_key = ?`, key(sub))
	}
	if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
		return nil, err
	}
	return listWorkspaces(ctx, r, `w.rg_key = ?`, key(ResourceGroupResourceID(sub, rg)))
}

// AllWorkspaces lists every workspace.
func (c *DB) AllWorkspaces(ctx context.Context) ([]Workspace, error) {
	return listWorkspaces(ctx, c.r(), "")
}

// DeleteWorkspace deletes a workspace and its tables. It returns the deleted
// workspace, or false when there was nothing to delete.
func (c *DB) DeleteWorkspace(ctx context.Context, sub, rg, name string, pre Precondition) (Workspace, bool, error) {
	var w Workspace
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		old, err := getWorkspace(ctx, r, sub, rg, name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		if !exists {
			return nil
		}
		if _, err := r.exec(ctx, `DELETE FROM workspaces WHERE ws_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete workspace: %w", err)
		}
		w, deleted = old, true
		return nil
	})
	return w, deleted, err
}
