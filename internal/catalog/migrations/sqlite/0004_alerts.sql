-- Alerts (internal/alert): alert resources (scheduled query rules, action
-- groups, alert processing rules) stored as Azure JSON documents, their
-- sealed per-receiver secrets, the scheduler's per-rule state, alert
-- instances with their history, and the notification outbox with every
-- delivery attempt. Keys (*_key) are lower-cased ARM IDs.

CREATE TABLE alert_resources (
    res_key          TEXT NOT NULL PRIMARY KEY,
    res_type         TEXT NOT NULL,
    rg_key           TEXT NOT NULL REFERENCES resource_groups (rg_key) ON DELETE CASCADE,
    sub_key          TEXT NOT NULL,
    name             TEXT NOT NULL,
    location         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    tags             TEXT NOT NULL,
    identity         TEXT NOT NULL,
    properties       TEXT NOT NULL,
    etag             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_by_type  TEXT NOT NULL,
    modified_at      TEXT NOT NULL,
    modified_by      TEXT NOT NULL,
    modified_by_type TEXT NOT NULL
);
CREATE INDEX alert_resources_type_rg ON alert_resources (res_type, rg_key);
CREATE INDEX alert_resources_type_sub ON alert_resources (res_type, sub_key);

-- Secrets sealed with the platform key (AAD binds resource ID and name).
CREATE TABLE alert_secrets (
    res_key    TEXT NOT NULL REFERENCES alert_resources (res_key) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (res_key, name)
);

-- One row per scheduled query rule: the scheduler's state document.
CREATE TABLE alert_rule_state (
    res_key    TEXT NOT NULL PRIMARY KEY REFERENCES alert_resources (res_key) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE alerts (
    alert_id          TEXT NOT NULL PRIMARY KEY,
    sub_key           TEXT NOT NULL,
    rule_key          TEXT NOT NULL,
    series_key        TEXT NOT NULL,
    monitor_condition TEXT NOT NULL,
    alert_state       TEXT NOT NULL,
    severity          TEXT NOT NULL,
    fired_at          TEXT NOT NULL,
    modified_at       TEXT NOT NULL,
    doc               TEXT NOT NULL
);
CREATE INDEX alerts_sub ON alerts (sub_key, fired_at);
CREATE INDEX alerts_rule ON alerts (rule_key, series_key);

CREATE TABLE alert_history (
    alert_id TEXT NOT NULL REFERENCES alerts (alert_id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    at       TEXT NOT NULL,
    event    TEXT NOT NULL,
    PRIMARY KEY (alert_id, seq)
);

-- The outbox: one row per (alert event, receiver). id is the idempotency key.
CREATE TABLE alert_notifications (
    id              TEXT NOT NULL PRIMARY KEY,
    alert_id        TEXT NOT NULL,
    sub_key         TEXT NOT NULL,
    receiver_type   TEXT NOT NULL,
    action_group    TEXT NOT NULL,
    receiver        TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_error      TEXT NOT NULL,
    payload         TEXT NOT NULL
);
CREATE INDEX alert_notifications_due ON alert_notifications (status, next_attempt_at);
CREATE INDEX alert_notifications_alert ON alert_notifications (alert_id);

CREATE TABLE alert_delivery_attempts (
    notification_id TEXT NOT NULL REFERENCES alert_notifications (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              TEXT NOT NULL,
    target          TEXT NOT NULL,
    status_code     INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    error           TEXT NOT NULL,
    duration_ms     INTEGER NOT NULL,
    PRIMARY KEY (notification_id, attempt)
);

-- Webhook endpoints paused after their retries were exhausted.
CREATE TABLE alert_endpoint_pauses (
    endpoint     TEXT NOT NULL PRIMARY KEY,
    paused_until TEXT NOT NULL
);
