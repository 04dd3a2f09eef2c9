-- Saved searches of a workspace (Microsoft.OperationalInsights/workspaces/
-- savedSearches). The query is customer content: it is stored sealed under
-- the workspace's key (query_sealed); everything else is metadata. A saved
-- search with a function alias is a workspace function callable by name in
-- queries; aliases are unique per workspace (case-insensitive).
CREATE TABLE saved_searches (
    ws_key              TEXT NOT NULL REFERENCES workspaces (ws_key) ON DELETE CASCADE,
    name_key            TEXT NOT NULL,
    name                TEXT NOT NULL,
    category            TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    query_sealed        BLOB NOT NULL,
    function_alias      TEXT NOT NULL,
    alias_key           TEXT,
    function_parameters TEXT NOT NULL,
    tags                TEXT NOT NULL,
    version             INTEGER NOT NULL,
    etag                TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    created_by          TEXT NOT NULL,
    created_by_type     TEXT NOT NULL,
    modified_at         TEXT NOT NULL,
    modified_by         TEXT NOT NULL,
    modified_by_type    TEXT NOT NULL,
    PRIMARY KEY (ws_key, name_key)
);
CREATE UNIQUE INDEX saved_searches_alias ON saved_searches (ws_key, alias_key);
