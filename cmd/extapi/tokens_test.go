package main

import (
	"strings"
	"testing"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestTokensCLI(t *testing.T) {
	t.Parallel()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			url := storetest.URL(t, d)
			vars := map[string]string{"EXTAPI_DATABASE_URL": url, "EXTAPI_ENCRYPTION_KEYS": "1:" + key(t)}

			code, out, errs := runCLI(t, vars, "tokens", "create", "--name", "deploy-bot", "--role", "editor", "--sales-channel-id", "sc_1")
			if code != exitOK {
				t.Fatalf("tokens create = %d, %s", code, errs)
			}
			tok := strings.TrimSpace(out)
			if strings.Count(out, "\n") != 1 || !strings.HasPrefix(tok, admin.TokenPrefix) || len(tok) != len(admin.TokenPrefix)+43 {
				t.Fatalf("tokens create printed %q; want the token alone on one line", out)
			}
			if !strings.Contains(errs, "not shown again") || strings.Contains(errs, tok) {
				t.Errorf("tokens create stderr = %q; want a warning and no token", errs)
			}
			s := storetest.Open(t, url)
			row, err := s.TokenByHash(t.Context(), admin.HashToken(tok))
			if err != nil || row.Role != "editor" || row.SalesChannelID != "sc_1" || row.CreatedBy != admin.CLIActor {
				t.Fatalf("stored token = %+v, %v; want editor of sc_1 by cli", row, err)
			}

			for _, c := range []struct {
				args []string
				code int
				want string
			}{
				{[]string{"tokens", "create", "--name", "deploy-bot", "--role", "viewer", "--sales-channel-id", "sc_1"}, exitFail, "not revoked"},
				{[]string{"tokens", "create", "--name", "x", "--role", "root"}, exitUsage, "--role"},
				{[]string{"tokens", "create", "--role", "viewer"}, exitUsage, "--name"},
				{[]string{"tokens", "revoke"}, exitUsage, "exactly one of --id or --name"},
				{[]string{"tokens", "revoke", "--name", "nobody"}, exitFail, "no token named"},
				{[]string{"tokens", "create", "--help"}, exitOK, "cannot be shown again"},
			} {
				code, out, errs := runCLI(t, vars, c.args...)
				if code != c.code || !strings.Contains(out+errs, c.want) {
					t.Errorf("%v = %d %q; want %d mentioning %q", c.args, code, out+errs, c.code, c.want)
				}
			}

			code, out, _ = runCLI(t, vars, "tokens", "list")
			if code != exitOK || !strings.Contains(out, "deploy-bot") || !strings.Contains(out, "sc_1") ||
				strings.Contains(out, tok) || strings.Contains(out, row.Hash) {
				t.Errorf("tokens list = %d %q; want deploy-bot, without token or hash", code, out)
			}
			if code, out, errs := runCLI(t, vars, "tokens", "revoke", "--name", "deploy-bot"); code != exitOK || !strings.Contains(out, row.ID) {
				t.Errorf("tokens revoke = %d %q %q", code, out, errs)
			}
			if code, _, _ := runCLI(t, vars, "tokens", "revoke", "--id", row.ID); code != exitFail {
				t.Errorf("revoking again = %d; want %d", code, exitFail)
			}
			if _, out, _ := runCLI(t, vars, "tokens", "list"); strings.Contains(out, "deploy-bot") {
				t.Errorf("tokens list shows a revoked token: %q", out)
			}
			if _, out, _ := runCLI(t, vars, "tokens", "list", "--all"); !strings.Contains(out, "deploy-bot") {
				t.Errorf("tokens list --all misses the revoked token: %q", out)
			}
			ev, _, err := s.ListAudit(t.Context(), store.AuditFilter{TargetID: row.ID})
			if err != nil || len(ev) != 2 || ev[0].Action != "token.revoke" || ev[1].Action != "token.create" || ev[0].Actor != admin.CLIActor ||
				ev[0].SalesChannelID != "sc_1" {
				t.Errorf("audit of the token = %+v, %v; want create and revoke by cli, tenant sc_1", ev, err)
			}

			// Names are unique per tenant: two tenants may share one, and revoking by that name
			// is refused as ambiguous instead of picking one.
			for _, sc := range []string{"sc_a", "sc_b"} {
				if code, _, errs := runCLI(t, vars, "tokens", "create", "--name", "shared", "--role", "viewer", "--sales-channel-id", sc); code != exitOK {
					t.Fatalf("tokens create shared in %s = %d, %s", sc, code, errs)
				}
			}
			if code, out, errs := runCLI(t, vars, "tokens", "revoke", "--name", "shared"); code != exitFail || !strings.Contains(errs, "revoke by --id") {
				t.Errorf("tokens revoke of an ambiguous name = %d %q %q; want refused, naming --id", code, out, errs)
			}
		})
	}
}
