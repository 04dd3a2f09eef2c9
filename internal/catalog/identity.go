package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"custos/internal/identity"
)

var _ identity.Store = (*DB)(nil)

func identityNotFound(format string, args ...any) *Error {
	e := notFound("NotFound", format, args...)
	e.also = identity.ErrNotFound
	return e
}

// ServicePrincipalByAppID implements identity.Store. It returns an error
// matching identity.ErrNotFound when the principal does not exist.
func (c *DB) ServicePrincipalByAppID(ctx context.Context, tenantID, appID string) (identity.ServicePrincipal, error) {
	r := c.r()
	var sp identity.ServicePrincipal
	err := r.row(ctx, `SELECT tenant_id, object_id, app_id, display_name FROM service_principals WHERE tenant_id = ? AND app_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(appID)).Scan(&sp.TenantID, &sp.ObjectID, &sp.AppID, &sp.DisplayName)
	if errors.Is(err, sql.ErrNoRows) {
		return identity.ServicePrincipal{}, identityNotFound("The application '%s' was not found in tenant '%s'.", truncate(appID, 100), truncate(tenantID, 100))
	}
	if err != nil {
		return identity.ServicePrincipal{}, fmt.Errorf("get service principal: %w", err)
	}
	rows, err := r.query(ctx, `SELECT key_id, hint, hash, expires_at FROM client_secrets WHERE tenant_id = ? AND app_id = ? ORDER BY key_id`,
		sp.TenantID, sp.AppID)
	if err != nil {
		return identity.ServicePrincipal{}, fmt.Errorf("get client secrets: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s identity.ClientSecret
		var expires string
		if err := rows.Scan(&s.KeyID, &s.Hint, &s.Hash, &expires); err != nil {
			return identity.ServicePrincipal{}, fmt.Errorf("get client secrets: %w", err)
		}
		if s.Expires, err = parseTime(expires); err != nil {
			return identity.ServicePrincipal{}, err
		}
		sp.Secrets = append(sp.Secrets, s)
	}
	if err := rows.Err(); err != nil {
		return identity.ServicePrincipal{}, fmt.Errorf("get client secrets: %w", err)
	}
	return sp, nil
}

// CreateServicePrincipal implements identity.Store. It stores the principal
// and any secrets it carries; an existing app ID or object ID is a conflict.
func (c *DB) CreateServicePrincipal(ctx context.Context, sp identity.ServicePrincipal) error {
	if sp.TenantID == "" || sp.AppID == "" || sp.ObjectID == "" {
		return Invalid("InvalidParameter", "servicePrincipal", "A service principal needs a tenant ID, an app ID and an object ID.")
	}
	return c.inTx(ctx, func(r run) error {
		_, err := r.exec(ctx, `INSERT INTO service_principals (tenant_id, app_id, object_id, display_name, created_at) VALUES (?, ?, ?, ?, ?)`,
			strings.ToLower(sp.TenantID), strings.ToLower(sp.AppID), strings.ToLower(sp.ObjectID), sp.DisplayName, fmtTime(c.nowUTC()))
		if c.d.isUniqueViolation(err) {
			return conflict("Conflict", "A service principal with app ID '%s' or object ID '%s' already exists.", sp.AppID, sp.ObjectID)
		}
		if err != nil {
			return fmt.Errorf("create service principal: %w", err)
		}
		for _, s := range sp.Secrets {
			if err := insertSecret(ctx, r, c.d, sp.TenantID, sp.AppID, s); err != nil {
				return err
			}
		}
		return nil
	})
}

func insertSecret(ctx context.Context, r run, d dialect, tenantID, appID string, s identity.ClientSecret) error {
	if s.KeyID == "" || len(s.Hash) == 0 {
		return Invalid("InvalidParameter", "secret", "A client secret needs a key ID and a hash.")
	}
	_, err := r.exec(ctx, `INSERT INTO client_secrets (key_id, tenant_id, app_id, hint, hash, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		strings.ToLower(s.KeyID), strings.ToLower(tenantID), strings.ToLower(appID), s.Hint, s.Hash, fmtTime(s.Expires))
	switch {
	case d.isUniqueViolation(err):
		return conflict("Conflict", "A client secret with key ID '%s' already exists.", s.KeyID)
	case d.isForeignKeyViolation(err):
		return identityNotFound("The application '%s' was not found in tenant '%s'.", appID, tenantID)
	case err != nil:
		return fmt.Errorf("add client secret: %w", err)
	}
	return nil
}

// AddClientSecret implements identity.Store. It returns an error matching
// identity.ErrNotFound when the principal does not exist.
func (c *DB) AddClientSecret(ctx context.Context, tenantID, appID string, s identity.ClientSecret) error {
	return c.inTx(ctx, func(r run) error {
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM service_principals WHERE tenant_id = ? AND app_id = ?`,
			strings.ToLower(tenantID), strings.ToLower(appID)).Scan(&n); err != nil {
			return fmt.Errorf("add client secret: %w", err)
		}
		if n == 0 {
			return identityNotFound("The application '%s' was not found in tenant '%s'.", truncate(appID, 100), truncate(tenantID, 100))
		}
		return insertSecret(ctx, r, c.d, tenantID, appID, s)
	})
}

// SigningKeys implements identity.Store: every key, oldest first.
func (c *DB) SigningKeys(ctx context.Context) ([]identity.SigningKey, error) {
	rows, err := c.r().query(ctx, `SELECT kid, algorithm, private_sealed, public_jwk, created_at, sign_until, publish_until
		FROM signing_keys ORDER BY created_at, kid`)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	defer rows.Close()
	var out []identity.SigningKey
	for rows.Next() {
		var k identity.SigningKey
		var created, signUntil, publishUntil string
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.PrivateSealed, &k.PublicJWK, &created, &signUntil, &publishUntil); err != nil {
			return nil, fmt.Errorf("list signing keys: %w", err)
		}
		if k.Created, err = parseTime(created); err != nil {
			return nil, err
		}
		if k.SignUntil, err = parseTime(signUntil); err != nil {
			return nil, err
		}
		if k.PublishUntil, err = parseTime(publishUntil); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// PutSigningKey implements identity.Store: it inserts the key, or replaces
// the key with the same KID.
func (c *DB) PutSigningKey(ctx context.Context, k identity.SigningKey) error {
	if k.KID == "" || len(k.PrivateSealed) == 0 || len(k.PublicJWK) == 0 {
		return Invalid("InvalidParameter", "signingKey", "A signing key needs a KID, a sealed private key and a public JWK.")
	}
	return c.inTx(ctx, func(r run) error {
		res, err := r.exec(ctx, `UPDATE signing_keys SET algorithm = ?, private_sealed = ?, public_jwk = ?, created_at = ?, sign_until = ?,
			publish_until = ? WHERE kid = ?`, k.Algorithm, k.PrivateSealed, k.PublicJWK, fmtTime(k.Created), fmtTime(k.SignUntil),
			fmtTime(k.PublishUntil), k.KID)
		if err != nil {
			return fmt.Errorf("put signing key: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = r.exec(ctx, `INSERT INTO signing_keys (kid, algorithm, private_sealed, public_jwk, created_at, sign_until, publish_until)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, k.KID, k.Algorithm, k.PrivateSealed, k.PublicJWK, fmtTime(k.Created), fmtTime(k.SignUntil),
			fmtTime(k.PublishUntil))
		if err != nil {
			return fmt.Errorf("put signing key: %w", err)
		}
		return nil
	})
}

// DeleteSigningKey implements identity.Store. It returns an error matching
// identity.ErrNotFound when no key has the KID.
func (c *DB) DeleteSigningKey(ctx context.Context, kid string) error {
	res, err := c.r().exec(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid)
	if err != nil {
		return fmt.Errorf("delete signing key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return identityNotFound("The signing key '%s' was not found.", truncate(kid, 100))
	}
	return nil
}
