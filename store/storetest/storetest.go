// Package storetest gives tests a fresh, migrated database on the real servers: a PostgreSQL
// schema of their own (so tests run in parallel) or an SQLite file. It never skips: when a server
// is unreachable the test fails with how to start it.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
)

// DefaultPostgresURL is used when EXTAPI_TEST_DATABASE_URL is not set.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DefaultRedisURL is used when EXTAPI_TEST_REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// PostgresBaseURL is the server tests use.
func PostgresBaseURL() string {
	if u := os.Getenv("EXTAPI_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// RedisURL is the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv("EXTAPI_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// HowToStartPostgres is printed when PostgreSQL cannot be reached.
const HowToStartPostgres = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start " +
	"(or set EXTAPI_TEST_DATABASE_URL); bash .ci/run does this for you"

// HowToStartRedis is printed when Redis cannot be reached.
const HowToStartRedis = "start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no " +
	"(or set EXTAPI_TEST_REDIS_URL); bash .ci/run does this for you"

// PostgresURL creates an empty schema of the test's own and returns a database URL whose
// search_path is that schema. The schema is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := PostgresBaseURL()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, base, store.Options{MaxOpenConns: 2})
	if err != nil {
		t.Fatalf("PostgreSQL at %s is not reachable: %v\n%s", base, err, HowToStartPostgres)
	}
	defer admin.Close()
	schema := "t_" + randomHex(8)
	if err := admin.Gorm().WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		a, err := store.Open(ctx, base, store.Options{MaxOpenConns: 1})
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer a.Close()
		if err := a.Gorm().WithContext(ctx).Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("EXTAPI_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// SQLiteURL returns a database URL of a fresh SQLite file in the test's temp dir.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "extapi.db")
}

// Open opens and migrates a store at databaseURL, closed when the test ends.
func Open(t testing.TB, databaseURL string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := store.Open(ctx, databaseURL, store.Options{MaxOpenConns: 5})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

// Dialects are the databases every store test runs against.
var Dialects = []string{"postgres", "sqlite"}

// URL returns a fresh database URL of the dialect.
func URL(t testing.TB, dialect string) string {
	t.Helper()
	if dialect == "postgres" {
		return PostgresURL(t)
	}
	return SQLiteURL(t)
}

// Each runs fn as a subtest against a fresh, migrated store of every dialect.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, Open(t, URL(t, d)))
		})
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
