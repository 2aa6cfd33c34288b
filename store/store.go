// Package store keeps extapi's API definitions, connections and audit trail in PostgreSQL or SQLite.
//
// Secrets in rows are opaque sealed blobs (see Sealed); this package never sees plaintext credentials
// and knows nothing of how they are sealed or of HTTP. Repositories return ErrNotFound and ErrConflict.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/extapi/extapi/migrations"
)

// Sentinel errors of every repository method.
var (
	// ErrNotFound: no live row with that id (or it belongs to another tenant).
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a unique constraint (live slug per environment and tenant) would be violated.
	ErrConflict = errors.New("store: conflict")
	// ErrUnknownScheme: the database URL is neither postgres://… nor sqlite:PATH.
	ErrUnknownScheme = errors.New("store: unknown database URL scheme")
)

// Store is a handle on the database. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	dialect string
	url     string // for the LISTEN connection (PostgreSQL)
	channel string // NOTIFY channel of this schema (PostgreSQL)
	hub     *hub   // in-process change fan-out (SQLite)
	pending *[]Change
}

// Options tune Open. The zero value is fine.
type Options struct {
	// MaxOpenConns caps the pool (PostgreSQL). 0 means 20.
	MaxOpenConns int
}

// Open connects to databaseURL ("postgres://…", "postgresql://…" or "sqlite:PATH") and pings it.
// It does not migrate; call Migrate.
func Open(ctx context.Context, databaseURL string, opts Options) (*Store, error) {
	dialect, dsn, err := ParseURL(databaseURL)
	if err != nil {
		return nil, err
	}
	gcfg := &gorm.Config{
		Logger:                 logger.Discard,
		TranslateError:         true,
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
	}
	var dial gorm.Dialector
	if dialect == migrations.Postgres {
		dial = postgres.Open(dsn)
	} else {
		dial = sqlite.Open(dsn)
	}
	db, err := gorm.Open(dial, gcfg)
	if err != nil {
		return nil, fmt.Errorf("store: open %s database: %w", dialect, err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	if dialect == migrations.SQLite {
		// One writer at a time is what SQLite allows; a single connection also keeps
		// IMMEDIATE transactions from waiting on each other inside one process.
		sqlDB.SetMaxOpenConns(1)
	} else {
		n := opts.MaxOpenConns
		if n == 0 {
			n = 20
		}
		sqlDB.SetMaxOpenConns(n)
		sqlDB.SetMaxIdleConns(n)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pctx); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("store: cannot reach the %s database: %w", dialect, err)
	}
	st := &Store{db: db, dialect: dialect, url: dsn, hub: &hub{}}
	if dialect == migrations.Postgres {
		var schema string
		if err := db.WithContext(pctx).Raw("SELECT current_schema()").Scan(&schema).Error; err != nil {
			sqlDB.Close()
			return nil, fmt.Errorf("store: read current schema: %w", err)
		}
		st.channel = changesChannel(schema)
	}
	return st, nil
}

// ParseURL splits a database URL into its dialect and the driver's DSN.
func ParseURL(databaseURL string) (dialect, dsn string, err error) {
	switch {
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		if _, err := url.Parse(databaseURL); err != nil {
			return "", "", fmt.Errorf("store: malformed PostgreSQL URL: %w", err)
		}
		return migrations.Postgres, databaseURL, nil
	case strings.HasPrefix(databaseURL, "sqlite:"):
		p := strings.TrimPrefix(databaseURL, "sqlite:")
		if p == "" {
			return "", "", errors.New("store: sqlite: URL needs a file path, e.g. sqlite:extapi.db")
		}
		// IMMEDIATE transactions take the write lock up front, so a read-then-write
		// transaction never deadlocks with another writer. (No _time_format: the driver stops
		// reading parameters after it, dropping _txlock. Its default format sorts correctly as
		// long as every time is UTC, which NowFunc and the repositories ensure.)
		q := "_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
		if p != ":memory:" {
			q += "&_pragma=journal_mode(WAL)"
		}
		sep := "?"
		if strings.Contains(p, "?") {
			sep = "&"
		}
		return migrations.SQLite, p + sep + q, nil
	default:
		scheme, _, _ := strings.Cut(databaseURL, ":")
		return "", "", fmt.Errorf("%w %q (want postgres://… or sqlite:PATH)", ErrUnknownScheme, scheme)
	}
}

// Dialect is "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// Gorm exposes the gorm handle for packages that add their own tables.
func (s *Store) Gorm() *gorm.DB { return s.db }

// SQL returns the underlying database/sql pool.
func (s *Store) SQL() *sql.DB {
	d, _ := s.db.DB()
	return d
}

// Migrate applies the embedded migrations for this dialect.
func (s *Store) Migrate(ctx context.Context) (migrations.Result, error) {
	return migrations.Apply(ctx, s.SQL(), s.dialect)
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.SQL().PingContext(ctx) }

// Close closes the pool.
func (s *Store) Close() error { return s.SQL().Close() }

// Tx runs fn in one transaction; the *Store given to fn writes inside it.
// An error from fn (or a panic) rolls everything back.
func (s *Store) Tx(ctx context.Context, fn func(tx *Store) error) error {
	var pending []Change
	err := s.db.WithContext(ctx).Transaction(func(g *gorm.DB) error {
		return fn(&Store{db: g, dialect: s.dialect, url: s.url, channel: s.channel, hub: s.hub, pending: &pending})
	})
	if err == nil {
		// Committed: deliver whatever happens to ctx now (publish never blocks).
		testHookAfterCommit(ctx)
		for _, c := range pending {
			s.hub.publish(c)
		}
	}
	return err
}

// testHookAfterCommit runs in Tx between commit and delivering its changes (tests set it).
var testHookAfterCommit = func(context.Context) {}

// ID prefixes of the row types.
const (
	PrefixAPI        = "eapi_"
	PrefixConnection = "conn_"
	PrefixAudit      = "aud_"
)

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix followed by 128 random bits, base32: unguessable and URL-safe.
func NewID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return prefix + idEncoding.EncodeToString(b[:])
}

func (s *Store) ctx(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// translate maps driver errors to the package sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}
