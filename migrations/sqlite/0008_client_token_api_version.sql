-- extapi schema v8: the API version a client-credentials token was fetched for.
--
-- api_updated_at is the updated_at of the external_apis row whose settings (client id, secret,
-- scopes, token URL, token_params) the token request used. A token whose api_updated_at is older
-- than the API's current updated_at was fetched with settings that have changed, and is not used
-- again. NULL (rows cached before v8) counts as older than any API.
ALTER TABLE oauth2_client_tokens ADD COLUMN api_updated_at DATETIME;
