-- extapi schema v1: API definitions, connections, audit trail, key check values.
CREATE TABLE external_apis (
    id               TEXT PRIMARY KEY,
    name             TEXT        NOT NULL,
    slug             TEXT        NOT NULL,
    category         TEXT        NOT NULL,
    provider         TEXT        NOT NULL DEFAULT '',
    api_config       JSONB       NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'inactive', 'deprecated')),
    is_sandbox       BOOLEAN     NOT NULL DEFAULT FALSE,
    environment      TEXT        NOT NULL DEFAULT 'production'
                     CHECK (environment IN ('production', 'staging', 'development')),
    sales_channel_id TEXT        NOT NULL DEFAULT '',
    partner_id       TEXT        NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ,
    created_by       TEXT        NOT NULL DEFAULT '',
    updated_by       TEXT        NOT NULL DEFAULT '',
    CHECK (category IN ('social', 'payment', 'shipping', 'email', 'sms', 'analytics',
                        'crm', 'storage', 'communication', 'authentication', 'other'))
);
-- A slug is unique among live rows of one environment and tenant.
CREATE UNIQUE INDEX external_apis_live_slug
    ON external_apis (slug, environment, sales_channel_id, partner_id)
    WHERE deleted_at IS NULL;
CREATE INDEX external_apis_deleted_at ON external_apis (deleted_at);
CREATE INDEX external_apis_tenant ON external_apis (sales_channel_id, partner_id);

CREATE TABLE external_api_connections (
    id               TEXT PRIMARY KEY,
    external_api_id  TEXT        NOT NULL REFERENCES external_apis (id),
    user_id          TEXT        NOT NULL DEFAULT '',
    partner_id       TEXT        NOT NULL DEFAULT '',
    sales_channel_id TEXT        NOT NULL DEFAULT '',
    connection_name  TEXT        NOT NULL,
    credentials      JSONB       NOT NULL,
    provider_data    JSONB       NOT NULL DEFAULT '{}',
    status           TEXT        NOT NULL DEFAULT 'active'
                     CHECK (status IN ('active', 'expired', 'revoked', 'error')),
    last_used_at     TIMESTAMPTZ,
    last_sync_at     TIMESTAMPTZ,
    error_message    TEXT        NOT NULL DEFAULT '',
    authenticated_at TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    deleted_at       TIMESTAMPTZ
);
CREATE INDEX external_api_connections_api ON external_api_connections (external_api_id);
CREATE INDEX external_api_connections_deleted_at ON external_api_connections (deleted_at);
CREATE INDEX external_api_connections_tenant ON external_api_connections (sales_channel_id, partner_id);

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target_type TEXT        NOT NULL,
    target_id   TEXT        NOT NULL,
    sales_channel_id TEXT   NOT NULL DEFAULT '',
    partner_id  TEXT        NOT NULL DEFAULT '',
    changes     JSONB       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at DESC, id DESC);
CREATE INDEX audit_events_target ON audit_events (target_id);

-- One key check value per encryption key version, so a wrong key is detected at start-up.
CREATE TABLE encryption_keys (
    version     BIGINT PRIMARY KEY,
    fingerprint TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
