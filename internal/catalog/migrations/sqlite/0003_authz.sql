-- Role definition and assignment APIs, resource locks and the tamper-evident
-- activity log (owned by the authz work area). Times are RFC 3339 text in UTC.

-- Role assignment properties added with the Microsoft.Authorization API.
-- expires_at is a Custos extension ('' = never).
ALTER TABLE role_assignments ADD COLUMN condition_version TEXT NOT NULL DEFAULT '';
ALTER TABLE role_assignments ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE role_assignments ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
ALTER TABLE role_assignments ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE role_assignments ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
ALTER TABLE role_assignments ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';
CREATE INDEX role_assignments_role ON role_assignments (role_definition_id);

-- Custom role definitions (built-in roles live in code). role_key is the
-- lower-case GUID; name_key the lower-case roleName, unique as in Azure.
CREATE TABLE role_definitions (
    role_key          TEXT NOT NULL PRIMARY KEY,
    id                TEXT NOT NULL,
    role_name         TEXT NOT NULL,
    name_key          TEXT NOT NULL UNIQUE,
    description       TEXT NOT NULL,
    permissions       TEXT NOT NULL,
    assignable_scopes TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    created_by        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    updated_by        TEXT NOT NULL
);

-- Management locks (Microsoft.Authorization/locks) at any scope.
CREATE TABLE management_locks (
    lock_key   TEXT NOT NULL PRIMARY KEY,
    id         TEXT NOT NULL,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    scope_key  TEXT NOT NULL,
    level      TEXT NOT NULL,
    notes      TEXT NOT NULL,
    owners     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX management_locks_scope ON management_locks (scope_key);

-- The activity log chain: record is the canonical JSON that was hashed;
-- hash = SHA-256(prev_hash bytes || seq as 8 big-endian bytes || record),
-- hex-encoded; the first record's prev_hash is 64 zeros.
CREATE TABLE activity_log (
    seq       INTEGER NOT NULL PRIMARY KEY,
    record    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- Signed checkpoints over the chain head (Ed25519).
CREATE TABLE activity_checkpoints (
    seq        INTEGER NOT NULL PRIMARY KEY,
    hash       TEXT NOT NULL,
    signed_at  TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  BLOB NOT NULL
);

-- Checkpoint signing keys: the private key sealed by the platform key.
CREATE TABLE activity_keys (
    key_id     TEXT NOT NULL PRIMARY KEY,
    sealed     BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created_at TEXT NOT NULL
);
