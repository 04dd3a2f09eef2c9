package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"custos/internal/identity"
)

// Resource types of managed identities and machines, as ARM spells them.
const (
	TypeUserAssignedIdentity = "Microsoft.ManagedIdentity/userAssignedIdentities"
	TypeMachine              = "Microsoft.HybridCompute/machines"
	TypeDCRAssociation       = "Microsoft.Insights/dataCollectionRuleAssociations"
)

// UserAssignedIdentityResourceID returns the ARM ID of a user-assigned identity.
func UserAssignedIdentityResourceID(sub, rg, name string) string {
	return ResourceGroupResourceID(sub, rg) + "/providers/" + TypeUserAssignedIdentity + "/" + name
}

// PrincipalState implements identity.Store: the kind, resource and enabled
// flag of a service principal or managed identity, or an error matching
// identity.ErrNotFound when it does not exist.
func (c *DB) PrincipalState(ctx context.Context, tenantID, objectID string) (identity.PrincipalState, error) {
	var st identity.PrincipalState
	var kind string
	var enabled int
	err := c.r().row(ctx, `SELECT kind, resource_id, enabled FROM service_principals WHERE tenant_id = ? AND object_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(objectID)).Scan(&kind, &st.ResourceID, &enabled)
	if errors.Is(err, sql.ErrNoRows) {
		return st, identityNotFound("The principal '%s' was not found in tenant '%s'.", truncate(objectID, 100), truncate(tenantID, 100))
	}
	if err != nil {
		return st, fmt.Errorf("get principal state: %w", err)
	}
	st.Kind, st.Enabled = identity.PrincipalKind(kind), enabled != 0
	return st, nil
}

// SetPrincipalEnabled enables or disables a principal by object ID. A
// disabled principal gets no tokens, and its tokens stop working within the
// token service's principal cache TTL.
func (c *DB) SetPrincipalEnabled(ctx context.Context, tenantID, objectID string, enabled bool) error {
	res, err := c.r().exec(ctx, `UPDATE service_principals SET enabled = ? WHERE tenant_id = ? AND object_id = ?`,
		boolInt(enabled), strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return fmt.Errorf("set principal enabled: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return identityNotFound("The principal '%s' was not found in tenant '%s'.", truncate(objectID, 100), truncate(tenantID, 100))
	}
	return nil
}

// KeyCredentials implements identity.Store.
func (c *DB) KeyCredentials(ctx context.Context, tenantID, appID string) ([]identity.KeyCredential, error) {
	rows, err := c.r().query(ctx, `SELECT key_id, display_name, public_key, certificate, not_before, expires_at FROM key_credentials
		WHERE tenant_id = ? AND app_id = ? ORDER BY key_id`, strings.ToLower(tenantID), strings.ToLower(appID))
	if err != nil {
		return nil, fmt.Errorf("list key credentials: %w", err)
	}
	defer rows.Close()
	var out []identity.KeyCredential
	for rows.Next() {
		var k identity.KeyCredential
		var nb, exp string
		if err := rows.Scan(&k.KeyID, &k.DisplayName, &k.PublicKey, &k.Certificate, &nb, &exp); err != nil {
			return nil, fmt.Errorf("list key credentials: %w", err)
		}
		if k.NotBefore, err = parseTime(nb); err != nil {
			return nil, err
		}
		if k.Expires, err = parseTime(exp); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// AddKeyCredential implements identity.Store. It returns an error matching
// identity.ErrNotFound when the application does not exist.
func (c *DB) AddKeyCredential(ctx context.Context, tenantID, appID string, k identity.KeyCredential) error {
	return c.inTx(ctx, func(r run) error {
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM service_principals WHERE tenant_id = ? AND app_id = ?`,
			strings.ToLower(tenantID), strings.ToLower(appID)).Scan(&n); err != nil {
			return fmt.Errorf("add key credential: %w", err)
		}
		if n == 0 {
			return identityNotFound("The application '%s' was not found in tenant '%s'.", truncate(appID, 100), truncate(tenantID, 100))
		}
		return insertKeyCredential(ctx, r, c, tenantID, appID, k)
	})
}

func insertKeyCredential(ctx context.Context, r run, c *DB, tenantID, appID string, k identity.KeyCredential) error {
	if k.KeyID == "" || len(k.PublicKey) == 0 {
		return Invalid("InvalidParameter", "keyCredential", "A key credential needs a key ID and a public key.")
	}
	var cert any
	if len(k.Certificate) > 0 {
		cert = k.Certificate
	}
	_, err := r.exec(ctx, `INSERT INTO key_credentials (key_id, tenant_id, app_id, display_name, public_key, certificate, not_before,
		expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, strings.ToLower(k.KeyID), strings.ToLower(tenantID),
		strings.ToLower(appID), k.DisplayName, k.PublicKey, cert, fmtTime(k.NotBefore), fmtTime(k.Expires), fmtTime(c.nowUTC()))
	switch {
	case c.d.isUniqueViolation(err):
		return conflictIdentity("A key credential with key ID '%s' already exists.", k.KeyID)
	case err != nil:
		return fmt.Errorf("add key credential: %w", err)
	}
	return nil
}

func conflictIdentity(format string, args ...any) *Error {
	e := conflict("Conflict", format, args...)
	e.also = identity.ErrConflict
	return e
}

// insertManagedIdentity creates the principal row of a managed identity.
func insertManagedIdentity(ctx context.Context, r run, c *DB, tenantID, objectID, appID, name, resourceID string) error {
	_, err := r.exec(ctx, `INSERT INTO service_principals (tenant_id, app_id, object_id, display_name, created_at, kind, resource_id, enabled)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)`, strings.ToLower(tenantID), strings.ToLower(appID), strings.ToLower(objectID), name,
		fmtTime(c.nowUTC()), string(identity.KindManagedIdentity), resourceID)
	if c.d.isUniqueViolation(err) {
		return conflictIdentity("A principal with app ID '%s' or object ID '%s' already exists.", appID, objectID)
	}
	if err != nil {
		return fmt.Errorf("create managed identity: %w", err)
	}
	return nil
}

// UserAssignedIdentity is a Microsoft.ManagedIdentity/userAssignedIdentities
// resource: a managed identity with its own lifecycle that role assignments
// can name (principalId).
type UserAssignedIdentity struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Tags           map[string]string
	TenantID       string
	PrincipalID    string // object ID
	ClientID       string // app ID
	ETag           string
	Audit          Audit
}

// ID returns the identity's ARM resource ID.
func (u *UserAssignedIdentity) ID() string {
	return UserAssignedIdentityResourceID(u.SubscriptionID, u.ResourceGroup, u.Name)
}

// ValidateUserAssignedIdentityName checks Azure's naming rules (3 to 128
// letters, digits, '-' and '_', starting with a letter or digit).
func ValidateUserAssignedIdentityName(name string) error {
	ok := len(name) >= 3 && len(name) <= 128
	for i := 0; ok && i < len(name); i++ {
		ch := name[i]
		alnum := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9'
		ok = alnum || (i > 0 && (ch == '-' || ch == '_'))
	}
	if !ok {
		return Invalid("InvalidResourceName", "resourceName",
			"The user-assigned identity name '%s' is invalid. It must be 3 to 128 characters: letters, digits, '-' and '_', starting with a letter or digit.",
			truncate(name, 130))
	}
	return nil
}

// PutUserAssignedIdentity creates a user-assigned identity (with a new
// principal whose IDs come from the catalog's randomness) or updates its
// location-independent properties (tags). It reports whether it was created.
func (c *DB) PutUserAssignedIdentity(ctx context.Context, u UserAssignedIdentity, pre Precondition, by Actor) (UserAssignedIdentity, bool, error) {
	if err := ValidateUserAssignedIdentityName(u.Name); err != nil {
		return UserAssignedIdentity{}, false, err
	}
	if err := ValidateLocation(u.Location); err != nil {
		return UserAssignedIdentity{}, false, err
	}
	if err := ValidateTags(u.Tags); err != nil {
		return UserAssignedIdentity{}, false, err
	}
	tags, err := marshalTags(u.Tags)
	if err != nil {
		return UserAssignedIdentity{}, false, err
	}
	etag, err := c.newETag()
	if err != nil {
		return UserAssignedIdentity{}, false, err
	}
	created := false
	err = c.inTx(ctx, func(r run) error {
		g, err := requireResourceGroup(ctx, r, u.SubscriptionID, u.ResourceGroup)
		if err != nil {
			return err
		}
		sub, err := getSubscription(ctx, r, g.SubscriptionID)
		if err != nil {
			return err
		}
		u.SubscriptionID, u.ResourceGroup = g.SubscriptionID, g.Name
		old, err := getUserAssignedIdentity(ctx, r, u.SubscriptionID, u.ResourceGroup, u.Name)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err := pre.check(exists, old.ETag); err != nil {
			return err
		}
		now := c.nowUTC()
		u.ETag = etag
		u.Audit.ModifiedAt, u.Audit.ModifiedBy, u.Audit.ModifiedByType = now, by.ID, by.Type
		if exists {
			u.Name, u.TenantID, u.PrincipalID, u.ClientID = old.Name, old.TenantID, old.PrincipalID, old.ClientID
			u.Audit.CreatedAt, u.Audit.CreatedBy, u.Audit.CreatedByType = old.Audit.CreatedAt, old.Audit.CreatedBy, old.Audit.CreatedByType
			_, err = r.exec(ctx, `UPDATE user_assigned_identities SET location = ?, tags = ?, etag = ?, modified_at = ?, modified_by = ?,
				modified_by_type = ? WHERE uai_key = ?`, u.Location, tags, u.ETag, fmtTime(now), by.ID, by.Type, key(u.ID()))
			if err != nil {
				return fmt.Errorf("put user-assigned identity: %w", err)
			}
			return nil
		}
		created = true
		u.TenantID = sub.TenantID
		if u.PrincipalID, err = c.newGUID(); err != nil {
			return err
		}
		if u.ClientID, err = c.newGUID(); err != nil {
			return err
		}
		u.Audit.CreatedAt, u.Audit.CreatedBy, u.Audit.CreatedByType = now, by.ID, by.Type
		if err := insertManagedIdentity(ctx, r, c, u.TenantID, u.PrincipalID, u.ClientID, u.Name, u.ID()); err != nil {
			return err
		}
		_, err = r.exec(ctx, `INSERT INTO user_assigned_identities (uai_key, rg_key, sub_key, name, location, tags, tenant_id,
			principal_id, client_id, etag, created_at, created_by, created_by_type, modified_at, modified_by, modified_by_type)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, key(u.ID()), key(g.ID()), key(u.SubscriptionID), u.Name,
			u.Location, tags, u.TenantID, u.PrincipalID, u.ClientID, u.ETag, fmtTime(now), by.ID, by.Type, fmtTime(now), by.ID, by.Type)
		if err != nil {
			return fmt.Errorf("put user-assigned identity: %w", err)
		}
		return nil
	})
	if err != nil {
		return UserAssignedIdentity{}, false, err
	}
	return u, created, nil
}

const uaiColumns = `s.subscription_id, g.name, u.name, u.location, u.tags, u.tenant_id, u.principal_id, u.client_id, u.etag,
	u.created_at, u.created_by, u.created_by_type, u.modified_at, u.modified_by, u.modified_by_type`

const uaiFrom = ` FROM user_assigned_identities u JOIN resource_groups g ON g.rg_key = u.rg_key JOIN subscriptions s ON s.sub_key = g.sub_key `

func scanUserAssignedIdentity(sc interface{ Scan(...any) error }) (UserAssignedIdentity, error) {
	var u UserAssignedIdentity
	var tags, created, modified string
	if err := sc.Scan(&u.SubscriptionID, &u.ResourceGroup, &u.Name, &u.Location, &tags, &u.TenantID, &u.PrincipalID, &u.ClientID,
		&u.ETag, &created, &u.Audit.CreatedBy, &u.Audit.CreatedByType, &modified, &u.Audit.ModifiedBy, &u.Audit.ModifiedByType); err != nil {
		return UserAssignedIdentity{}, err
	}
	var err error
	if u.Tags, err = unmarshalTags(tags); err != nil {
		return UserAssignedIdentity{}, err
	}
	if u.Audit.CreatedAt, err = parseTime(created); err != nil {
		return UserAssignedIdentity{}, err
	}
	if u.Audit.ModifiedAt, err = parseTime(modified); err != nil {
		return UserAssignedIdentity{}, err
	}
	return u, nil
}

func getUserAssignedIdentity(ctx context.Context, r run, sub, rg, name string) (UserAssignedIdentity, error) {
	u, err := scanUserAssignedIdentity(r.row(ctx, `SELECT `+uaiColumns+uaiFrom+`WHERE u.uai_key = ?`,
		key(UserAssignedIdentityResourceID(sub, rg, name))))
	if errors.Is(err, sql.ErrNoRows) {
		return UserAssignedIdentity{}, errResourceNotFound(TypeUserAssignedIdentity+"/"+name, rg)
	}
	if err != nil {
		return UserAssignedIdentity{}, fmt.Errorf("get user-assigned identity: %w", err)
	}
	return u, nil
}

// UserAssignedIdentity returns a user-assigned identity.
func (c *DB) UserAssignedIdentity(ctx context.Context, sub, rg, name string) (UserAssignedIdentity, error) {
	r := c.r()
	u, err := getUserAssignedIdentity(ctx, r, sub, rg, name)
	if errors.Is(err, ErrNotFound) {
		if _, perr := requireResourceGroup(ctx, r, sub, rg); perr != nil {
			return UserAssignedIdentity{}, perr
		}
	}
	return u, err
}

// UserAssignedIdentities lists the identities of a subscription, or of one of
// its resource groups when rg is not empty.
func (c *DB) UserAssignedIdentities(ctx context.Context, sub, rg string) ([]UserAssignedIdentity, error) {
	r := c.r()
	where, arg := `u.sub_key = ?`, key(sub)
	if rg == "" {
		if _, err := getSubscription(ctx, r, sub); err != nil {
			return nil, err
		}
	} else {
		if _, err := requireResourceGroup(ctx, r, sub, rg); err != nil {
			return nil, err
		}
		where, arg = `u.rg_key = ?`, key(ResourceGroupResourceID(sub, rg))
	}
	return queryAll(ctx, r, "list user-assigned identities", scanUserAssignedIdentity, `SELECT `+uaiColumns+uaiFrom+`WHERE `+where+` ORDER BY u.uai_key`, arg)
}

// DeleteUserAssignedIdentity deletes an identity together with its
// principal, credentials and role assignments. It reports false when there
// was nothing to delete.
func (c *DB) DeleteUserAssignedIdentity(ctx context.Context, sub, rg, name string, pre Precondition) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		old, err := getUserAssignedIdentity(ctx, r, sub, rg, name)
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
		if _, err := r.exec(ctx, `DELETE FROM user_assigned_identities WHERE uai_key = ?`, key(old.ID())); err != nil {
			return fmt.Errorf("delete user-assigned identity: %w", err)
		}
		deleted = true
		return nil
	})
	return deleted, err
}
