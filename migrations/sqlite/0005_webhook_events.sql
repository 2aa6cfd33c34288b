-- extapi schema v5: inbound webhooks.
--
-- webhook_events: one row per provider event that extapi verified and acknowledged. It is written
-- before the provider gets its 2xx, and the deliverer sends it from here to the API's
-- webhook.forward_url until the receiver takes it or the attempts run out (status dead).
-- payload is the request body exactly as received (the provider's event, not a secret of ours).
-- dedup_key is the provider's event id, or a hash of signature and timestamp where the scheme
-- has none: the unique index is the replay guard, so an event is stored, and delivered, once.
-- A deliverer claims a row by setting locked_until (its lease) and claim_token; other instances
-- skip rows whose lease has not run out (SELECT … FOR UPDATE SKIP LOCKED on PostgreSQL;
-- on SQLite the claim is one IMMEDIATE transaction).
CREATE TABLE webhook_events (
    id               TEXT PRIMARY KEY,
    external_api_id  TEXT        NOT NULL REFERENCES external_apis (id),
    sales_channel_id TEXT        NOT NULL DEFAULT '',
    partner_id       TEXT        NOT NULL DEFAULT '',
    scheme           TEXT        NOT NULL,
    dedup_key        TEXT        NOT NULL,
    event_type       TEXT        NOT NULL DEFAULT '',
    content_type     TEXT        NOT NULL DEFAULT '',
    payload          BLOB        NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at  DATETIME    NOT NULL,
    locked_until     DATETIME,
    claim_token      TEXT        NOT NULL DEFAULT '',
    last_status      INTEGER     NOT NULL DEFAULT 0,
    last_error       TEXT        NOT NULL DEFAULT '',
    received_at      DATETIME    NOT NULL,
    delivered_at     DATETIME,
    updated_at       DATETIME    NOT NULL
);
CREATE UNIQUE INDEX webhook_events_dedup ON webhook_events (external_api_id, dedup_key);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);
CREATE INDEX webhook_events_received ON webhook_events (received_at DESC, id DESC);
CREATE INDEX webhook_events_tenant ON webhook_events (sales_channel_id, partner_id);
