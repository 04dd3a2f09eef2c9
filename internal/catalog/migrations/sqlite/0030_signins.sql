-- Sign-ins in progress (authorization codes not yet redeemed, device code
-- grants not yet polled), so that they survive a restart. Each record is
-- sealed with the platform key (AAD = kind + NUL + code_hash), keyed by the
-- SHA-256 of its code, short-lived and deleted when used.
CREATE TABLE pending_signins (
    kind       TEXT NOT NULL,
    code_hash  TEXT NOT NULL,
    alias      TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    expires_at TEXT NOT NULL,
    PRIMARY KEY (kind, code_hash)
);
CREATE INDEX pending_signins_expires ON pending_signins (expires_at);
