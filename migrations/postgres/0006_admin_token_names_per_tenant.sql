-- extapi schema v6: an admin token's name is unique within its tenant (sales channel and
-- partner) among tokens that are not revoked, instead of across all tenants, so creating a token
-- no longer tells a tenant-scoped admin which names other tenants use.
DROP INDEX admin_tokens_live_name;
CREATE UNIQUE INDEX admin_tokens_live_tenant_name ON admin_tokens (sales_channel_id, partner_id, name)
    WHERE revoked_at IS NULL;
