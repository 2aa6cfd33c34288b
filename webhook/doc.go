// Package webhook receives providers' inbound webhook events on the public webhook listener,
// verifies each by its API's scheme over the exact bytes received, stores it before answering
// 2xx, and delivers it from the store to the API's internal forward URL with retries.
//
// The pieces: Verify and the scheme functions (verify.go) know the providers' signatures and
// nothing of HTTP serving or storage; Handler (handler.go) is the listener's request path,
// with one place that maps errors to status codes (status.go); Deliverer (deliver.go) sends
// stored events, leasing each so that several instances never send one event at once, and
// runs the retention pass (retention.go: Purge) that empties old payloads and deletes old rows
// only where the deletion cannot open a replay.
//
// Where the keys live, per API (api_config.webhook):
//   - secret (sealed): the provider's signing secret; several, one per line, during a rotation.
//   - verify_token (sealed): the meta scheme's hub.verify_token for the GET challenge.
//   - public_key (plain): the sendgrid scheme's ECDSA P-256 public key(s).
//   - forward_secret (sealed): extapi's own key; every delivery carries
//     X-Extapi-Signature: v1=hex(HMAC-SHA256(forward_secret, timestamp + "." + event id + "." + body)).
package webhook
