-- extapi schema v4: OAuth 1.0a.
--
-- oauth1_requests: one row per three-legged connect flow in flight (RFC 5849 §2), so any instance
-- can finish it. The id is the hex SHA-256 of the request token (temporary credentials identifier)
-- the provider issued; the callback presents the token, the row holds only its hash. The request
-- token secret is sealed, its AAD bound to this row. A row is used once (used_at), expires minutes
-- after it is made, and old rows are purged.
CREATE TABLE oauth1_requests (
    id                   TEXT PRIMARY KEY,
    external_api_id      TEXT        NOT NULL REFERENCES external_apis (id),
    request_token_secret TEXT        NOT NULL,
    connection_name      TEXT        NOT NULL DEFAULT '',
    user_id              TEXT        NOT NULL DEFAULT '',
    partner_id           TEXT        NOT NULL DEFAULT '',
    sales_channel_id     TEXT        NOT NULL DEFAULT '',
    created_by           TEXT        NOT NULL DEFAULT '',
    created_at           DATETIME    NOT NULL,
    expires_at           DATETIME    NOT NULL,
    used_at              DATETIME
);
CREATE INDEX oauth1_requests_expires_at ON oauth1_requests (expires_at);
