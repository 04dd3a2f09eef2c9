-- Purge and delete-data operations (internal/purge). One row per accepted
-- request; the worker runs pending rows in created order and a restart
-- resumes them. The filters may hold the very values being purged, so they
-- are stored sealed by the platform key (AAD binds the operation ID) and
-- cleared when the operation finishes. ws_key is the lower-cased workspace
-- ARM ID; customer_id is the workspace's customerId (the store's name).

CREATE TABLE purge_operations (
    id             TEXT NOT NULL PRIMARY KEY,
    kind           TEXT NOT NULL,
    ws_key         TEXT NOT NULL,
    sub_key        TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    location       TEXT NOT NULL,
    table_name     TEXT NOT NULL,
    filters        BLOB NOT NULL,
    status         TEXT NOT NULL,
    error          TEXT NOT NULL,
    rows_purged    INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    completed_at   TEXT NOT NULL
);
CREATE INDEX purge_operations_status ON purge_operations (status, created_at);
CREATE INDEX purge_operations_ws ON purge_operations (ws_key, kind, created_at);
