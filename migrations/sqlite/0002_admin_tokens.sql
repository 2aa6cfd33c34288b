-- extapi schema v2: bearer tokens of the management API. Only a SHA-256 hash of each token is kept
-- (tokens are 256-bit random, so a fast hash is the right one); the token itself is shown once.
CREATE TABLE admin_tokens (
    id               TEXT PRIMARY KEY,
    name             TEXT        NOT NULL,
    role             TEXT        NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
    sales_channel_id TEXT        NOT NULL DEFAULT '',
    partner_id       TEXT        NOT NULL DEFAULT '',
    hash             TEXT        NOT NULL,
    created_at       DATETIME    NOT NULL,
    created_by       TEXT        NOT NULL DEFAULT '',
    last_used_at     DATETIME,
    revoked_at       DATETIME
);
CREATE UNIQUE INDEX admin_tokens_hash ON admin_tokens (hash);
-- A name is unique among tokens that are not revoked; it is the actor of the audit trail.
CREATE UNIQUE INDEX admin_tokens_live_name ON admin_tokens (name) WHERE revoked_at IS NULL;
