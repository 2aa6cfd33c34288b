package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/extapi/extapi/admin"
	"github.com/extapi/extapi/config"
	"github.com/extapi/extapi/migrations"
	"github.com/extapi/extapi/providers"
	"github.com/extapi/extapi/store"
)

// runImportEnv creates API configurations from the provider variables of an env file (or of
// the process environment), through the admin create path: same validation, sealing and audit
// trail (actor import-env). Only names and ids are printed, never a value.
func runImportEnv(e env, args []string) int {
	fs := newFlagSet(e, "import env", "Create external APIs (and a default connection where the credential is account-level)\n"+
		"from provider environment variables such as STRIPE_SECRET_KEY or TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN,\n"+
		"using the provider templates. An API whose slug already exists in the environment is skipped, so\n"+
		"running it again creates nothing new. Values are sealed and never printed.")
	file := fs.String("env-file", "", "read KEY=VALUE lines from this file instead of the process environment")
	dry := fs.Bool("dry-run", false, "print what would be created; write nothing")
	environment := fs.String("environment", "production", "environment of the created APIs: production, staging or development")
	if code, done := parse(fs, args); done {
		return code
	}
	if !slices.Contains(store.Environments, *environment) {
		fmt.Fprintf(e.stderr, "extapi import env: --environment must be one of %s\n", strings.Join(store.Environments, ", "))
		return exitUsage
	}
	vars, fromFile, err := importVars(e, *file)
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi import env: %v\n", err)
		return exitUsage
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	var a *app
	if *dry {
		// Only reads: no migration, no key check values recorded, no dev-mode files made.
		a, err = openReadOnly(ctx, cfg, log)
	} else {
		a, err = newApp(ctx, cfg, log)
	}
	if err != nil {
		return fail(e, log, err)
	}
	defer a.shutdown(ctx)

	matches, partial, unused := providers.Recognize(vars)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESULT\tTEMPLATE\tVARIABLES\tDETAIL")
	failed := false
	for i := range matches {
		m := &matches[i]
		result, detail := importOne(ctx, a, m, *environment, *dry)
		if result == "failed" {
			failed = true
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", result, m.Template.Slug, strings.Join(m.Used, ","), detail)
	}
	for _, p := range partial {
		fmt.Fprintf(tw, "incomplete\t%s\t%s\tmissing %s\n", p.Template.Slug, strings.Join(p.Used, ","), strings.Join(p.Missing, ", "))
	}
	for _, n := range unused {
		if fromFile || providers.LooksLikeCredential(n) {
			fmt.Fprintf(tw, "not recognised\t-\t%s\t-\n", n)
		}
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	if *dry {
		fmt.Fprintln(e.stderr, "dry run: nothing was written")
	}
	if failed {
		return exitFail
	}
	return exitOK
}

// importOne creates one recognised provider unless its slug exists in the environment.
func importOne(ctx context.Context, a *app, m *providers.Match, environment string, dry bool) (result, detail string) {
	t := m.Template
	if a.store != nil { // nil: a dry run on a database that does not exist yet holds no API
		_, n, err := a.store.ListAPIs(ctx, store.APIFilter{Slug: t.Slug, Environment: environment, Limit: 1})
		if err != nil {
			return "failed", "could not read the existing APIs"
		}
		if n > 0 {
			return "skipped", "already present in " + environment
		}
	}
	api := map[string]any{"template": t.Slug, "environment": environment}
	var conn map[string]any
	if m.HasConnection() {
		conn = map[string]any{"connection_name": t.Name + " (imported)"}
	}
	for path, v := range m.Sets {
		setPath(api, conn, path, v)
	}
	for path, name := range m.Files {
		b, err := os.ReadFile(name)
		if err != nil {
			return "failed", "a file named by a variable cannot be read"
		}
		setPath(api, conn, path, string(b))
	}
	if dry {
		if conn != nil {
			return "would create", "API and default connection"
		}
		return "would create", "API"
	}
	created, c, err := admin.CreateAPI(ctx, a.store, a.keyring, admin.ImportActor, api, conn)
	if err != nil {
		var verr *admin.ValidationError
		if errors.As(err, &verr) {
			var ds []string
			for _, d := range verr.Details {
				ds = append(ds, d.Path+": "+d.Message) // messages never quote a value
			}
			return "failed", strings.Join(ds, "; ")
		}
		return "failed", "could not be created (see the log)"
	}
	detail = "api " + created.ID
	if c != nil {
		detail += ", connection " + c.ID
	}
	return "created", detail
}

// setPath puts v at a template env path: "api.a.b" into api, "connection.a.b" into conn.
func setPath(api, conn map[string]any, path, v string) {
	root, rest, _ := strings.Cut(path, ".")
	m := api
	if root == "connection" {
		m = conn
	}
	if m == nil {
		return
	}
	keys := strings.Split(rest, ".")
	for _, k := range keys[:len(keys)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	m[keys[len(keys)-1]] = v
}

// importVars reads the variables: KEY=VALUE lines of an env file (comments, blank lines,
// "export " and quotes allowed), or every variable a template names from the process
// environment. fromFile says which.
func importVars(e env, file string) (map[string]string, bool, error) {
	vars := map[string]string{}
	if file == "" {
		for _, t := range providers.All() {
			if t.Env == nil {
				continue
			}
			for _, v := range t.Env.Vars {
				for _, n := range v.Names {
					if x, ok := e.lookupEnv(n); ok {
						vars[n] = x
					}
				}
			}
		}
		return vars, false, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, true, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		s = strings.TrimPrefix(s, "export ")
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			// The line is not quoted: it may be a secret.
			return nil, true, fmt.Errorf("%s: line %d is not KEY=VALUE", file, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		vars[k] = v
	}
	return vars, true, sc.Err()
}

// openReadOnly is newApp for a dry run: the store is opened to read the existing APIs, nothing
// else. A SQLite file that does not exist is not created (no API exists there); a database
// whose schema was never migrated holds no API either.
func openReadOnly(ctx context.Context, cfg *config.Config, log *slog.Logger) (*app, error) {
	a := &app{cfg: cfg, log: log}
	if p := cfg.SQLitePath(); p != "" {
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return a, nil
		}
	}
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{})
	if err != nil {
		return nil, err
	}
	v, err := migrations.Version(ctx, s.SQL())
	if err != nil && !missingTable(err) {
		s.Close()
		return nil, fmt.Errorf("read the schema version: %w", err)
	}
	if v == 0 { // never migrated (no schema_migrations table, or an empty one)
		s.Close()
		return a, nil
	}
	a.store = s
	return a, nil
}

// missingTable reports a query that failed because its table does not exist (a database never
// migrated): PostgreSQL's undefined_table, SQLite's "no such table".
func missingTable(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "42P01"
	}
	return strings.Contains(err.Error(), "no such table")
}
