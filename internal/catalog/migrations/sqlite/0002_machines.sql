-- Managed identities, key (certificate) credentials, machines enrolled with
-- one-time tokens, and data collection rule associations.

-- Service principals gain a kind (ServicePrincipal or ManagedIdentity), the
-- resource a managed identity belongs to, and an enabled flag that
-- Authenticate checks.
ALTER TABLE service_principals ADD COLUMN kind TEXT NOT NULL DEFAULT 'ServicePrincipal';
ALTER TABLE service_principals ADD COLUMN resource_id TEXT NOT NULL DEFAULT '';
ALTER TABLE service_principals ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;

CREATE TABLE key_credentials (
    key_id       TEXT NOT NULL PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    public_key   BLOB NOT NULL,
    certificate  BLOB,
    not_before   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    FOREIGN KEY (tenant_id, app_id) REFERENCES service_principals (tenant_id, app_id) ON DELETE CASCADE
);
CREATE INDEX key_credentials_sp ON key_credentials (tenant_id, app_id);

-- Only a hash of each enrollment token is stored; used_at is '' until used.
CREATE TABLE enrollment_tokens (
    token_hash      BLOB NOT NULL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    rg_key          TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    expires_at      TEXT NOT NULL,
    used_at         TEXT NOT NULL,
    machine_key     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_by_type TEXT NOT NULL
);
CREATE INDEX enrollment_tokens_rg ON enrollment_tokens (rg_key);

CREATE TABLE machines (
    machine_key      TEXT NOT NULL PRIMARY KEY,
    rg_key           TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    sub_key          TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    tags             TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    principal_id     TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    os_type          TEXT NOT NULL,
    os_name          TEXT NOT NULL,
    os_version       TEXT NOT NULL,
    agent_version    TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX machines_rg ON machines (rg_key);
CREATE INDEX machines_sub ON machines (sub_key);

CREATE TABLE user_assigned_identities (
    uai_key          TEXT NOT NULL PRIMARY KEY,
    rg_key           TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    sub_key          TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    tags             TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    principal_id     TEXT NOT NULL UNIQUE,
    client_id        TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX user_assigned_identities_rg ON user_assigned_identities (rg_key);
CREATE INDEX user_assigned_identities_sub ON user_assigned_identities (sub_key);

-- Deleting a machine or a user-assigned identity (directly or with its
-- resource group) deletes the identity's principal, credentials and role
-- assignments, so its tokens stop working.
CREATE TRIGGER machines_delete_identity AFTER DELETE ON machines
BEGIN
    DELETE FROM service_principals WHERE object_id = OLD.principal_id;
    DELETE FROM role_assignments WHERE principal_id = OLD.principal_id;
END;

CREATE TRIGGER user_assigned_identities_delete_identity AFTER DELETE ON user_assigned_identities
BEGIN
    DELETE FROM service_principals WHERE object_id = OLD.principal_id;
    DELETE FROM role_assignments WHERE principal_id = OLD.principal_id;
END;

CREATE TABLE dcr_associations (
    assoc_key        TEXT NOT NULL PRIMARY KEY,
    resource_key     TEXT NOT NULL REFERENCES machines (machine_key) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    dcr_id           TEXT NOT NULL,
    dcr_key          TEXT NOT NULL,
    description      TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX dcr_associations_resource ON dcr_associations (resource_key);
CREATE INDEX dcr_associations_dcr ON dcr_associations (dcr_key);
