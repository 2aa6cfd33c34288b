package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/vault"
)

func runMigrate(e env, args []string) int {
	fs := newFlagSet(e, "migrate", "Apply the embedded database migrations to EXTAPI_DATABASE_URL and exit.\n"+
		"Safe to run while other instances start (PostgreSQL advisory lock).")
	if code, done := parse(fs, args); done {
		return code
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return exitConfig
	}
	ctx := context.Background()
	s, err := store.Open(ctx, cfg.DatabaseURL, store.Options{MaxOpenConns: 2})
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi migrate: %v\n", err)
		return exitFail
	}
	defer s.Close()
	res, err := s.Migrate(ctx)
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi migrate: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(e.stdout, "applied %d migration(s) %v; schema version %d\n", len(res.Applied), res.Applied, res.Current)
	return exitOK
}

func runKeysGenerate(e env, args []string) int {
	fs := newFlagSet(e, "keys generate", "Print a new random 32-byte AES-256 key, base64. With --version N, print it as\n"+
		"N:<key>, ready to append to EXTAPI_ENCRYPTION_KEYS.")
	ver := fs.Uint("version", 0, "print the key as VERSION:KEY")
	if code, done := parse(fs, args); done {
		return code
	}
	k, err := vault.GenerateKey()
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi keys generate: %v\n", err)
		return exitFail
	}
	out := base64.StdEncoding.EncodeToString(k)
	if *ver > 0 {
		out = strconv.FormatUint(uint64(*ver), 10) + ":" + out
	}
	fmt.Fprintln(e.stdout, out)
	return exitOK
}

func runKeysRewrap(e env, args []string) int {
	fs := newFlagSet(e, "keys rewrap", "Re-encrypt every stored secret (soft-deleted rows included) with the active key\n"+
		"(EXTAPI_ENCRYPTION_ACTIVE_KEY, or the highest version in EXTAPI_ENCRYPTION_KEYS), in batches.\n"+
		"Idempotent and resumable: run it again after an interruption. Afterwards the older versions can be\n"+
		"removed from EXTAPI_ENCRYPTION_KEYS.")
	batch := fs.Int("batch", 500, "rows per transaction")
	if code, done := parse(fs, args); done {
		return code
	}
	if *batch <= 0 {
		fmt.Fprintln(e.stderr, "extapi keys rewrap: --batch must be positive")
		return exitUsage
	}
	cfg, err := loadConfig(e)
	if err != nil {
		return exitConfig
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return fail(e, log, err)
	}
	defer a.shutdown(ctx)
	st, err := a.store.Rewrap(ctx, a.keyring, *batch)
	fmt.Fprintf(e.stdout, "rows %d, secrets %d, rewrapped %d, rows updated %d (active key version %d)\n",
		st.Rows, st.Secrets, st.Rewrapped, st.Updated, a.keyring.ActiveVersion())
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi keys rewrap: %v\nrun it again to resume; finished batches are kept\n", err)
		return exitFail
	}
	return exitOK
}
