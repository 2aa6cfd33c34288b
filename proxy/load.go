package proxy

import (
	"errors"
	"time"

	"github.com/extapi/extapi/ratelimit"
	"github.com/extapi/extapi/store"
)

// newAPIEntry prepares an API for proxying: its parsed base URL, connection pool, timeout,
// retries, headers and rate-limit policy. A configuration that cannot work is kept as the
// entry's err and answered to every request (and logged once per load).
func (h *Handler) newAPIEntry(a *store.ExternalAPI) *apiEntry {
	cfg := &a.APIConfig
	e := &apiEntry{id: a.ID, slug: a.Slug, status: a.Status, row: a, timeout: h.opts.DefaultTimeout,
		metrics: h.metrics.API(a.Slug)}
	if cfg.TimeoutMS > 0 {
		e.timeout = time.Duration(cfg.TimeoutMS) * time.Millisecond
	}
	if rc := cfg.RetryConfig; rc != nil && rc.MaxRetries > 0 {
		e.retry = retryPolicy{max: rc.MaxRetries, backoff: time.Duration(rc.BackoffMS) * time.Millisecond}
		if e.retry.backoff <= 0 {
			e.retry.backoff = defaultBackoff
		}
	}
	if err := h.prepareAPI(e, a); err != nil {
		e.err = err
		h.log.Warn("proxy: API cannot be proxied", "api", a.Slug, "id", a.ID, "err", err.Error())
	}
	return e
}

func (h *Handler) prepareAPI(e *apiEntry, a *store.ExternalAPI) error {
	cfg := &a.APIConfig
	if err := h.prepareTemplates(e, a); err != nil {
		return err
	}
	if e.baseTmpl == nil { // else each connection resolves its own (bindUpstream)
		base, client, err := h.upstream(a, e.baseRaw)
		if err != nil {
			return err
		}
		e.base, e.client = base, client
	}

	if cfg.RateLimit != nil {
		e.reset = cfg.RateLimit.ResetHeader // also read for retry waits, limiter or not
	}
	if h.opts.Limiter != nil {
		p, err := ratelimit.NewPolicy(a.ID, cfg.RateLimit, e.timeout)
		if err != nil {
			return errorf(CodeAPIConfigInvalid, "the API's rate_limit is unusable", err)
		}
		e.policy = p
	}
	return nil
}

// newConnEntry prepares a route: the credential of the connection's auth type and, unless
// Options.OpenPerRequest, its secrets opened.
func (h *Handler) newConnEntry(api *apiEntry, conn *store.Connection) *connEntry {
	e := &connEntry{id: conn.ID, status: conn.Status, api: api}
	if api.err != nil {
		e.err = api.err
		return e
	}
	if err := h.bindUpstream(e, api, conn); err != nil {
		e.err = err
		return e
	}
	cred, err := newCredential(api.row, conn)
	if err == nil {
		err = h.bindTokenSource(&cred)
	}
	if err != nil {
		e.err = err
		return e
	}
	e.cred = cred
	if cred.header != "" && cred.header != "Authorization" {
		e.strip = append(e.strip, []byte(cred.header))
	}
	for _, kv := range api.headers {
		e.strip = append(e.strip, kv[0])
	}
	if !h.opts.OpenPerRequest {
		if e.opened, err = h.open(nil, cred.refs); err != nil {
			e.err = err
			var pe *Error
			if errors.As(err, &pe) {
				h.log.Warn("proxy: "+pe.Msg, "connection", conn.ID, "err", pe.Err.Error())
			}
			return e
		}
	}
	if api.policy != nil {
		e.rlKey = api.policy.Key(conn.ID)
	}
	return e
}
