-- extapi schema v3: OAuth 2.0.
--
-- oauth2_states: one row per authorization request in flight, so any instance can finish the
-- connect flow. The id is the hex SHA-256 of the state sent to the provider (the state itself is
-- a bearer secret of the callback and is not kept); the PKCE verifier is sealed. A row is used
-- once (used_at) and expires ten minutes after it is made; old rows are purged.
CREATE TABLE oauth2_states (
    id               TEXT PRIMARY KEY,
    external_api_id  TEXT        NOT NULL REFERENCES external_apis (id),
    connection_name  TEXT        NOT NULL DEFAULT '',
    user_id          TEXT        NOT NULL DEFAULT '',
    partner_id       TEXT        NOT NULL DEFAULT '',
    sales_channel_id TEXT        NOT NULL DEFAULT '',
    redirect_uri     TEXT        NOT NULL DEFAULT '',
    code_verifier    JSONB,
    created_by       TEXT        NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    used_at          TIMESTAMPTZ
);
CREATE INDEX oauth2_states_expires_at ON oauth2_states (expires_at);

-- oauth2_client_tokens: the client-credentials access token of an API, sealed, shared by every
-- instance until it nears expiry. A cache: a row that cannot be opened is fetched again.
CREATE TABLE oauth2_client_tokens (
    external_api_id TEXT PRIMARY KEY REFERENCES external_apis (id),
    credentials     JSONB       NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
