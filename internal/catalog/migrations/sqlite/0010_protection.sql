-- Azure Monitor private link scopes (Microsoft.Insights/privateLinkScopes)
-- and their scoped resources (workspaces or data collection endpoints).
-- A scope whose ingestion or query access mode is PrivateOnly makes its
-- scoped workspaces refuse public requests of that kind. linked_key is the
-- lower-cased linked resource ID; a scoped resource outlives the resource
-- it names, as in Azure.
CREATE TABLE private_link_scopes (
    pls_key          TEXT NOT NULL PRIMARY KEY,
    rg_key           TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    sub_key          TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    tags             TEXT NOT NULL,
    ingestion_mode   TEXT NOT NULL,
    query_mode       TEXT NOT NULL,
    exclusions       TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX private_link_scopes_rg ON private_link_scopes (rg_key);
CREATE INDEX private_link_scopes_sub ON private_link_scopes (sub_key);

CREATE TABLE private_link_scoped_resources (
    pls_key          TEXT NOT NULL REFERENCES private_link_scopes (pls_key) ON DELETE CASCADE,
    name_key         TEXT NOT NULL,
    name             TEXT NOT NULL,
    linked_id        TEXT NOT NULL,
    linked_key       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL,
    PRIMARY KEY (pls_key, name_key)
);
CREATE INDEX private_link_scoped_resources_linked ON private_link_scoped_resources (linked_key);

-- Data export rules (Microsoft.OperationalInsights/workspaces/dataExports):
-- continuous export of tables to a directory or an S3-compatible bucket.
-- destination is the destination URI (file:///dir or s3://bucket/prefix);
-- dest_config is its non-secret JSON configuration, dest_secret_sealed its
-- credential sealed under the workspace key (never returned).
CREATE TABLE data_exports (
    ws_key             TEXT NOT NULL REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    name_key           TEXT NOT NULL,
    name               TEXT NOT NULL,
    export_id          TEXT NOT NULL UNIQUE,
    table_names        TEXT NOT NULL,
    destination        TEXT NOT NULL,
    dest_config        TEXT NOT NULL,
    dest_secret_sealed BLOB NOT NULL,
    format             TEXT NOT NULL,
    enabled            INTEGER NOT NULL,
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_by_type    TEXT NOT NULL,
    modified_at        TEXT NOT NULL,
    modified_by        TEXT NOT NULL,
    modified_by_type   TEXT NOT NULL,
    PRIMARY KEY (ws_key, name_key)
);

-- Export progress per rule: everything the rule's tables received before
-- low_water (ticks of _TimeReceived) is in the destination; seq and
-- head_hash are the last manifest of the destination's signed chain.
CREATE TABLE data_export_state (
    export_id  TEXT NOT NULL PRIMARY KEY,
    low_water  INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    head_hash  TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
