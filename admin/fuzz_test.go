package admin_test

import (
	"encoding/json"
	"testing"

	"github.com/extapi/extapi/store/storetest"
)

// fuzzEnvs returns one admin server per database; fuzzing does not record the bodies.
func fuzzEnvs(f *testing.F) []*env {
	var envs []*env
	for _, d := range storetest.Dialects {
		e := newEnv(f, storetest.Open(f, storetest.URL(f, d)))
		e.quiet = true
		envs = append(envs, e)
	}
	return envs
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func addSeeds(f *testing.F) {
	f.Add(mustJSON(stripeBody("stripe", "sk_test_seed")))
	f.Add(mustJSON(oauthBody("facebook")))
	f.Add(mustJSON(map[string]any{"connection_name": "c", "credentials": map[string]any{"access_token": "a", "expires_at": "2030-01-01T00:00:00Z",
		"additional_data": map[string]any{"x": []any{1, "y", nil}}}, "provider_data": map[string]any{"page_id": "1"}}))
	f.Add([]byte(`{"api_config":{"oauth2":null,"headers":{"X-A":null}},"name":"\u0000"}`))
	f.Add([]byte(`{"api_config":{"rate_limit":{"requests_per_second":1e400}},"slug":"-"}`))
	f.Add([]byte(`{"provider_data":{"a":{"b":[[[[{}]]]]}},"credentials":null}`))
	f.Add([]byte(`{"name":"x"`))
	f.Add([]byte(`[]`))
}

// no5xx fails when the server answers a request body with a 5xx (a panic is a 500 too).
func no5xx(t *testing.T, e *env, method, path string, body []byte) {
	r := e.with(t).do(method, path, e.boot, body)
	if r.status >= 500 {
		t.Fatalf("%s %s on %s = %d %s", method, path, e.st.Dialect(), r.status, r.raw)
	}
	if r.status >= 400 && r.str("error.code") == "" {
		t.Fatalf("%s %s = %d without the error shape: %s", method, path, r.status, r.raw)
	}
}

func FuzzCreateAPI(f *testing.F) {
	addSeeds(f)
	envs := fuzzEnvs(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, e := range envs {
			no5xx(t, e, "POST", "/admin/external-apis", body)
		}
	})
}

func FuzzPatchAPI(f *testing.F) {
	addSeeds(f)
	envs := fuzzEnvs(f)
	ids := make([]string, len(envs))
	for i, e := range envs {
		ids[i] = e.createAPI(oauthBody("patched"))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for i, e := range envs {
			no5xx(t, e, "PATCH", "/admin/external-apis/"+ids[i], body)
		}
	})
}

func FuzzConnection(f *testing.F) {
	addSeeds(f)
	envs := fuzzEnvs(f)
	apis, conns := make([]string, len(envs)), make([]string, len(envs))
	for i, e := range envs {
		apis[i] = e.createAPI(oauthBody("fuzzed"))
		conns[i] = e.createConn(apis[i], map[string]any{"connection_name": "c"})
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for i, e := range envs {
			no5xx(t, e, "POST", "/admin/external-apis/"+apis[i]+"/connections", body)
			no5xx(t, e, "PATCH", "/admin/connections/"+conns[i], body)
		}
	})
}
