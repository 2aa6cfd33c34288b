package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestImportEnv(t *testing.T) {
	t.Parallel()
	url := storetest.URL(t, storetest.Dialects[0])
	vars := map[string]string{"EXTAPI_DATABASE_URL": url, "EXTAPI_ENCRYPTION_KEYS": "1:" + key(t)}
	secrets := map[string]string{
		"FACEBOOK_APP_ID": "fb-app-id-829174", "FACEBOOK_APP_SECRET": "fb-secret-0a9c8e7d",
		"TWITTER_API_KEY": "tw-key-55aa", "TWITTER_API_SECRET": "tw-secret-66bb",
		"STRIPE_SECRET_KEY": "sk_test_51Hxyz", "TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef",
		"TWILIO_AUTH_TOKEN": "twilio-token-9f8e", "SENDGRID_API_KEY": "SG.abc.def", "MAILGUN_API_KEY": "key-mailgun-1234",
		"MAILGUN_DOMAIN": "mg.example.com", "SLACK_BOT_TOKEN": "xoxb-1-2-3", "AWS_ACCESS_KEY_ID": "AKIAIMPORTTEST",
		"AWS_SECRET_ACCESS_KEY": "aws-secret-7777", "AWS_REGION": "eu-west-1",
		"AUTH0_DOMAIN": "acme.eu.auth0.com", "AUTH0_CLIENT_ID": "auth0-client-4242", "AUTH0_CLIENT_SECRET": "auth0-secret-1717",
	}
	var b strings.Builder
	b.WriteString("# legacy env\n\n")
	for k, v := range secrets {
		b.WriteString("export " + k + "=\"" + v + "\"\n")
	}
	b.WriteString("PAYPAL_CLIENT_ID=only-half\nSOME_OTHER_TOKEN=zzz-unknown-999\n")
	file := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	noSecret := func(out string) {
		t.Helper()
		for k, v := range secrets {
			if strings.Contains(out, v) && k != "MAILGUN_DOMAIN" && k != "AWS_REGION" && k != "AUTH0_DOMAIN" {
				t.Errorf("output shows the value of %s: %q", k, out)
			}
		}
		if strings.Contains(out, "zzz-unknown-999") || strings.Contains(out, "only-half") {
			t.Errorf("output shows an unrecognised value: %q", out)
		}
	}
	s := storetest.Open(t, url)
	count := func() int64 {
		_, n, err := s.ListAPIs(t.Context(), store.APIFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	code, out, errs := runCLI(t, vars, "import", "env", "--env-file", file, "--dry-run")
	if code != exitOK || !strings.Contains(out, "would create") || !strings.Contains(errs, "nothing was written") {
		t.Fatalf("dry run = %d %q %q", code, out, errs)
	}
	noSecret(out + errs)
	if n := count(); n != 0 {
		t.Fatalf("APIs after --dry-run = %d; want 0", n)
	}
	// Nothing else was written either: no key check value recorded, no audit event.
	if fps, err := s.KeyFingerprints(t.Context()); err != nil || len(fps) != 0 {
		t.Errorf("key check values after --dry-run = %v, %v; want none", fps, err)
	}
	if ev, _, err := s.ListAudit(t.Context(), store.AuditFilter{Limit: 10}); err != nil || len(ev) != 0 {
		t.Errorf("audit events after --dry-run = %d, %v; want none", len(ev), err)
	}

	code, out, errs = runCLI(t, vars, "import", "env", "--env-file", file)
	if code != exitOK {
		t.Fatalf("import = %d %q %q", code, out, errs)
	}
	noSecret(out + errs)
	want := []string{"facebook-graph", "x-twitter", "stripe", "twilio", "sendgrid", "mailgun", "slack", "amazon-s3", "amazon-ses", "auth0"}
	for _, slug := range want {
		if !strings.Contains(out, "created") || !lineHas(out, "created", slug) {
			t.Errorf("import output lacks a created row for %s:\n%s", slug, out)
		}
	}
	if !lineHas(out, "incomplete", "paypal") || !strings.Contains(out, "PAYPAL_CLIENT_SECRET") {
		t.Errorf("import output lacks the incomplete paypal row:\n%s", out)
	}
	if !lineHas(out, "not recognised", "SOME_OTHER_TOKEN") {
		t.Errorf("import output lacks the unrecognised variable:\n%s", out)
	}
	if n := count(); n != int64(len(want)) {
		t.Fatalf("APIs after import = %d; want %d", n, len(want))
	}
	// Account-level credentials got a default connection, sealed; app-level ones did not.
	list, _, _ := s.ListAPIs(t.Context(), store.APIFilter{Slug: "twilio", Limit: 10})
	if len(list) != 1 {
		t.Fatalf("twilio APIs = %d; import output:\n%s", len(list), out)
	}
	conns, _, _ := s.ListConnections(t.Context(), store.ConnectionFilter{ExternalAPIID: list[0].ID, Limit: 10})
	if len(conns) != 1 || !conns[0].Credentials.Username.IsSet() || !conns[0].Credentials.Password.IsSet() ||
		conns[0].ProviderData["account_sid"] != secrets["TWILIO_ACCOUNT_SID"] {
		t.Errorf("twilio connections = %+v; want one with sealed username/password and provider_data.account_sid", conns)
	}
	if strings.Contains(string(conns[0].Credentials.Password), secrets["TWILIO_AUTH_TOKEN"]) {
		t.Error("the auth token is stored in plaintext")
	}
	fb, _, _ := s.ListAPIs(t.Context(), store.APIFilter{Slug: "facebook-graph", Limit: 10})
	if c, _, _ := s.ListConnections(t.Context(), store.ConnectionFilter{ExternalAPIID: fb[0].ID, Limit: 10}); len(c) != 0 ||
		!fb[0].APIConfig.OAuth2.ClientSecret.IsSet() {
		t.Errorf("facebook: connections %d, client secret set %v; want 0 and true", len(c), fb[0].APIConfig.OAuth2.ClientSecret.IsSet())
	}
	if s3, _, _ := s.ListAPIs(t.Context(), store.APIFilter{Slug: "amazon-s3", Limit: 10}); s3[0].APIConfig.AWSSigV4.Region != "eu-west-1" {
		t.Errorf("amazon-s3 region = %q; want eu-west-1", s3[0].APIConfig.AWSSigV4.Region)
	}
	// Auth0: the tenant domain goes into the base URL, the token URL and the token request's audience.
	if a0, _, _ := s.ListAPIs(t.Context(), store.APIFilter{Slug: "auth0", Limit: 10}); len(a0) != 1 ||
		a0[0].APIConfig.BaseURL != "https://acme.eu.auth0.com/api/v2" ||
		a0[0].APIConfig.OAuth2.TokenURL != "https://acme.eu.auth0.com/oauth/token" ||
		a0[0].APIConfig.OAuth2.TokenParams["audience"] != "https://acme.eu.auth0.com/api/v2/" {
		t.Errorf("auth0 APIs = %+v; want the tenant's base URL, token URL and audience", a0)
	}
	ev, _, err := s.ListAudit(t.Context(), store.AuditFilter{TargetID: list[0].ID, Limit: 10})
	if err != nil || len(ev) != 1 || ev[0].Actor != admin.ImportActor || ev[0].Action != "external_api.create" {
		t.Errorf("audit of the twilio API = %+v, %v; want one create by %s", ev, err, admin.ImportActor)
	}

	code, out, _ = runCLI(t, vars, "import", "env", "--env-file", file)
	if code != exitOK || lineHas(out, "created", "") || !lineHas(out, "skipped", "stripe") {
		t.Errorf("second import = %d:\n%s\nwant every provider skipped", code, out)
	}
	if n := count(); n != int64(len(want)) {
		t.Errorf("APIs after a second import = %d; want %d", n, len(want))
	}
	// Another environment is another set of APIs; the process environment works too.
	env := map[string]string{"STRIPE_API_KEY": "sk_live_proc"}
	for k, v := range vars {
		env[k] = v
	}
	code, out, _ = runCLI(t, env, "import", "env", "--environment", "staging")
	if code != exitOK || !lineHas(out, "created", "stripe") || strings.Contains(out, "sk_live_proc") {
		t.Errorf("import from the process environment = %d:\n%s", code, out)
	}
}

// lineHas reports whether a line starts with result and mentions what.
func lineHas(out, result, what string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, result) && strings.Contains(l, what) {
			return true
		}
	}
	return false
}

// TestImportEnvDryRunCreatesNothing: a dry run against a SQLite file that does not exist (dev
// mode) reports what it would create and leaves no database file and no dev-mode key behind.
func TestImportEnvDryRunCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	db, dev := filepath.Join(dir, "x.db"), filepath.Join(dir, "dev")
	file := filepath.Join(dir, ".env")
	if err := os.WriteFile(file, []byte("STRIPE_SECRET_KEY=sk_test_dryrun\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, map[string]string{"EXTAPI_DATABASE_URL": "sqlite:" + db, "EXTAPI_DEV_DIR": dev},
		"import", "env", "--env-file", file, "--dry-run")
	if code != exitOK || !lineHas(out, "would create", "stripe") || strings.Contains(out+errs, "sk_test_dryrun") {
		t.Fatalf("dry run = %d %q %q; want stripe would be created, no value shown", code, out, errs)
	}
	for _, p := range []string{db, dev} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a dry run (%v); want nothing written", p, err)
		}
	}
}

// TestImportEnvDryRunOnUnmigratedPostgres: a dry run against a PostgreSQL schema that was never
// migrated reports what it would create and creates no table.
func TestImportEnvDryRunOnUnmigratedPostgres(t *testing.T) {
	url := storetest.PostgresURL(t) // a fresh, empty schema
	file := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(file, []byte("STRIPE_SECRET_KEY=sk_test_dryrun\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, map[string]string{"EXTAPI_DATABASE_URL": url, "EXTAPI_ENCRYPTION_KEYS": "1:" + key(t)},
		"import", "env", "--env-file", file, "--dry-run")
	if code != exitOK || !lineHas(out, "would create", "stripe") {
		t.Fatalf("dry run = %d %q %q; want stripe would be created", code, out, errs)
	}
	s, err := store.Open(t.Context(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.SQL().QueryRowContext(t.Context(),
		`SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil || n != 0 {
		t.Errorf("tables after a dry run = %d, %v; want none (nothing migrated)", n, err)
	}
}
