package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/identity"
)

// The Custos directory: users and groups (nested membership), service
// principal listing and deletion, and the lookups the token service and the
// authorizer need (transitive groups, principal existence).

var _ identity.Directory = (*DB)(nil)

// Limits of the directory.
const (
	// MaxGroupDepth bounds nested group resolution; deeper nesting is
	// ignored (and refused when a membership is added).
	MaxGroupDepth = 32
	// MaxTransitiveGroups bounds the groups one principal resolves to.
	MaxTransitiveGroups = 2048
)

var upnRE = regexp.MustCompile(`^[A-Za-z0-9._%+\-']{1,64}@[A-Za-z0-9.\-]{1,190}$`)

// ValidateUserPrincipalName checks a userPrincipalName: local@domain.
func ValidateUserPrincipalName(upn string) error {
	if !upnRE.MatchString(upn) || strings.HasPrefix(upn, ".") || strings.Contains(upn, "..") {
		return Invalid("InvalidUserPrincipalName", "userPrincipalName",
			"The userPrincipalName '%s' is not valid: use local@domain with letters, digits and . _ %% + - ' only.", truncate(upn, 100))
	}
	return nil
}

// ValidateDisplayName checks a user, group or application display name.
func ValidateDisplayName(name string) error {
	n := strings.TrimSpace(name)
	if n == "" || len(n) > 256 || strings.ContainsAny(n, "\x00\r\n\t") {
		return Invalid("InvalidDisplayName", "displayName", "The displayName must have 1 to 256 printable characters.")
	}
	return nil
}

func principalNotFound(id string) *Error {
	e := notFound("PrincipalNotFound", "Principal %s does not exist in the directory.", truncate(strings.ReplaceAll(id, "-", ""), 64))
	e.also = identity.ErrNotFound
	return e
}

const userColumns = `object_id, tenant_id, upn, display_name, mail, enabled, password_hash, password_set_at, totp_sealed, totp_enabled,
	totp_last_step, failed_sign_ins, locked_until, external_issuer, external_subject, created_at, modified_at`

func scanUser(sc interface{ Scan(...any) error }) (identity.User, identity.SignInState, error) {
	var u identity.User
	var st identity.SignInState
	var enabled, totpEnabled int
	var pwSet, locked, created, modified string
	if err := sc.Scan(&u.ObjectID, &u.TenantID, &u.UserPrincipalName, &u.DisplayName, &u.Mail, &enabled, &st.PasswordHash, &pwSet,
		&st.TOTPSealed, &totpEnabled, &st.TOTPLastStep, &st.FailedSignIns, &locked, &u.ExternalIssuer, &u.ExternalSubject,
		&created, &modified); err != nil {
		return u, st, err
	}
	u.Enabled, st.TOTPEnabled = enabled != 0, totpEnabled != 0
	u.HasPassword, u.TOTPEnabled = st.PasswordHash != "", st.TOTPEnabled
	var err error
	if st.LockedUntil, err = parseTime(locked); err != nil {
		return u, st, err
	}
	if u.Created, err = parseTime(created); err != nil {
		return u, st, err
	}
	if u.Modified, err = parseTime(modified); err != nil {
		return u, st, err
	}
	return u, st, nil
}

// CreateUser creates a directory user. ObjectID and TenantID are required;
// a duplicate userPrincipalName in the tenant is a conflict. passwordHash
// may be "" (no local password).
func (c *DB) CreateUser(ctx context.Context, u identity.User, passwordHash string, by Actor) (identity.User, error) {
	if err := ValidateUserPrincipalName(u.UserPrincipalName); err != nil {
		return u, err
	}
	if u.DisplayName == "" {
		u.DisplayName = u.UserPrincipalName
	}
	if err := ValidateDisplayName(u.DisplayName); err != nil {
		return u, err
	}
	if !IsGUID(u.ObjectID) || !IsGUID(u.TenantID) {
		return u, Invalid("InvalidParameter", "objectId", "A user needs a GUID object ID and tenant ID.")
	}
	if len(u.Mail) > 256 {
		return u, Invalid("InvalidParameter", "mail", "The mail address is longer than 256 characters.")
	}
	now := c.nowUTC()
	u.ObjectID, u.TenantID = strings.ToLower(u.ObjectID), strings.ToLower(u.TenantID)
	err := c.inTx(ctx, func(r run) error {
		if exists, err := principalExists(ctx, r, u.ObjectID); err != nil {
			return err
		} else if exists != "" {
			return conflictIdentity("A principal with object ID '%s' already exists.", u.ObjectID)
		}
		pwSet := ""
		if passwordHash != "" {
			pwSet = fmtTime(now)
		}
		_, err := r.exec(ctx, `INSERT INTO directory_users (`+userColumns+`, upn_key, created_by, modified_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0, '', ?, ?, ?, ?, ?, ?, ?)`,
			u.ObjectID, u.TenantID, u.UserPrincipalName, u.DisplayName, u.Mail, boolInt(true), passwordHash, pwSet,
			u.ExternalIssuer, u.ExternalSubject, fmtTime(now), fmtTime(now), strings.ToLower(u.UserPrincipalName), by.ID, by.ID)
		if c.d.isUniqueViolation(err) {
			return conflictIdentity("A user with userPrincipalName '%s' already exists.", truncate(u.UserPrincipalName, 100))
		}
		if err != nil {
			return fmt.Errorf("create user: %w", err)
		}
		return nil
	})
	if err != nil {
		return identity.User{}, err
	}
	u.Enabled, u.HasPassword, u.Created, u.Modified = true, passwordHash != "", now, now
	return u, nil
}

// DirectoryUser implements identity.Directory.
func (c *DB) DirectoryUser(ctx context.Context, tenantID, objectID string) (identity.User, identity.SignInState, error) {
	u, st, err := scanUser(c.r().row(ctx, `SELECT `+userColumns+` FROM directory_users WHERE tenant_id = ? AND object_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(objectID)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, st, principalNotFound(objectID)
	}
	if err != nil {
		return u, st, fmt.Errorf("get user: %w", err)
	}
	return u, st, nil
}

// UserByUPN implements identity.Directory.
func (c *DB) UserByUPN(ctx context.Context, tenantID, upn string) (identity.User, identity.SignInState, error) {
	u, st, err := scanUser(c.r().row(ctx, `SELECT `+userColumns+` FROM directory_users WHERE tenant_id = ? AND upn_key = ?`,
		strings.ToLower(tenantID), strings.ToLower(upn)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, st, identityNotFound("The user '%s' was not found.", truncate(upn, 100))
	}
	if err != nil {
		return u, st, fmt.Errorf("get user: %w", err)
	}
	return u, st, nil
}

// ExternalUser implements identity.Directory.
func (c *DB) ExternalUser(ctx context.Context, tenantID, issuer, subject string) (identity.User, error) {
	u, _, err := scanUser(c.r().row(ctx, `SELECT `+userColumns+` FROM directory_users WHERE tenant_id = ? AND external_issuer = ? AND external_subject = ?`,
		strings.ToLower(tenantID), issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return u, identityNotFound("No user is bound to that external subject.")
	}
	if err != nil {
		return u, fmt.Errorf("get external user: %w", err)
	}
	return u, nil
}

// Users lists the users of a tenant by userPrincipalName.
func (c *DB) Users(ctx context.Context, tenantID string) ([]identity.User, error) {
	return queryAll(ctx, c.r(), "list users", func(sc interface{ Scan(...any) error }) (identity.User, error) {
		u, _, err := scanUser(sc)
		return u, err
	}, `SELECT `+userColumns+` FROM directory_users WHERE tenant_id = ? ORDER BY upn_key`, strings.ToLower(tenantID))
}

// UpdateUser changes a user's displayName, mail and enabled flag.
func (c *DB) UpdateUser(ctx context.Context, tenantID, objectID string, displayName, mail *string, enabled *bool, by Actor) (identity.User, error) {
	if displayName != nil {
		if err := ValidateDisplayName(*displayName); err != nil {
			return identity.User{}, err
		}
	}
	err := c.inTx(ctx, func(r run) error {
		sets, args := []string{"modified_at = ?", "modified_by = ?"}, []any{fmtTime(c.nowUTC()), by.ID}
		if displayName != nil {
			sets, args = append(sets, "display_name = ?"), append(args, strings.TrimSpace(*displayName))
		}
		if mail != nil {
			sets, args = append(sets, "mail = ?"), append(args, *mail)
		}
		if enabled != nil {
			sets, args = append(sets, "enabled = ?"), append(args, boolInt(*enabled))
		}
		res, err := r.exec(ctx, `UPDATE directory_users SET `+strings.Join(sets, ", ")+` WHERE tenant_id = ? AND object_id = ?`,
			append(args, strings.ToLower(tenantID), strings.ToLower(objectID))...)
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return principalNotFound(objectID)
		}
		if enabled != nil && !*enabled {
			if _, err := r.exec(ctx, `UPDATE oauth_refresh_tokens SET revoked_at = ? WHERE object_id = ? AND revoked_at = ''`,
				fmtTime(c.nowUTC()), strings.ToLower(objectID)); err != nil {
				return fmt.Errorf("revoke refresh tokens: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return identity.User{}, err
	}
	u, _, err := c.DirectoryUser(ctx, tenantID, objectID)
	return u, err
}

// DeleteUser deletes a user with its memberships, role assignments and
// refresh tokens. deleted is false when there was none.
func (c *DB) DeleteUser(ctx context.Context, tenantID, objectID string) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		res, err := r.exec(ctx, `DELETE FROM directory_users WHERE tenant_id = ? AND object_id = ?`, strings.ToLower(tenantID), strings.ToLower(objectID))
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		n, _ := res.RowsAffected()
		deleted = n > 0
		if _, err := r.exec(ctx, `DELETE FROM oauth_refresh_tokens WHERE object_id = ?`, strings.ToLower(objectID)); err != nil {
			return fmt.Errorf("delete refresh tokens: %w", err)
		}
		return nil
	})
	return deleted, err
}

// RecordSignInFailure implements identity.Directory.
func (c *DB) RecordSignInFailure(ctx context.Context, tenantID, objectID string, lockUntil time.Time) (int, error) {
	var n int
	err := c.inTx(ctx, func(r run) error {
		if _, err := r.exec(ctx, `UPDATE directory_users SET failed_sign_ins = failed_sign_ins + 1,
			locked_until = CASE WHEN ? = '' THEN locked_until ELSE ? END WHERE tenant_id = ? AND object_id = ?`,
			fmtTime(lockUntil), fmtTime(lockUntil), strings.ToLower(tenantID), strings.ToLower(objectID)); err != nil {
			return fmt.Errorf("record sign-in failure: %w", err)
		}
		return r.row(ctx, `SELECT failed_sign_ins FROM directory_users WHERE tenant_id = ? AND object_id = ?`,
			strings.ToLower(tenantID), strings.ToLower(objectID)).Scan(&n)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, principalNotFound(objectID)
	}
	return n, err
}

// ResetSignInFailures implements identity.Directory.
func (c *DB) ResetSignInFailures(ctx context.Context, tenantID, objectID string) error {
	_, err := c.r().exec(ctx, `UPDATE directory_users SET failed_sign_ins = 0, locked_until = '' WHERE tenant_id = ? AND object_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return fmt.Errorf("reset sign-in failures: %w", err)
	}
	return nil
}

// AcceptTOTPStep implements identity.Directory.
func (c *DB) AcceptTOTPStep(ctx context.Context, tenantID, objectID string, step int64) (bool, error) {
	res, err := c.r().exec(ctx, `UPDATE directory_users SET totp_last_step = ? WHERE tenant_id = ? AND object_id = ? AND totp_last_step < ?`,
		step, strings.ToLower(tenantID), strings.ToLower(objectID), step)
	if err != nil {
		return false, fmt.Errorf("accept TOTP step: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SetUserPassword implements identity.Directory.
func (c *DB) SetUserPassword(ctx context.Context, tenantID, objectID, hash string) error {
	now := fmtTime(c.nowUTC())
	if hash == "" {
		now = ""
	}
	res, err := c.r().exec(ctx, `UPDATE directory_users SET password_hash = ?, password_set_at = ?, failed_sign_ins = 0, locked_until = ''
		WHERE tenant_id = ? AND object_id = ?`, hash, now, strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return principalNotFound(objectID)
	}
	return nil
}

// SetUserTOTP implements identity.Directory.
func (c *DB) SetUserTOTP(ctx context.Context, tenantID, objectID string, sealed []byte, enabled bool) error {
	var s any
	if len(sealed) > 0 {
		s = sealed
	}
	res, err := c.r().exec(ctx, `UPDATE directory_users SET totp_sealed = ?, totp_enabled = ?, totp_last_step = 0 WHERE tenant_id = ? AND object_id = ?`,
		s, boolInt(enabled && len(sealed) > 0), strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return fmt.Errorf("set TOTP: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return principalNotFound(objectID)
	}
	return nil
}

// ----- groups -----

func scanGroup(sc interface{ Scan(...any) error }) (identity.Group, error) {
	var g identity.Group
	var created string
	if err := sc.Scan(&g.ObjectID, &g.TenantID, &g.DisplayName, &g.Description, &created); err != nil {
		return g, err
	}
	var err error
	g.Created, err = parseTime(created)
	return g, err
}

const groupColumns = `object_id, tenant_id, display_name, description, created_at`

// CreateGroup creates a group; its displayName must be unique in the tenant.
func (c *DB) CreateGroup(ctx context.Context, g identity.Group, by Actor) (identity.Group, error) {
	if err := ValidateDisplayName(g.DisplayName); err != nil {
		return g, err
	}
	if !IsGUID(g.ObjectID) || !IsGUID(g.TenantID) {
		return g, Invalid("InvalidParameter", "objectId", "A group needs a GUID object ID and tenant ID.")
	}
	if len(g.Description) > 1024 {
		return g, Invalid("InvalidParameter", "description", "The description is longer than 1024 characters.")
	}
	g.ObjectID, g.TenantID, g.DisplayName = strings.ToLower(g.ObjectID), strings.ToLower(g.TenantID), strings.TrimSpace(g.DisplayName)
	now := c.nowUTC()
	err := c.inTx(ctx, func(r run) error {
		if exists, err := principalExists(ctx, r, g.ObjectID); err != nil {
			return err
		} else if exists != "" {
			return conflictIdentity("A principal with object ID '%s' already exists.", g.ObjectID)
		}
		_, err := r.exec(ctx, `INSERT INTO directory_groups (object_id, tenant_id, display_name, name_key, description, created_at, created_by,
			modified_at, modified_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, g.ObjectID, g.TenantID, g.DisplayName, strings.ToLower(g.DisplayName),
			g.Description, fmtTime(now), by.ID, fmtTime(now), by.ID)
		if c.d.isUniqueViolation(err) {
			return conflictIdentity("A group named '%s' already exists.", truncate(g.DisplayName, 100))
		}
		if err != nil {
			return fmt.Errorf("create group: %w", err)
		}
		return nil
	})
	if err != nil {
		return identity.Group{}, err
	}
	g.Created = now
	return g, nil
}

// Group returns a group by object ID or display name.
func (c *DB) Group(ctx context.Context, tenantID, idOrName string) (identity.Group, error) {
	g, err := scanGroup(c.r().row(ctx, `SELECT `+groupColumns+` FROM directory_groups WHERE tenant_id = ? AND (object_id = ? OR name_key = ?)`,
		strings.ToLower(tenantID), strings.ToLower(idOrName), strings.ToLower(idOrName)))
	if errors.Is(err, sql.ErrNoRows) {
		return g, principalNotFound(idOrName)
	}
	if err != nil {
		return g, fmt.Errorf("get group: %w", err)
	}
	return g, nil
}

// Groups lists a tenant's groups by name.
func (c *DB) Groups(ctx context.Context, tenantID string) ([]identity.Group, error) {
	return queryAll(ctx, c.r(), "list groups", scanGroup,
		`SELECT `+groupColumns+` FROM directory_groups WHERE tenant_id = ? ORDER BY name_key`, strings.ToLower(tenantID))
}

// DeleteGroup deletes a group, its memberships (both ways) and its role
// assignments.
func (c *DB) DeleteGroup(ctx context.Context, tenantID, objectID string) (bool, error) {
	res, err := c.r().exec(ctx, `DELETE FROM directory_groups WHERE tenant_id = ? AND object_id = ?`, strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return false, fmt.Errorf("delete group: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// GroupMember is one direct member of a group.
type GroupMember struct {
	ObjectID string
	Kind     identity.PrincipalKind
	Name     string
}

// AddGroupMember adds a principal (user, group, service principal or
// managed identity of the same tenant) to a group. A membership that would
// create a cycle, or nest deeper than MaxGroupDepth, is refused.
func (c *DB) AddGroupMember(ctx context.Context, tenantID, groupID, memberID string, by Actor) (GroupMember, error) {
	tenantID, groupID, memberID = strings.ToLower(tenantID), strings.ToLower(groupID), strings.ToLower(memberID)
	var m GroupMember
	err := c.inTx(ctx, func(r run) error {
		var n int
		if err := r.row(ctx, `SELECT COUNT(*) FROM directory_groups WHERE tenant_id = ? AND object_id = ?`, tenantID, groupID).Scan(&n); err != nil {
			return fmt.Errorf("add group member: %w", err)
		}
		if n == 0 {
			return principalNotFound(groupID)
		}
		kind, name, mt, err := principalInTenant(ctx, r, tenantID, memberID)
		if err != nil {
			return err
		}
		if kind == "" || mt != tenantID {
			return principalNotFound(memberID)
		}
		if kind == identity.KindGroup {
			// Refuse a cycle: the group may not be the member or below it.
			below, err := groupsBelow(ctx, r, memberID)
			if err != nil {
				return err
			}
			if memberID == groupID || slices.Contains(below, groupID) {
				return &Error{Code: "CircularGroupMembership", Kind: api.KindInvalid, base: ErrInvalid,
					Message: "The group cannot be a member of itself, directly or through nested groups."}
			}
		}
		_, err = r.exec(ctx, `INSERT INTO directory_group_members (group_id, member_id, member_type, added_at, added_by) VALUES (?, ?, ?, ?, ?)`,
			groupID, memberID, string(kind), fmtTime(c.nowUTC()), by.ID)
		if c.d.isUniqueViolation(err) {
			return conflictIdentity("One or more added object references already exist for the following modified properties: 'members'.")
		}
		if err != nil {
			return fmt.Errorf("add group member: %w", err)
		}
		m = GroupMember{ObjectID: memberID, Kind: kind, Name: name}
		return nil
	})
	return m, err
}

// RemoveGroupMember removes a direct member. removed is false when it was
// not one.
func (c *DB) RemoveGroupMember(ctx context.Context, tenantID, groupID, memberID string) (bool, error) {
	res, err := c.r().exec(ctx, `DELETE FROM directory_group_members WHERE member_id = ? AND group_id IN
		(SELECT object_id FROM directory_groups WHERE tenant_id = ? AND object_id = ?)`,
		strings.ToLower(memberID), strings.ToLower(tenantID), strings.ToLower(groupID))
	if err != nil {
		return false, fmt.Errorf("remove group member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// GroupMembers lists the direct members of a group.
func (c *DB) GroupMembers(ctx context.Context, tenantID, groupID string) ([]GroupMember, error) {
	if _, err := c.Group(ctx, tenantID, groupID); err != nil {
		return nil, err
	}
	ms, err := queryAll(ctx, c.r(), "list group members", func(sc interface{ Scan(...any) error }) (GroupMember, error) {
		var m GroupMember
		var k string
		err := sc.Scan(&m.ObjectID, &k)
		m.Kind = identity.PrincipalKind(k)
		return m, err
	}, `SELECT member_id, member_type FROM directory_group_members WHERE group_id = ? ORDER BY member_id`, strings.ToLower(groupID))
	if err != nil {
		return nil, err
	}
	for i := range ms {
		_, name, _, err := principalInTenant(ctx, c.r(), tenantID, ms[i].ObjectID)
		if err != nil {
			return nil, err
		}
		ms[i].Name = name
	}
	return ms, nil
}

// groupsBelow returns the groups nested (transitively) inside groupID.
func groupsBelow(ctx context.Context, r run, groupID string) ([]string, error) {
	var out []string
	frontier := []string{groupID}
	seen := map[string]bool{groupID: true}
	for depth := 0; depth < MaxGroupDepth && len(frontier) > 0; depth++ {
		var next []string
		for _, g := range frontier {
			rows, err := r.query(ctx, `SELECT member_id FROM directory_group_members WHERE group_id = ? AND member_type = 'Group'`, g)
			if err != nil {
				return nil, fmt.Errorf("nested groups: %w", err)
			}
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, fmt.Errorf("nested groups: %w", err)
				}
				if !seen[id] {
					seen[id] = true
					next = append(next, id)
					out = append(out, id)
				}
			}
			rows.Close()
		}
		frontier = next
	}
	return out, nil
}

// TransitiveGroups returns the object IDs of every group that one of
// principalIDs belongs to, directly or through nested groups (at most
// MaxGroupDepth levels, MaxTransitiveGroups groups), sorted. The authorizer
// uses it so that group role assignments apply to members.
func (c *DB) TransitiveGroups(ctx context.Context, principalIDs []string) ([]string, error) {
	seen := map[string]bool{}
	frontier := make([]any, 0, len(principalIDs))
	for _, id := range principalIDs {
		frontier = append(frontier, strings.ToLower(id))
	}
	var out []string
	for depth := 0; depth <= MaxGroupDepth && len(frontier) > 0; depth++ {
		q := `SELECT DISTINCT group_id FROM directory_group_members WHERE member_id IN (?` + strings.Repeat(", ?", len(frontier)-1) + `)`
		ids, err := queryAll(ctx, c.r(), "transitive groups", func(sc interface{ Scan(...any) error }) (string, error) {
			var s string
			return s, sc.Scan(&s)
		}, q, frontier...)
		if err != nil {
			return nil, err
		}
		frontier = frontier[:0]
		for _, g := range ids {
			if seen[g] {
				continue
			}
			seen[g] = true
			out = append(out, g)
			frontier = append(frontier, g)
			if len(out) >= MaxTransitiveGroups {
				slices.Sort(out)
				return out, nil
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// GroupIDsByNameOrID implements identity.Directory.
func (c *DB) GroupIDsByNameOrID(ctx context.Context, tenantID string, refs []string) ([]string, error) {
	var out []string
	for _, ref := range refs {
		if ref == "" || len(ref) > 256 {
			continue
		}
		g, err := c.Group(ctx, tenantID, ref)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, g.ObjectID)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ----- principals -----

// principalExists returns the kind of the principal with objectID in any
// tenant, or "".
func principalExists(ctx context.Context, r run, objectID string) (identity.PrincipalKind, error) {
	kind, _, _, err := principalInTenant(ctx, r, "", objectID)
	return kind, err
}

// principalInTenant looks a principal up by object ID: its kind, display
// name and tenant. tenantID "" matches any tenant. kind is "" when none.
func principalInTenant(ctx context.Context, r run, tenantID, objectID string) (identity.PrincipalKind, string, string, error) {
	objectID = strings.ToLower(objectID)
	var kind, name, tenant string
	err := r.row(ctx, `SELECT kind, display_name, tenant_id FROM (
		SELECT kind, display_name, tenant_id FROM service_principals WHERE object_id = ?
		UNION ALL SELECT 'User', upn, tenant_id FROM directory_users WHERE object_id = ?
		UNION ALL SELECT 'Group', display_name, tenant_id FROM directory_groups WHERE object_id = ?) LIMIT 1`,
		objectID, objectID, objectID).Scan(&kind, &name, &tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", nil
	}
	if err != nil {
		return "", "", "", fmt.Errorf("look up principal: %w", err)
	}
	if tenantID != "" && !strings.EqualFold(tenant, tenantID) {
		return "", "", "", nil
	}
	return identity.PrincipalKind(kind), name, tenant, nil
}

// PrincipalKindOf returns the kind of the principal with objectID (any
// tenant), or an error matching ErrNotFound (code PrincipalNotFound).
func (c *DB) PrincipalKindOf(ctx context.Context, objectID string) (identity.PrincipalKind, error) {
	k, err := principalExists(ctx, c.r(), objectID)
	if err != nil {
		return "", err
	}
	if k == "" {
		return "", principalNotFound(objectID)
	}
	return k, nil
}

// ServicePrincipalInfo is a service principal or managed identity as the
// directory lists it (no secrets).
type ServicePrincipalInfo struct {
	TenantID    string
	ObjectID    string
	AppID       string
	DisplayName string
	Kind        identity.PrincipalKind
	ResourceID  string
	Enabled     bool
	Created     time.Time
	Secrets     []identity.ClientSecret // hashes never leave the catalog's callers' wire formats
	Keys        []identity.KeyCredential
}

func scanSPInfo(sc interface{ Scan(...any) error }) (ServicePrincipalInfo, error) {
	var s ServicePrincipalInfo
	var kind, created string
	var enabled int
	if err := sc.Scan(&s.TenantID, &s.ObjectID, &s.AppID, &s.DisplayName, &kind, &s.ResourceID, &enabled, &created); err != nil {
		return s, err
	}
	s.Kind, s.Enabled = identity.PrincipalKind(kind), enabled != 0
	var err error
	s.Created, err = parseTime(created)
	return s, err
}

const spColumns = `tenant_id, object_id, app_id, display_name, kind, resource_id, enabled, created_at`

// ServicePrincipals lists a tenant's service principals and managed
// identities.
func (c *DB) ServicePrincipals(ctx context.Context, tenantID string) ([]ServicePrincipalInfo, error) {
	return queryAll(ctx, c.r(), "list service principals", scanSPInfo,
		`SELECT `+spColumns+` FROM service_principals WHERE tenant_id = ? ORDER BY display_name, object_id`, strings.ToLower(tenantID))
}

// ServicePrincipalByID returns a service principal by object ID or app ID,
// with its secrets' metadata and key credentials.
func (c *DB) ServicePrincipalByID(ctx context.Context, tenantID, id string) (ServicePrincipalInfo, error) {
	s, err := scanSPInfo(c.r().row(ctx, `SELECT `+spColumns+` FROM service_principals WHERE tenant_id = ? AND (object_id = ? OR app_id = ?)`,
		strings.ToLower(tenantID), strings.ToLower(id), strings.ToLower(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return s, principalNotFound(id)
	}
	if err != nil {
		return s, fmt.Errorf("get service principal: %w", err)
	}
	sp, err := c.ServicePrincipalByAppID(ctx, s.TenantID, s.AppID)
	if err != nil {
		return s, err
	}
	s.Secrets = sp.Secrets
	if s.Keys, err = c.KeyCredentials(ctx, s.TenantID, s.AppID); err != nil {
		return s, err
	}
	return s, nil
}

// DeleteServicePrincipal deletes a service principal (not a managed
// identity: those go with their resource) with its credentials, role
// assignments and memberships. deleted is false when there was none.
func (c *DB) DeleteServicePrincipal(ctx context.Context, tenantID, objectID string) (bool, error) {
	deleted := false
	err := c.inTx(ctx, func(r run) error {
		var kind string
		err := r.row(ctx, `SELECT kind FROM service_principals WHERE tenant_id = ? AND object_id = ?`,
			strings.ToLower(tenantID), strings.ToLower(objectID)).Scan(&kind)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete service principal: %w", err)
		}
		if kind == string(identity.KindManagedIdentity) {
			return &Error{Code: "CannotDeleteManagedIdentity", Kind: api.KindInvalid, base: ErrInvalid,
				Message: "A managed identity is deleted with its resource (machine or userAssignedIdentities resource)."}
		}
		for _, q := range []string{
			`DELETE FROM role_assignments WHERE principal_id = ?`,
			`DELETE FROM service_principals WHERE object_id = ?`,
		} {
			if _, err := r.exec(ctx, q, strings.ToLower(objectID)); err != nil {
				return fmt.Errorf("delete service principal: %w", err)
			}
		}
		deleted = true
		return nil
	})
	return deleted, err
}

// DeleteClientSecret removes a client secret of an application by key ID.
func (c *DB) DeleteClientSecret(ctx context.Context, tenantID, appID, keyID string) (bool, error) {
	res, err := c.r().exec(ctx, `DELETE FROM client_secrets WHERE tenant_id = ? AND app_id = ? AND key_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(appID), strings.ToLower(keyID))
	if err != nil {
		return false, fmt.Errorf("delete client secret: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// DeleteKeyCredential removes a key credential of an application by key ID.
func (c *DB) DeleteKeyCredential(ctx context.Context, tenantID, appID, keyID string) (bool, error) {
	res, err := c.r().exec(ctx, `DELETE FROM key_credentials WHERE tenant_id = ? AND app_id = ? AND key_id = ?`,
		strings.ToLower(tenantID), strings.ToLower(appID), strings.ToLower(keyID))
	if err != nil {
		return false, fmt.Errorf("delete key credential: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ----- refresh tokens -----

// PutRefreshToken implements identity.Directory.
func (c *DB) PutRefreshToken(ctx context.Context, t identity.RefreshToken) error {
	if len(t.Hash) == 0 || t.FamilyID == "" {
		return Invalid("InvalidParameter", "refreshToken", "A refresh token needs a hash and a family.")
	}
	_, err := c.r().exec(ctx, `INSERT INTO oauth_refresh_tokens (token_hash, family_id, tenant_id, object_id, client_id, scope, created_at,
		expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '')`, t.Hash, t.FamilyID, strings.ToLower(t.TenantID),
		strings.ToLower(t.ObjectID), strings.ToLower(t.ClientID), t.Scope, fmtTime(t.Created), fmtTime(t.Expires))
	if err != nil {
		return fmt.Errorf("store refresh token: %w", err)
	}
	return nil
}

// UseRefreshToken implements identity.Directory.
func (c *DB) UseRefreshToken(ctx context.Context, hash []byte, now time.Time) (identity.RefreshToken, error) {
	var t identity.RefreshToken
	var reused bool
	err := c.inTx(ctx, func(r run) error {
		var created, expires, used, revoked string
		err := r.row(ctx, `SELECT token_hash, family_id, tenant_id, object_id, client_id, scope, created_at, expires_at, used_at, revoked_at
			FROM oauth_refresh_tokens WHERE token_hash = ?`, hash).Scan(&t.Hash, &t.FamilyID, &t.TenantID, &t.ObjectID, &t.ClientID, &t.Scope,
			&created, &expires, &used, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return identity.ErrRefreshTokenInvalid
		}
		if err != nil {
			return fmt.Errorf("read refresh token: %w", err)
		}
		if revoked != "" {
			return identity.ErrRefreshTokenInvalid
		}
		if used != "" {
			if _, err := r.exec(ctx, `UPDATE oauth_refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at = ''`,
				fmtTime(now.UTC()), t.FamilyID); err != nil {
				return fmt.Errorf("revoke refresh token family: %w", err)
			}
			reused = true
			return nil
		}
		if t.Created, err = parseTime(created); err != nil {
			return err
		}
		if t.Expires, err = parseTime(expires); err != nil {
			return err
		}
		if !now.Before(t.Expires) {
			return identity.ErrRefreshTokenInvalid
		}
		_, err = r.exec(ctx, `UPDATE oauth_refresh_tokens SET used_at = ? WHERE token_hash = ?`, fmtTime(now.UTC()), hash)
		if err != nil {
			return fmt.Errorf("use refresh token: %w", err)
		}
		return nil
	})
	if err != nil {
		return identity.RefreshToken{}, err
	}
	if reused {
		return identity.RefreshToken{}, identity.ErrRefreshTokenReused
	}
	return t, nil
}

// RevokeRefreshTokens implements identity.Directory.
func (c *DB) RevokeRefreshTokens(ctx context.Context, tenantID, objectID string) (int, error) {
	res, err := c.r().exec(ctx, `UPDATE oauth_refresh_tokens SET revoked_at = ? WHERE tenant_id = ? AND object_id = ? AND revoked_at = '' AND used_at = ''`,
		fmtTime(c.nowUTC()), strings.ToLower(tenantID), strings.ToLower(objectID))
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
