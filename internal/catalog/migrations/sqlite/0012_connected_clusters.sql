-- Kubernetes clusters enrolled as Microsoft.Kubernetes/connectedClusters with
-- a system-assigned managed identity (custos-agent in Kubernetes mode), their
-- one-time enrollment tokens (kept apart from machine tokens, so that neither
-- kind enrolls the other) and their data collection rule associations.

CREATE TABLE cluster_enrollment_tokens (
    token_hash      BLOB NOT NULL PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    rg_key          TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    expires_at      TEXT NOT NULL,
    used_at         TEXT NOT NULL,
    cluster_key     TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_by_type TEXT NOT NULL
);
CREATE INDEX cluster_enrollment_tokens_rg ON cluster_enrollment_tokens (rg_key);

CREATE TABLE connected_clusters (
    cluster_key        TEXT NOT NULL PRIMARY KEY,
    rg_key             TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    sub_key            TEXT NOT NULL,
    name               TEXT NOT NULL,
    location           TEXT NOT NULL,
    tags               TEXT NOT NULL,
    tenant_id          TEXT NOT NULL,
    principal_id       TEXT NOT NULL UNIQUE,
    client_id          TEXT NOT NULL,
    distribution       TEXT NOT NULL,
    kubernetes_version TEXT NOT NULL,
    agent_version      TEXT NOT NULL,
    etag               TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    created_by         TEXT NOT NULL,
    created_by_type    TEXT NOT NULL,
    modified_at        TEXT NOT NULL,
    modified_by        TEXT NOT NULL,
    modified_by_type   TEXT NOT NULL
);
CREATE INDEX connected_clusters_rg ON connected_clusters (rg_key);
CREATE INDEX connected_clusters_sub ON connected_clusters (sub_key);

CREATE TRIGGER connected_clusters_delete_identity AFTER DELETE ON connected_clusters
BEGIN
    DELETE FROM service_principals WHERE object_id = OLD.principal_id;
    DELETE FROM role_assignments WHERE principal_id = OLD.principal_id;
END;

CREATE TABLE cluster_dcr_associations (
    assoc_key        TEXT NOT NULL PRIMARY KEY,
    cluster_key      TEXT NOT NULL REFERENCES connected_clusters (cluster_key) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    dcr_id           TEXT NOT NULL,
    description      TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX cluster_dcr_associations_cluster ON cluster_dcr_associations (cluster_key);
