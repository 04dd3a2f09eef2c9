-- The Custos directory (users, groups with nested membership), local sign-in
-- state (argon2id password hashes, sealed TOTP secrets, lockout counters),
-- OAuth refresh tokens, and just-in-time access requests. Times are RFC 3339
-- text in UTC ('' = none); booleans are 0/1.

-- Users. upn_key is the lower-cased userPrincipalName, unique per tenant.
-- password_hash is the PHC string of an argon2id hash ('' = no password: the
-- user signs in through an external issuer only). totp_sealed is the TOTP
-- secret sealed by the platform key (empty = no TOTP); totp_last_step is the
-- last time step accepted, so that a code is never accepted twice.
CREATE TABLE directory_users (
    object_id         TEXT NOT NULL PRIMARY KEY,
    tenant_id         TEXT NOT NULL,
    upn               TEXT NOT NULL,
    upn_key           TEXT NOT NULL,
    display_name      TEXT NOT NULL,
    mail              TEXT NOT NULL,
    enabled           INTEGER NOT NULL,
    password_hash     TEXT NOT NULL,
    password_set_at   TEXT NOT NULL,
    totp_sealed       BLOB,
    totp_enabled      INTEGER NOT NULL,
    totp_last_step    INTEGER NOT NULL,
    failed_sign_ins   INTEGER NOT NULL,
    locked_until      TEXT NOT NULL,
    external_issuer   TEXT NOT NULL,
    external_subject  TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    modified_at       TEXT NOT NULL,
    modified_by       TEXT NOT NULL,
    UNIQUE (tenant_id, upn_key)
);
CREATE INDEX directory_users_external ON directory_users (external_issuer, external_subject);

-- Groups. name_key is the lower-cased displayName, unique per tenant (so an
-- external issuer's groups claim can name a group).
CREATE TABLE directory_groups (
    object_id    TEXT NOT NULL PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    display_name TEXT NOT NULL,
    name_key     TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    modified_at  TEXT NOT NULL,
    modified_by  TEXT NOT NULL,
    UNIQUE (tenant_id, name_key)
);

-- Direct memberships; member_id is a user, group, service principal or
-- managed identity object ID. Transitive membership is computed.
CREATE TABLE directory_group_members (
    group_id    TEXT NOT NULL REFERENCES directory_groups (object_id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL,
    member_type TEXT NOT NULL,
    added_at    TEXT NOT NULL,
    added_by    TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX directory_group_members_member ON directory_group_members (member_id);

-- Deleting a user or group removes its memberships and role assignments.
CREATE TRIGGER directory_users_delete AFTER DELETE ON directory_users
BEGIN
    DELETE FROM directory_group_members WHERE member_id = OLD.object_id;
    DELETE FROM role_assignments WHERE principal_id = OLD.object_id;
END;

CREATE TRIGGER directory_groups_delete AFTER DELETE ON directory_groups
BEGIN
    DELETE FROM directory_group_members WHERE member_id = OLD.object_id;
    DELETE FROM role_assignments WHERE principal_id = OLD.object_id;
END;

CREATE TRIGGER service_principals_delete_memberships AFTER DELETE ON service_principals
BEGIN
    DELETE FROM directory_group_members WHERE member_id = OLD.object_id;
END;

-- Refresh tokens: only SHA-256 of the token is stored. Tokens of one sign-in
-- form a family; presenting a used token revokes the family (rotation with
-- reuse detection).
CREATE TABLE oauth_refresh_tokens (
    token_hash  BLOB NOT NULL PRIMARY KEY,
    family_id   TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    object_id   TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    scope       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT NOT NULL,
    revoked_at  TEXT NOT NULL
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_tokens_principal ON oauth_refresh_tokens (object_id);

-- Just-in-time data access requests (Custos.Access/accessRequests) on a
-- workspace. status: Pending, Approved, Rejected, Expired, Revoked.
CREATE TABLE access_requests (
    request_key        TEXT NOT NULL PRIMARY KEY,
    id                 TEXT NOT NULL,
    name               TEXT NOT NULL,
    ws_key             TEXT NOT NULL REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    scope              TEXT NOT NULL,
    tenant_id          TEXT NOT NULL,
    requester_id       TEXT NOT NULL,
    requester_type     TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    justification      TEXT NOT NULL,
    duration_seconds   INTEGER NOT NULL,
    status             TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    decided_at         TEXT NOT NULL,
    decided_by         TEXT NOT NULL,
    decision_reason    TEXT NOT NULL,
    assignment_id      TEXT NOT NULL,
    access_expires_at  TEXT NOT NULL
);
CREATE INDEX access_requests_ws ON access_requests (ws_key);
