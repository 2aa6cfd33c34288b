package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/store"
)

const tokensDoc = "Tokens authenticate the management API (Authorization: Bearer <token>). Roles: viewer reads,\n" +
	"editor also writes APIs and connections, admin also manages tokens. A token with --sales-channel-id\n" +
	"and/or --partner-id sees and changes only rows of that tenant. Only a SHA-256 hash is stored.\n" +
	"Changes are written to the audit trail with actor \"" + admin.CLIActor + "\"."

func runTokensCreate(e env, args []string) int {
	fs := newFlagSet(e, "tokens create", "Create a management API token and print it once on stdout (it cannot be shown again).\n\n"+tokensDoc)
	var spec admin.TokenSpec
	fs.StringVar(&spec.Name, "name", "", "unique name of the token; the audit trail's actor (required)")
	fs.StringVar(&spec.Role, "role", "", "viewer, editor or admin (required)")
	fs.StringVar(&spec.SalesChannelID, "sales-channel-id", "", "scope the token to this sales channel")
	fs.StringVar(&spec.PartnerID, "partner-id", "", "scope the token to this partner")
	if code, done := parse(fs, args); done {
		return code
	}
	if err := spec.Validate(); err != nil {
		printProblems(e, "tokens create", err)
		return exitUsage
	}
	return withStore(e, "tokens create", func(ctx context.Context, s *store.Store) error {
		t, tok, err := admin.CreateToken(ctx, s, admin.CLIActor, spec)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, tok)
		scope := "every tenant"
		if t.SalesChannelID != "" || t.PartnerID != "" {
			scope = fmt.Sprintf("sales channel %q, partner %q", t.SalesChannelID, t.PartnerID)
		}
		fmt.Fprintf(e.stderr, "created token %s (name %q, role %s, %s); store it now: it is not shown again\n",
			t.ID, t.Name, t.Role, scope)
		return nil
	})
}

func runTokensList(e env, args []string) int {
	fs := newFlagSet(e, "tokens list", "List management API tokens (never the tokens themselves).\n\n"+tokensDoc)
	all := fs.Bool("all", false, "include revoked tokens")
	if code, done := parse(fs, args); done {
		return code
	}
	return withStore(e, "tokens list", func(ctx context.Context, s *store.Store) error {
		list, err := s.ListTokens(ctx, store.TokenFilter{IncludeRevoked: *all})
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSALES_CHANNEL\tPARTNER\tCREATED\tLAST_USED\tREVOKED")
		for _, t := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, dash(t.SalesChannelID), dash(t.PartnerID),
				t.CreatedAt.UTC().Format(time.RFC3339), timeOrDash(t.LastUsedAt), timeOrDash(t.RevokedAt))
		}
		return tw.Flush()
	})
}

func runTokensRevoke(e env, args []string) int {
	fs := newFlagSet(e, "tokens revoke", "Revoke a management API token by --id or --name. It stops working at once on this\n"+
		"process and within "+admin.DefaultTokenCacheTTL.String()+" on running instances (their token cache).\n\n"+tokensDoc)
	id := fs.String("id", "", "id of the token (tok_…)")
	name := fs.String("name", "", "name of the token")
	if code, done := parse(fs, args); done {
		return code
	}
	if (*id == "") == (*name == "") {
		fmt.Fprintln(e.stderr, "extapi tokens revoke: give exactly one of --id or --name")
		return exitUsage
	}
	return withStore(e, "tokens revoke", func(ctx context.Context, s *store.Store) error {
		tid := *id
		if *name != "" {
			list, err := s.ListTokens(ctx, store.TokenFilter{Name: *name})
			if err != nil {
				return err
			}
			switch len(list) {
			case 0:
				return fmt.Errorf("no token named %q that is not revoked", *name)
			case 1:
				tid = list[0].ID
			default: // names are unique per tenant only
				return fmt.Errorf("%d tokens are named %q (in different tenants): revoke by --id (see extapi tokens list)", len(list), *name)
			}
		}
		t, err := admin.RevokeToken(ctx, s, admin.CLIActor, tid, store.Tenant{}, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked token %s (name %q)\n", t.ID, t.Name)
		return nil
	})
}

// withStore loads the configuration, opens (and, unless disabled, migrates) the database, and
// runs fn. Errors are printed as "extapi NAME: …".
func withStore(e env, name string, fn func(ctx context.Context, s *store.Store) error) int {
	cfg, err := loadConfig(e)
	if err != nil {
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: 2})
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi %s: %v\n", name, err)
		return exitFail
	}
	defer s.Close()
	if cfg.AutoMigrate {
		if _, err := s.Migrate(ctx); err != nil {
			fmt.Fprintf(e.stderr, "extapi %s: %v\n", name, err)
			return exitFail
		}
	}
	if err := fn(ctx, s); err != nil {
		var verr *admin.ValidationError
		if errors.As(err, &verr) {
			printProblems(e, name, err)
			return exitUsage
		}
		fmt.Fprintf(e.stderr, "extapi %s: %v\n", name, err)
		return exitFail
	}
	return exitOK
}

func printProblems(e env, name string, err error) {
	var verr *admin.ValidationError
	if !errors.As(err, &verr) {
		fmt.Fprintf(e.stderr, "extapi %s: %v\n", name, err)
		return
	}
	fmt.Fprintf(e.stderr, "extapi %s:\n", name)
	for _, d := range verr.Details {
		fmt.Fprintf(e.stderr, "  - --%s: %s\n", strings.ReplaceAll(d.Path, "_", "-"), d.Message)
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
