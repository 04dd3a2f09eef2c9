-- Diagnostic settings (Microsoft.Insights/diagnosticSettings) on workspaces:
-- where a workspace's query audit (category Audit, table LAQueryLogs) goes.
-- A setting disappears with its workspace; one whose destination workspace
-- is gone is kept and skipped until the destination exists again.
CREATE TABLE diagnostic_settings (
    ws_key           TEXT NOT NULL REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    name_key         TEXT NOT NULL,
    name             TEXT NOT NULL,
    dest_ws_id       TEXT NOT NULL,
    dest_ws_key      TEXT NOT NULL,
    logs             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL,
    PRIMARY KEY (ws_key, name_key)
);
CREATE INDEX diagnostic_settings_dest ON diagnostic_settings (dest_ws_key);
