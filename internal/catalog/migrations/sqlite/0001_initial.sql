-- Initial catalog schema. Keys (*_key) are lower-cased ARM IDs so that lookups
-- are case-insensitive; names keep the casing they were created with.
-- Times are RFC 3339 text in UTC; booleans are 0/1; JSON documents are text.

CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE tenants (
    id           TEXT NOT NULL PRIMARY KEY,
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

CREATE TABLE subscriptions (
    sub_key         TEXT NOT NULL PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE RESTRICT,
    display_name    TEXT NOT NULL,
    state           TEXT NOT NULL,
    tags            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    modified_at     TEXT NOT NULL
);

CREATE TABLE resource_groups (
    rg_key      TEXT NOT NULL PRIMARY KEY,
    sub_key     TEXT NOT NULL REFERENCES subscriptions (sub_key) ON DELETE RESTRICT,
    name        TEXT NOT NULL,
    location    TEXT NOT NULL,
    managed_by  TEXT NOT NULL,
    tags        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
CREATE INDEX resource_groups_sub ON resource_groups (sub_key);

CREATE TABLE workspaces (
    ws_key                    TEXT NOT NULL PRIMARY KEY,
    rg_key                    TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE RESTRICT,
    sub_key                   TEXT NOT NULL,
    name                      TEXT NOT NULL,
    location                  TEXT NOT NULL,
    tags                      TEXT NOT NULL,
    customer_id               TEXT NOT NULL UNIQUE,
    sku                       TEXT NOT NULL,
    retention_days            INTEGER NOT NULL,
    daily_quota_gb            REAL NOT NULL,
    log_access_resource_perms INTEGER NOT NULL,
    disable_local_auth        INTEGER NOT NULL,
    pna_ingestion             TEXT NOT NULL,
    pna_query                 TEXT NOT NULL,
    provisioning_state        TEXT NOT NULL,
    etag                      TEXT NOT NULL,
    created_at                TEXT NOT NULL,
    created_by                TEXT NOT NULL,
    created_by_type           TEXT NOT NULL,
    modified_at               TEXT NOT NULL,
    modified_by               TEXT NOT NULL,
    modified_by_type          TEXT NOT NULL
);
CREATE INDEX workspaces_rg ON workspaces (rg_key);
CREATE INDEX workspaces_sub ON workspaces (sub_key);

CREATE TABLE workspace_tables (
    ws_key               TEXT NOT NULL REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    name_key             TEXT NOT NULL,
    name                 TEXT NOT NULL,
    table_type           TEXT NOT NULL,
    description          TEXT NOT NULL,
    standard_columns     TEXT NOT NULL,
    columns              TEXT NOT NULL,
    retention_days       INTEGER NOT NULL,
    total_retention_days INTEGER NOT NULL,
    plan                 TEXT NOT NULL,
    plan_modified_at     TEXT NOT NULL,
    etag                 TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    created_by_type      TEXT NOT NULL,
    modified_at          TEXT NOT NULL,
    modified_by          TEXT NOT NULL,
    modified_by_type     TEXT NOT NULL,
    PRIMARY KEY (ws_key, name_key)
);

CREATE TABLE data_collection_rules (
    dcr_key          TEXT NOT NULL PRIMARY KEY,
    rg_key           TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE RESTRICT,
    sub_key          TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    tags             TEXT NOT NULL,
    identity         TEXT NOT NULL,
    immutable_id     TEXT NOT NULL UNIQUE,
    properties       TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX data_collection_rules_rg ON data_collection_rules (rg_key);
CREATE INDEX data_collection_rules_sub ON data_collection_rules (sub_key);

CREATE TABLE service_principals (
    tenant_id    TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    object_id    TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (tenant_id, app_id)
);

CREATE TABLE client_secrets (
    key_id     TEXT NOT NULL PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    hint       TEXT NOT NULL,
    hash       BLOB NOT NULL,
    expires_at TEXT NOT NULL,
    FOREIGN KEY (tenant_id, app_id) REFERENCES service_principals (tenant_id, app_id) ON DELETE CASCADE
);
CREATE INDEX client_secrets_sp ON client_secrets (tenant_id, app_id);

CREATE TABLE signing_keys (
    kid            TEXT NOT NULL PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    private_sealed BLOB NOT NULL,
    public_jwk     BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    sign_until     TEXT NOT NULL,
    publish_until  TEXT NOT NULL
);

CREATE TABLE role_assignments (
    ra_key             TEXT NOT NULL PRIMARY KEY,
    id                 TEXT NOT NULL,
    name               TEXT NOT NULL,
    scope              TEXT NOT NULL,
    scope_key          TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id       TEXT NOT NULL,
    principal_type     TEXT NOT NULL,
    condition          TEXT NOT NULL,
    created_at         TEXT NOT NULL
);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
CREATE INDEX role_assignments_scope ON role_assignments (scope_key);
