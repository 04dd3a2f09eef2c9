package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"custos/internal/identity"
	"custos/internal/rbac"
)

// enrollment is one use of a one-time enrollment token: machines
// (enrollment_tokens) and connected clusters (cluster_enrollment_tokens)
// enroll the same way — check the token, create the resource with its
// system-assigned identity and key credential, grant the identity Reader on
// its own resource, and mark the token used, in one transaction.
type enrollment struct {
	what       string // "machine" or "cluster", for errors
	tokenTable string // a constant table name, never input
	keyColumn  string // the column of tokenTable naming the enrolled resource
	tokenHash  []byte
}

var (
	machineEnrollment = enrollment{what: "machine", tokenTable: "enrollment_tokens", keyColumn: "machine_key"}
	clusterEnrollment = enrollment{what: "cluster", tokenTable: "cluster_enrollment_tokens", keyColumn: "cluster_key"}
)

// withToken returns e for the token whose hash is h.
func (e enrollment) withToken(h []byte) enrollment {
	e.tokenHash = h
	return e
}

// begin checks that the token exists, is unused and unexpired, and returns
// the resource group it enrolls into with the group's tenant. An unknown,
// used or expired token is identity.ErrEnrollmentTokenInvalid.
func (e enrollment) begin(ctx context.Context, r run, now time.Time) (rgKey string, g ResourceGroup, tenant string, err error) {
	var expires, used string
	err = r.row(ctx, `SELECT rg_key, expires_at, used_at FROM `+e.tokenTable+` WHERE token_hash = ?`, e.tokenHash).Scan(&rgKey, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return "", g, "", identity.ErrEnrollmentTokenInvalid
	}
	if err != nil {
		return "", g, "", fmt.Errorf("enroll %s: %w", e.what, err)
	}
	exp, err := parseTime(expires)
	if err != nil {
		return "", g, "", err
	}
	if used != "" || !now.Before(exp) {
		return "", g, "", identity.ErrEnrollmentTokenInvalid
	}
	err = r.row(ctx, `SELECT s.subscription_id, g.name, g.location, s.tenant_id FROM resource_groups g
		JOIN subscriptions s ON s.sub_key = g.sub_key WHERE g.rg_key = ?`, rgKey).Scan(&g.SubscriptionID, &g.Name, &g.Location, &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", g, "", identity.ErrEnrollmentTokenInvalid
	}
	if err != nil {
		return "", g, "", fmt.Errorf("enroll %s: %w", e.what, err)
	}
	return rgKey, g, tenant, nil
}

// createIdentity creates the resource's system-assigned managed identity
// and its key credential.
func (e enrollment) createIdentity(ctx context.Context, r run, c *DB, tenantID, principalID, clientID, name, resID string, pub identity.KeyCredential) error {
	if err := insertManagedIdentity(ctx, r, c, tenantID, principalID, clientID, name, resID); err != nil {
		return err
	}
	return insertKeyCredential(ctx, r, c, tenantID, clientID, pub)
}

// finish grants the identity Reader on its own resource (so that it may read
// its resource and configuration) and marks the token used by resID.
func (e enrollment) finish(ctx context.Context, r run, now time.Time, resID, raName, principalID string) error {
	raID := resID + "/providers/Microsoft.Authorization/roleAssignments/" + raName
	_, err := r.exec(ctx, `INSERT INTO role_assignments (ra_key, id, name, scope, scope_key, role_definition_id, principal_id,
		principal_type, condition, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', ?)`,
		key(raID), raID, raName, resID, key(resID), rbac.RoleReader, principalID, string(identity.KindManagedIdentity), fmtTime(now))
	if err != nil {
		return fmt.Errorf("enroll %s: grant reader on itself: %w", e.what, err)
	}
	res, err := r.exec(ctx, `UPDATE `+e.tokenTable+` SET used_at = ?, `+e.keyColumn+` = ? WHERE token_hash = ? AND used_at = ''`,
		fmtTime(now), key(resID), e.tokenHash)
	if err != nil {
		return fmt.Errorf("enroll %s: %w", e.what, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return identity.ErrEnrollmentTokenInvalid
	}
	return nil
}
