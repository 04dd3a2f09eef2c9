-- Alerts, second part (internal/alert): the activity log alerts' cursor
-- into the activity log chain, and the lifecycle of alert rules'
-- system-assigned managed identities.

-- The sequence number of the last activity log entry that activity log
-- alert rules have evaluated. Advanced in the same transaction as the
-- alerts and notifications those entries raised, so a restart neither
-- skips an entry nor raises its alerts twice.
CREATE TABLE alert_activity_cursor (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq        INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);

-- A rule's system-assigned identity is a managed identity whose
-- resource_id is the rule's key. Deleting the rule (directly or with its
-- resource group) deletes the identity's principal and role assignments,
-- as Azure does, so nothing can act as it afterwards.
CREATE TRIGGER alert_resources_delete_identity AFTER DELETE ON alert_resources
BEGIN
    DELETE FROM role_assignments WHERE lower(principal_id) IN
        (SELECT object_id FROM service_principals WHERE kind = 'ManagedIdentity' AND resource_id = OLD.res_key);
    DELETE FROM service_principals WHERE kind = 'ManagedIdentity' AND resource_id = OLD.res_key;
END;
