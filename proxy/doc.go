// Package proxy is extapi's data plane: it forwards a caller's request to an external API with
// the connection's credential injected, so that internal services never hold a secret.
//
// # Stages
//
// Handler.ServeFastHTTP runs one function per stage over a pooled per-request state
// (exchange), each returning an error that asError maps to the answer, in one place:
//
//	resolveRoute → loadConnection (cache) → upstreamURL → openSecrets (vault) → buildRequest
//	(headers, credential) → rateLimit → forward (retries) → respond
//
// Each auth type is one Injector, chosen when the route is loaded. Static credentials (api_key,
// bearer, basic) are set in buildRequest; OAuth 2.0 tokens (from a TokenSource, refreshed
// in-line) and OAuth 1.0a signatures are set in forward, per attempt (inject_oauth*.go).
//
// # Routing
//
// Path mode: /<slug>/<connection_id>/<rest>?<query> goes to <base_url>/<rest>?<query>. Header
// mode: X-Extapi-Connection (and optionally X-Extapi-Api: <slug>) names the connection and the
// path is forwarded as it is; it must lie within the base URL's path. The raw request-target
// is checked byte by byte (checkPath): dot segments, encoded slashes and backslashes, double
// encoding, empty segments, control bytes and absolute-form targets are refused with 400
// rather than normalized, so the upstream URL always keeps the configured origin and base path
// (FuzzUpstreamURL holds this). Encoded slashes (%2F) are refused outright: upstreams disagree
// on whether they separate segments.
//
// # Cache
//
// Routes (a connection, its API, the chosen Injector, the rate-limit key) and APIs (parsed
// base URL, connection pool, TLS, policy) are cached in memory; a steady-state request makes
// no database query. store.SubscribeChanges drops entries (ChangeAPI drops the API and its
// routes, ChangeConnection one route, ChangeAll everything); Options.CacheTTL bounds an entry's
// life should a notification be missed. Concurrent misses of one route load it once
// (singleflight), and a load that overlaps an invalidation is not stored. last_used_at is
// collected in memory and written in one batch every Options.TouchInterval and at Close.
//
// # Secrets
//
// The sealed credentials are opened when a route is loaded and kept, opened, with the cached
// route until it is invalidated or its TTL ends (30s by default). Opening per request instead
// (Options.OpenPerRequest) costs about 1.2 µs, 2 allocations and 80 B more per request
// (BenchmarkOpenSecret; BenchmarkHandler: 6 allocations per request instead of 4), for little
// safety in return: the process holds the keyring, so whoever can read its memory can open
// every blob anyway. The per-request buffers that held a secret are wiped after use. See
// docs/BENCHMARKS.md.
//
// # Upstream
//
// One fasthttp.HostClient (keep-alive pool) per upstream origin and TLS configuration. HTTPS
// is verified against the system roots plus the API's optional CA bundle, with an optional
// client certificate (mTLS); connecting includes the TLS handshake, so a failure there is
// known not to have sent anything. timeout_ms bounds the whole exchange: connect, send, the
// retries and their waits, and streaming the response body back. retry_config retries failed
// connects (any method: nothing was sent), and broken connections and 429/502/503/504 for
// replayable requests only — idempotent methods or an Idempotency-Key, with a body that was
// buffered — after an exponential backoff with jitter or the upstream's Retry-After, never
// past the deadline. A replayable request whose pooled connection had gone stale is also sent
// once more at once, as net/http does. Under TLS 1.3 an upstream refuses a client certificate
// after the handshake, by closing the connection; that reads as upstream_unreachable, while a
// refusal during the handshake (TLS 1.2) or an upstream certificate that does not verify is
// upstream_tls.
//
// # Bodies
//
// Request and response bodies stream: a request body up to Options.BufferLimit (1 MiB) is read
// first so that a retry can send it again, a larger one is passed through as it arrives, and the
// upstream's response body is written to the caller as it is read.
//
// # Observability
//
// Options.Metrics (a metrics.New; nil records into one exposed nowhere) is recorded through the
// API's handle, resolved when the API is loaded: per attempt in forward (upstream status and
// duration, error kind, retry reason), in rateLimit (wait, rejection), in route (cache hit and
// miss), in watch (invalidation), and once per request in finish (requests, duration, gateway
// errors with api "unknown" when nothing resolved), none of it allocating. finish also writes
// the access line (Options.AccessLogEvery) and echoes the request id: the caller's X-Request-Id,
// or one generated and sent upstream (observe.go).
package proxy
