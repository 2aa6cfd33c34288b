// Package migrations holds extapi's versioned SQL schema, one set per database dialect,
// and applies it exactly once per version, safely when several instances start at once.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Dialects with a migration set.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// ErrUnknownDialect is returned for a dialect with no migration set.
var ErrUnknownDialect = errors.New("migrations: unknown dialect")

// ErrNewerSchema is returned when the database records a version this binary does not know:
// a newer extapi migrated it, and this one must not run against it.
var ErrNewerSchema = errors.New("migrations: database schema is newer than this binary")

// Migration is one versioned SQL file, named NNNN_description.sql.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// List returns the migrations of a dialect in version order.
func List(dialect string) ([]Migration, error) {
	if dialect != Postgres && dialect != SQLite {
		return nil, fmt.Errorf("%w %q", ErrUnknownDialect, dialect)
	}
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: %s/%s: file name must be NNNN_description.sql", dialect, name)
		}
		body, err := fs.ReadFile(files, path.Join(dialect, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: rest, SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("migrations: %s: version %d appears twice", dialect, out[i].Version)
		}
	}
	return out, nil
}

// Result reports what Apply did.
type Result struct {
	Applied []int // versions applied by this call
	Current int   // schema version after the call
}

// Apply brings the database up to the newest version. On PostgreSQL it holds a session-level
// advisory lock (keyed by the current schema) for the whole run, so concurrent callers wait and then
// find nothing left to do. On SQLite the connection must open transactions IMMEDIATE (store does)
// so the version check and the change are one write transaction. Each migration runs in its own
// transaction together with its schema_migrations row.
func Apply(ctx context.Context, db *sql.DB, dialect string) (Result, error) {
	ms, err := List(dialect)
	if err != nil {
		return Result{}, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("migrations: connect: %w", err)
	}
	defer conn.Close()

	if dialect == Postgres {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('extapi.migrations.' || current_schema()))`); err != nil {
			return Result{}, fmt.Errorf("migrations: advisory lock: %w", err)
		}
		defer func() {
			// A fresh context: the caller's may be done, and a held lock would block others until
			// this connection closes (which it does right after, so this is belt and braces).
			uctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _ = conn.ExecContext(uctx, `SELECT pg_advisory_unlock(hashtext('extapi.migrations.' || current_schema()))`)
		}()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return Result{}, fmt.Errorf("migrations: create schema_migrations: %w", err)
	}

	// Refuse a newer schema before changing anything: this binary's migrations were not written
	// for it.
	latest := ms[len(ms)-1].Version
	cur, err := currentVersion(ctx, conn)
	if err != nil {
		return Result{}, err
	}
	if cur > latest {
		return Result{Current: cur}, newerSchema(cur, latest)
	}

	res := Result{Current: cur}
	for _, m := range ms {
		applied, err := applyOne(ctx, conn, dialect, m)
		if err != nil {
			return res, err
		}
		if applied {
			res.Applied = append(res.Applied, m.Version)
		}
	}
	if cur, err = currentVersion(ctx, conn); err != nil {
		return res, err
	}
	res.Current = cur
	if cur > latest {
		// A newer binary migrated the database meanwhile (SQLite, which has no lock around the run).
		return res, newerSchema(cur, latest)
	}
	return res, nil
}

func newerSchema(cur, latest int) error {
	return fmt.Errorf("%w: database at version %d, binary knows up to %d", ErrNewerSchema, cur, latest)
}

func applyOne(ctx context.Context, conn *sql.Conn, dialect string, m Migration) (bool, error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrations: begin %04d: %w", m.Version, err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit this is a no-op

	var n int
	q := `SELECT COUNT(*) FROM schema_migrations WHERE version = ` + placeholder(dialect, 1)
	if err := tx.QueryRowContext(ctx, q, m.Version).Scan(&n); err != nil {
		return false, fmt.Errorf("migrations: read version %04d: %w", m.Version, err)
	}
	if n > 0 {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return false, fmt.Errorf("migrations: apply %04d_%s: %w", m.Version, m.Name, err)
	}
	ins := `INSERT INTO schema_migrations (version, name, applied_at) VALUES (` +
		placeholder(dialect, 1) + `, ` + placeholder(dialect, 2) + `, ` + placeholder(dialect, 3) + `)`
	if _, err := tx.ExecContext(ctx, ins, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return false, fmt.Errorf("migrations: record %04d: %w", m.Version, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrations: commit %04d: %w", m.Version, err)
	}
	return true, nil
}

// Version returns the newest applied version (0 for an empty database).
func Version(ctx context.Context, db *sql.DB) (int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return currentVersion(ctx, conn)
}

func currentVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var v sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("migrations: read schema version: %w", err)
	}
	return int(v.Int64), nil
}

func placeholder(dialect string, n int) string {
	if dialect == Postgres {
		return "$" + strconv.Itoa(n)
	}
	return "?"
}
