-- extapi schema v7: retention of inbound webhook events.
--
-- The deliverer's retention pass (webhook.Deliverer.Purge) empties the payload of old delivered
-- and dead events and sets purged_at, keeping the row: for schemes without a signed timestamp
-- (github, hmac-sha256, shopify, meta, twilio) the unique (external_api_id, dedup_key) is the only
-- replay guard, so the row stays as a tombstone. Events of schemes that verify a timestamp
-- (stripe, slack, standard-webhooks, sendgrid) are deleted outright once no replay of them could
-- pass the tolerance check any more.
-- webhook_events_retention finds the rows still holding a payload by age; webhook_events_expiry
-- finds deletable rows per scheme without walking the tombstones of the other schemes.
ALTER TABLE webhook_events ADD COLUMN purged_at DATETIME;
CREATE INDEX webhook_events_retention ON webhook_events (status, updated_at) WHERE purged_at IS NULL;
CREATE INDEX webhook_events_expiry ON webhook_events (scheme, received_at);
