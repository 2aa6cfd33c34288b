package migrations_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/migrations"
	"github.com/extapi/extapi/store"
	"github.com/extapi/extapi/store/storetest"
)

func TestList(t *testing.T) {
	for _, d := range []string{migrations.Postgres, migrations.SQLite} {
		ms, err := migrations.List(d)
		if err != nil || len(ms) == 0 {
			t.Fatalf("List(%s) = %d, %v; want migrations", d, len(ms), err)
		}
		if ms[0].Version != 1 {
			t.Errorf("List(%s)[0].Version = %d; want 1", d, ms[0].Version)
		}
	}
	pg, _ := migrations.List(migrations.Postgres)
	lite, _ := migrations.List(migrations.SQLite)
	if len(pg) != len(lite) {
		t.Errorf("postgres has %d migrations, sqlite %d; every version must exist for both", len(pg), len(lite))
	}
	for i := range pg {
		if i < len(lite) && (pg[i].Version != lite[i].Version || pg[i].Name != lite[i].Name) {
			t.Errorf("migration %d: postgres %04d_%s, sqlite %04d_%s; want the same", i, pg[i].Version, pg[i].Name, lite[i].Version, lite[i].Name)
		}
	}
	if _, err := migrations.List("mysql"); !errors.Is(err, migrations.ErrUnknownDialect) {
		t.Errorf("List(mysql) = %v; want ErrUnknownDialect", err)
	}
}

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := store.Open(c, url, store.Options{MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestApplyIdempotentAndConcurrent(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			url := storetest.URL(t, d)
			latest, _ := migrations.List(d)
			want := latest[len(latest)-1].Version

			// Several instances starting at once: each has its own pool, as separate processes would.
			const instances = 4
			var wg sync.WaitGroup
			results := make([]migrations.Result, instances)
			errs := make([]error, instances)
			for i := 0; i < instances; i++ {
				s := open(t, url)
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					results[i], errs[i] = s.Migrate(c)
				}(i)
			}
			wg.Wait()
			applied := 0
			for i := range results {
				if errs[i] != nil {
					t.Fatalf("instance %d: Migrate() = %v", i, errs[i])
				}
				if results[i].Current != want {
					t.Errorf("instance %d: Current = %d; want %d", i, results[i].Current, want)
				}
				applied += len(results[i].Applied)
			}
			if applied != len(latest) {
				t.Errorf("migrations applied across instances = %d; want %d (each exactly once)", applied, len(latest))
			}

			s := open(t, url)
			res, err := s.Migrate(context.Background())
			if err != nil || len(res.Applied) != 0 {
				t.Errorf("Migrate() again = %+v, %v; want nothing applied", res, err)
			}
			var n int
			if err := s.SQL().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(latest) {
				t.Errorf("schema_migrations rows = %d, %v; want %d", n, err, len(latest))
			}

			// A database migrated by a newer binary is refused.
			if _, err := s.SQL().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Migrate(context.Background()); !errors.Is(err, migrations.ErrNewerSchema) {
				t.Errorf("Migrate(newer schema) = %v; want ErrNewerSchema", err)
			}
		})
	}
}

// A database recording a version this binary does not know is refused before anything is
// applied, even when versions this binary does know are missing.
func TestApplyRefusesNewerSchemaFirst(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) {
			s := open(t, storetest.URL(t, d))
			if _, err := s.SQL().Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SQL().Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 'x')`); err != nil {
				t.Fatal(err)
			}
			res, err := s.Migrate(context.Background())
			if !errors.Is(err, migrations.ErrNewerSchema) {
				t.Fatalf("Migrate(newer schema) = %v; want ErrNewerSchema", err)
			}
			if len(res.Applied) != 0 || res.Current != 9999 {
				t.Errorf("Migrate(newer schema) = %+v; want nothing applied, current 9999", res)
			}
			var n int
			if err := s.SQL().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
				t.Errorf("schema_migrations rows = %d, %v; want only the newer version's", n, err)
			}
			if _, err := s.SQL().Exec(`SELECT COUNT(*) FROM external_apis`); err == nil {
				t.Errorf("table external_apis exists; want migration 0001 not applied")
			}
		})
	}
}
