-- Log Analytics dedicated clusters (Microsoft.OperationalInsights/clusters)
-- with customer-managed keys, and the workspace links to them
-- (workspaces/{ws}/linkedServices/cluster). key_secret_sealed holds the
-- provider credential (Transit token or AppRole secret ID, Key Vault client
-- secret, PKCS#11 PIN) sealed with the platform key; it is never returned.
-- A cluster blocks the deletion of its resource group (RESTRICT) and of
-- itself while workspaces are linked: losing the link row of an encrypted
-- workspace would lock it at the next start.
CREATE TABLE clusters (
    cluster_key        TEXT NOT NULL PRIMARY KEY,
    rg_key             TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE RESTRICT,
    sub_key            TEXT NOT NULL,
    name               TEXT NOT NULL,
    location           TEXT NOT NULL,
    tags               TEXT NOT NULL,
    cluster_id         TEXT NOT NULL UNIQUE,
    identity_type      TEXT NOT NULL,
    sku_name           TEXT NOT NULL,
    sku_capacity       INTEGER NOT NULL,
    billing_type       TEXT NOT NULL,
    key_vault_uri      TEXT NOT NULL,
    key_name           TEXT NOT NULL,
    key_version        TEXT NOT NULL,
    key_rsa_size       INTEGER NOT NULL,
    key_provider       TEXT NOT NULL,
    key_config         TEXT NOT NULL,
    key_secret_sealed  BLOB NOT NULL,
    double_encryption  INTEGER NOT NULL,
    etag               TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_by_type    TEXT NOT NULL,
    modified_at        TEXT NOT NULL,
    modified_by        TEXT NOT NULL,
    modified_by_type   TEXT NOT NULL
);
CREATE INDEX clusters_rg ON clusters (rg_key);
CREATE INDEX clusters_sub ON clusters (sub_key);

CREATE TABLE cluster_links (
    ws_key      TEXT NOT NULL PRIMARY KEY REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    cluster_key TEXT NOT NULL REFERENCES clusters (cluster_key) ON DELETE RESTRICT,
    linked_at   TEXT NOT NULL,
    linked_by   TEXT NOT NULL
);
CREATE INDEX cluster_links_cluster ON cluster_links (cluster_key);
