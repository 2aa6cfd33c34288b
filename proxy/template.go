package proxy

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/extapi/extapi/providers"
	"github.com/extapi/extapi/store"
)

// Templated base URLs and headers ({{api_version}}, {{region}}, {{provider_data.KEY}}; see
// package providers for the escape rules). Placeholders that come from the API alone are
// resolved when the API is loaded; those that use the connection's provider_data when the
// connection is loaded, so the route cache holds the finished base URL, pool and headers and
// the request path does no templating.

// headerTemplate is a configured header whose value uses provider_data.
type headerTemplate struct {
	name []byte // canonical
	tmpl *providers.HeaderTemplate
}

func templateVars(a *store.ExternalAPI, conn *store.Connection) providers.Vars {
	v := providers.Vars{APIVersion: a.APIConfig.APIVersion}
	if s := a.APIConfig.AWSSigV4; s != nil {
		v.Region = s.Region
	}
	if conn != nil {
		v.ProviderData = conn.ProviderData
	}
	return v
}

// prepareTemplates parses base_url and the headers, resolving what the API alone decides:
// e.baseRaw is the base URL (still a template when e.baseTmpl is set), e.headers the headers
// known now and e.headerTmpls those of each connection.
func (h *Handler) prepareTemplates(e *apiEntry, a *store.ExternalAPI) error {
	cfg := &a.APIConfig
	vars := templateVars(a, nil)
	e.baseRaw = cfg.BaseURL
	if providers.HasPlaceholders(cfg.BaseURL) {
		t, err := providers.ParseURL(cfg.BaseURL)
		if err != nil {
			return errorf(CodeAPIConfigInvalid, "the API's base_url template is unusable", err)
		}
		if t.Dynamic() {
			e.baseTmpl = t
		} else if e.baseRaw, err = t.Resolve(vars); err != nil {
			return errorf(CodeAPIConfigInvalid, "the API's base_url template is unusable", err)
		}
	}
	for k, v := range cfg.Headers {
		c := canonicalHeader(k)
		if !validHeaderName(k) || reservedHeader(c) || strings.ContainsAny(v, "\r\n\x00") {
			return errorf(CodeAPIConfigInvalid, "the API's headers are unusable", fmt.Errorf("header %q", k))
		}
		if providers.HasPlaceholders(v) {
			t, err := providers.ParseHeader(v)
			if err != nil {
				return errorf(CodeAPIConfigInvalid, "the API's headers are unusable", fmt.Errorf("header %q: %w", k, err))
			}
			if t.Dynamic() {
				e.headerTmpls = append(e.headerTmpls, headerTemplate{name: []byte(c), tmpl: t})
				continue
			}
			if v, err = t.Resolve(vars); err != nil {
				return errorf(CodeAPIConfigInvalid, "the API's headers are unusable", fmt.Errorf("header %q: %w", k, err))
			}
		}
		e.headers = append(e.headers, [2][]byte{[]byte(c), []byte(v)})
	}
	sortHeaders(e.headers)
	return nil
}

func sortHeaders(hs [][2][]byte) {
	slices.SortFunc(hs, func(x, y [2][]byte) int { return strings.Compare(string(x[0]), string(y[0])) })
}

// upstream parses a (resolved) base URL and gives it its connection pool, with the API's TLS
// settings.
func (h *Handler) upstream(a *store.ExternalAPI, raw string) (baseURL, *fasthttp.HostClient, error) {
	cfg := &a.APIConfig
	base, err := parseBaseURL(raw)
	if err != nil {
		return base, nil, errorf(CodeAPIConfigInvalid, "the API's base_url is unusable", err)
	}
	var tc *tls.Config
	var tlsKey string
	switch {
	case base.tls:
		var key []byte
		if t := cfg.TLS; t != nil && t.ClientKey.IsSet() {
			key, err = h.opts.Opener.Open(t.ClientKey, a.AAD("api_config.tls.client_key"))
			if err != nil {
				return base, nil, errorf(CodeSecretUnavailable, "the API's TLS client key could not be opened",
					fmt.Errorf("api_config.tls.client_key: %w", err))
			}
			defer clear(key)
		}
		if tc, tlsKey, err = tlsConfig(&base, cfg.TLS, key); err != nil {
			return base, nil, errorf(CodeAPIConfigInvalid, "the API's TLS settings are unusable", err)
		}
	case cfg.TLS != nil && (cfg.TLS.CABundle != "" || cfg.TLS.ClientCert != "" || cfg.TLS.ClientKey.IsSet()):
		return base, nil, errorf(CodeAPIConfigInvalid, "the API has TLS settings but an http:// base_url", nil)
	}
	return base, h.client(&base, tc, tlsKey), nil
}

// bindUpstream gives a route its base URL, pool and headers: the API's, or resolved from the
// connection's provider_data.
func (h *Handler) bindUpstream(e *connEntry, api *apiEntry, conn *store.Connection) error {
	e.base, e.client, e.headers = &api.base, api.client, api.headers
	if api.baseTmpl == nil && len(api.headerTmpls) == 0 {
		return nil
	}
	vars := templateVars(api.row, conn)
	if api.baseTmpl != nil {
		raw, err := api.baseTmpl.Resolve(vars)
		if err != nil {
			return errorf(CodeTemplateInvalid, "the API's base_url cannot be resolved for this connection", err)
		}
		b, c, err := h.upstream(api.row, raw)
		if err != nil {
			return err
		}
		e.base, e.client = &b, c
	}
	if len(api.headerTmpls) > 0 {
		hs := slices.Clone(api.headers)
		for _, t := range api.headerTmpls {
			v, err := t.tmpl.Resolve(vars)
			if err != nil {
				return errorf(CodeTemplateInvalid, "a header of the API cannot be resolved for this connection",
					fmt.Errorf("header %s: %w", t.name, err))
			}
			hs = append(hs, [2][]byte{t.name, []byte(v)})
			e.strip = append(e.strip, t.name)
		}
		sortHeaders(hs)
		e.headers = hs
	}
	return nil
}
