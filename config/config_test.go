package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testKey returns 32 distinct-looking bytes derived from seed, so its base64 is recognisable.
func testKey(seed byte) []byte {
	b := make([]byte, KeySize)
	for i := range b {
		b[i] = seed*31 + byte(i)*7 + 1
	}
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(envOf(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &Config{
		DatabaseURL:     DefaultDatabaseURL,
		ProxyAddr:       DefaultProxyAddr,
		AdminAddr:       DefaultAdminAddr,
		LogLevel:        "info",
		LogFormat:       "json",
		AutoMigrate:     true,
		DevDir:          ".extapi-dev",
		ShutdownTimeout: 25 * time.Second,
		CacheTTL:        30 * time.Second,
		RedisTimeout:    50 * time.Millisecond,
		UpstreamTimeout: 30 * time.Second,
		BufferLimit:     1 << 20,
		MaxConnsPerHost: 512,
		RefreshSkew:     time.Minute,
		RefreshHorizon:  10 * time.Minute,
		WebhookMaxBody:  1 << 20,
		AccessLog:       "on",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Load(empty) =\n%+v\nwant\n%+v", c, want)
	}
	if c.Dialect() != "sqlite" || c.SQLitePath() != "extapi.db" || !c.DevMode() || c.AccessLogEvery() != 1 {
		t.Errorf("Dialect=%q SQLitePath=%q DevMode=%v AccessLogEvery=%d", c.Dialect(), c.SQLitePath(), c.DevMode(), c.AccessLogEvery())
	}
}

func TestSQLitePathWithoutOptions(t *testing.T) {
	c := &Config{DatabaseURL: "sqlite:/var/lib/extapi/x.db?_busy_timeout=5000"}
	if got := c.SQLitePath(); got != "/var/lib/extapi/x.db" {
		t.Errorf("SQLitePath() = %q; want the file path without the options", got)
	}
}

func TestLoadEachVariable(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	tests := []struct {
		desc  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"postgres URL", map[string]string{envDatabaseURL: "postgres://u:p@db:5432/extapi?sslmode=disable", envEncryptionKeys: "1:" + b64(k1)},
			func(t *testing.T, c *Config) {
				if c.DatabaseURL != "postgres://u:p@db:5432/extapi?sslmode=disable" || c.Dialect() != "postgres" || c.SQLitePath() != "" || c.DevMode() {
					t.Errorf("got %q dialect %q", c.DatabaseURL, c.Dialect())
				}
			}},
		{"postgresql URL", map[string]string{envDatabaseURL: "postgresql://db/extapi", envEncryptionKeys: "1:" + b64(k1)},
			func(t *testing.T, c *Config) {
				if c.Dialect() != "postgres" {
					t.Errorf("dialect %q", c.Dialect())
				}
			}},
		{"sqlite path", map[string]string{envDatabaseURL: "sqlite:/var/lib/extapi/x.db"},
			func(t *testing.T, c *Config) {
				if c.Dialect() != "sqlite" || c.SQLitePath() != "/var/lib/extapi/x.db" {
					t.Errorf("dialect %q path %q", c.Dialect(), c.SQLitePath())
				}
			}},
		{"redis sentinel URL", map[string]string{envRedisURL: "redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379"},
			func(t *testing.T, c *Config) {
				if c.RedisURL == "" {
					t.Error("RedisURL not set")
				}
			}},
		{"redis cluster URL", map[string]string{envRedisURL: "redis://n1:6379?addr=n2:6379&addr=n3:6379"},
			func(t *testing.T, c *Config) {
				if c.RedisURL == "" {
					t.Error("RedisURL not set")
				}
			}},
		{"redis URL", map[string]string{envRedisURL: "rediss://:pw@cache:6380/2"},
			func(t *testing.T, c *Config) {
				if c.RedisURL != "rediss://:pw@cache:6380/2" {
					t.Errorf("got %q", c.RedisURL)
				}
			}},
		{"addresses", map[string]string{envProxyAddr: ":9000", envAdminAddr: "[::1]:9001", envWebhookAddr: "0.0.0.0:9002"},
			func(t *testing.T, c *Config) {
				if c.ProxyAddr != ":9000" || c.AdminAddr != "[::1]:9001" || c.WebhookAddr != "0.0.0.0:9002" {
					t.Errorf("got %q %q %q", c.ProxyAddr, c.AdminAddr, c.WebhookAddr)
				}
			}},
		{"port 0 twice is fine", map[string]string{envProxyAddr: "127.0.0.1:0", envAdminAddr: "127.0.0.1:0"},
			func(t *testing.T, c *Config) {}},
		{"keys, mixed encodings and spaces, active highest", map[string]string{
			envEncryptionKeys: " 1:" + base64.RawURLEncoding.EncodeToString(k1) + " , 2 : " + b64(k2) + " "},
			func(t *testing.T, c *Config) {
				want := []Key{{1, k1}, {2, k2}}
				if !reflect.DeepEqual(c.EncryptionKeys, want) {
					t.Errorf("keys = %v", c.EncryptionKeys)
				}
				if c.EncryptionActiveKey != 2 || c.ActiveKeyVersion() != 2 {
					t.Errorf("active = %d", c.EncryptionActiveKey)
				}
				if m := c.KeyMap(); len(m) != 2 || !bytes.Equal(m[1], k1) || !bytes.Equal(m[2], k2) {
					t.Errorf("KeyMap = %v", m)
				}
				if c.DevMode() {
					t.Error("DevMode with keys")
				}
			}},
		{"active key", map[string]string{envEncryptionKeys: "1:" + b64(k1) + ",2:" + b64(k2), envEncryptionActiveKey: "1"},
			func(t *testing.T, c *Config) {
				if c.EncryptionActiveKey != 1 {
					t.Errorf("active = %d", c.EncryptionActiveKey)
				}
			}},
		{"tokens", map[string]string{envAdminToken: "0123456789abcdef", envMetricsToken: "m"},
			func(t *testing.T, c *Config) {
				if c.AdminToken != "0123456789abcdef" || c.MetricsToken != "m" {
					t.Errorf("got %q %q", c.AdminToken, c.MetricsToken)
				}
			}},
		{"logging", map[string]string{envLogLevel: "debug", envLogFormat: "text"},
			func(t *testing.T, c *Config) {
				if c.LogLevel != "debug" || c.LogFormat != "text" {
					t.Errorf("got %q %q", c.LogLevel, c.LogFormat)
				}
			}},
		{"auto migrate false", map[string]string{envAutoMigrate: "false"},
			func(t *testing.T, c *Config) {
				if c.AutoMigrate {
					t.Error("AutoMigrate still true")
				}
			}},
		{"auto migrate 0", map[string]string{envAutoMigrate: "0"},
			func(t *testing.T, c *Config) {
				if c.AutoMigrate {
					t.Error("AutoMigrate still true")
				}
			}},
		{"auto migrate true", map[string]string{envAutoMigrate: "TRUE"},
			func(t *testing.T, c *Config) {
				if !c.AutoMigrate {
					t.Error("AutoMigrate false")
				}
			}},
		{"dev dir", map[string]string{envDevDir: "/tmp/dev"},
			func(t *testing.T, c *Config) {
				if c.DevDir != "/tmp/dev" {
					t.Errorf("got %q", c.DevDir)
				}
			}},
		{"shutdown delay", map[string]string{envShutdownDelay: "0s"},
			func(t *testing.T, c *Config) {
				if c.ShutdownDelay != 0 {
					t.Errorf("got %v", c.ShutdownDelay)
				}
			}},
		{"shutdown delay set", map[string]string{envShutdownDelay: "5s"},
			func(t *testing.T, c *Config) {
				if c.ShutdownDelay != 5*time.Second {
					t.Errorf("got %v", c.ShutdownDelay)
				}
			}},
		{"proxy sizes", map[string]string{envMaxRequestBody: "10MiB", envBufferLimit: "64KiB", envMaxConnsPerHost: "32", envUpstreamTimeout: "2m"},
			func(t *testing.T, c *Config) {
				if c.MaxRequestBody != 10<<20 || c.BufferLimit != 64<<10 || c.MaxConnsPerHost != 32 || c.UpstreamTimeout != 2*time.Minute {
					t.Errorf("got %d %d %d %v", c.MaxRequestBody, c.BufferLimit, c.MaxConnsPerHost, c.UpstreamTimeout)
				}
			}},
		{"oauth2 refresh and webhook body", map[string]string{envRefreshSkew: "2m", envRefreshHorizon: "30m", envWebhookMaxBody: "256KiB"},
			func(t *testing.T, c *Config) {
				if c.RefreshSkew != 2*time.Minute || c.RefreshHorizon != 30*time.Minute || c.WebhookMaxBody != 256<<10 {
					t.Errorf("got %v %v %d", c.RefreshSkew, c.RefreshHorizon, c.WebhookMaxBody)
				}
			}},
		{"no request body limit", map[string]string{envMaxRequestBody: "0"},
			func(t *testing.T, c *Config) {
				if c.MaxRequestBody != 0 {
					t.Errorf("got %d", c.MaxRequestBody)
				}
			}},
		{"sizes in bytes and decimal units", map[string]string{envMaxRequestBody: "1000", envBufferLimit: "2MB"},
			func(t *testing.T, c *Config) {
				if c.MaxRequestBody != 1000 || c.BufferLimit != 2_000_000 {
					t.Errorf("got %d %d", c.MaxRequestBody, c.BufferLimit)
				}
			}},
		{"durations", map[string]string{envShutdownTimeout: "10m", envCacheTTL: "1s", envRedisTimeout: "5s"},
			func(t *testing.T, c *Config) {
				if c.ShutdownTimeout != 10*time.Minute || c.CacheTTL != time.Second || c.RedisTimeout != 5*time.Second {
					t.Errorf("got %v %v %v", c.ShutdownTimeout, c.CacheTTL, c.RedisTimeout)
				}
			}},
		{"access log off", map[string]string{envAccessLog: "off"},
			func(t *testing.T, c *Config) {
				if c.AccessLog != "off" || c.AccessLogEvery() != 0 {
					t.Errorf("got %q %d", c.AccessLog, c.AccessLogEvery())
				}
			}},
		{"access log sample", map[string]string{envAccessLog: "sample:100"},
			func(t *testing.T, c *Config) {
				if c.AccessLogEvery() != 100 {
					t.Errorf("got %d", c.AccessLogEvery())
				}
			}},
		{"empty value counts as unset", map[string]string{envLogLevel: "", envShutdownTimeout: "  "},
			func(t *testing.T, c *Config) {
				if c.LogLevel != "info" || c.ShutdownTimeout != DefaultShutdownTimeout {
					t.Errorf("got %q %v", c.LogLevel, c.ShutdownTimeout)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := Load(envOf(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	k1 := testKey(1)
	tests := []struct {
		desc string
		env  map[string]string
		want []string // substrings of the error
	}{
		{"unknown scheme", map[string]string{envDatabaseURL: "mysql://x"},
			[]string{`EXTAPI_DATABASE_URL: unknown scheme "mysql" (want postgres://… or sqlite:PATH)`}},
		{"sqlite:// refused", map[string]string{envDatabaseURL: "sqlite://x.db"}, []string{envDatabaseURL, `"sqlite://" is not accepted`}},
		{"file: refused", map[string]string{envDatabaseURL: "file:x.db"}, []string{envDatabaseURL, `"file:" is not accepted`}},
		{"sqlite without path", map[string]string{envDatabaseURL: "sqlite:"}, []string{envDatabaseURL, "needs a PATH"}},
		{"keyword DSN", map[string]string{envDatabaseURL: "host=db password=hunter2"}, []string{envDatabaseURL, "missing scheme"}},
		{"postgres without keys", map[string]string{envDatabaseURL: "postgres://db/x"},
			[]string{`EXTAPI_ENCRYPTION_KEYS: required with a PostgreSQL database; generate one with "extapi keys generate" and set EXTAPI_ENCRYPTION_KEYS=1:<key>`}},
		{"redis scheme", map[string]string{envRedisURL: "http://cache:6379"}, []string{envRedisURL, `unsupported scheme "http"`}},
		{"redis no scheme", map[string]string{envRedisURL: "cache:6379"}, []string{envRedisURL, "missing scheme"}},
		{"redis no host", map[string]string{envRedisURL: "redis://"}, []string{envRedisURL, "missing host"}},
		{"redis bad db", map[string]string{envRedisURL: "redis://cache/x"}, []string{envRedisURL, "database number"}},
		{"redis sentinel without name", map[string]string{envRedisURL: "redis://s1:26379/0?master_name="}, []string{envRedisURL, "master_name is empty"}},
		{"redis cluster flag", map[string]string{envRedisURL: "redis://n1:6379?cluster=yes"}, []string{envRedisURL, "cluster must be true"}},
		{"redis sentinel and cluster", map[string]string{envRedisURL: "redis://n1:6379?cluster=true&master_name=m"}, []string{envRedisURL, "cannot go together"}},
		{"redis cluster with db", map[string]string{envRedisURL: "redis://n1:6379/2?addr=n2:6379"}, []string{envRedisURL, "no database number"}},
		{"redis addr without port", map[string]string{envRedisURL: "redis://s1:26379?master_name=m&addr=s2"}, []string{envRedisURL, `addr number 1 is not HOST:PORT`}},
		{"redis addr without host", map[string]string{envRedisURL: "redis://n1:6379?addr=:6380"}, []string{envRedisURL, `addr number 1 is not HOST:PORT`}},
		{"addr without port", map[string]string{envProxyAddr: "localhost"}, []string{envProxyAddr, "is not HOST:PORT"}},
		{"addr port range", map[string]string{envAdminAddr: ":70000"}, []string{envAdminAddr, `port "70000" must be a number 0-65535`}},
		{"addr named port", map[string]string{envWebhookAddr: ":http"}, []string{envWebhookAddr, "must be a number"}},
		{"addr clash", map[string]string{envAdminAddr: DefaultProxyAddr}, []string{envAdminAddr, "same address as EXTAPI_PROXY_ADDR"}},
		{"malformed key item", map[string]string{envEncryptionKeys: "abc"}, []string{"EXTAPI_ENCRYPTION_KEYS: item 1: malformed, want VERSION:BASE64"}},
		{"empty key item", map[string]string{envEncryptionKeys: "1:" + b64(k1) + ","}, []string{"EXTAPI_ENCRYPTION_KEYS: item 2: empty"}},
		{"version zero", map[string]string{envEncryptionKeys: "0:" + b64(k1)}, []string{"item 1: version must be an integer 1..4294967295"}},
		{"version too big", map[string]string{envEncryptionKeys: "4294967296:" + b64(k1)}, []string{"item 1: version must be an integer"}},
		{"bad base64", map[string]string{envEncryptionKeys: "1:!!!!"}, []string{`item 1 ("1:…"): key is not valid base64`}},
		{"short key", map[string]string{envEncryptionKeys: "1:" + b64(k1) + ",2:" + b64(k1[:16])},
			[]string{`EXTAPI_ENCRYPTION_KEYS: item 2 ("2:…"): key must be 32 bytes after base64 decoding, got 16`}},
		{"duplicate version", map[string]string{envEncryptionKeys: "1:" + b64(k1) + ",1:" + b64(k1) + ",1:" + b64(k1)},
			[]string{"EXTAPI_ENCRYPTION_KEYS: version 1 listed twice"}},
		{"active not listed", map[string]string{envEncryptionKeys: "1:" + b64(k1) + ",2:" + b64(testKey(2)), envEncryptionActiveKey: "5"},
			[]string{"EXTAPI_ENCRYPTION_ACTIVE_KEY: version 5 is not among EXTAPI_ENCRYPTION_KEYS (1, 2)"}},
		{"active without keys", map[string]string{envEncryptionActiveKey: "3"}, []string{envEncryptionActiveKey, "EXTAPI_ENCRYPTION_KEYS is empty"}},
		{"active not a number", map[string]string{envEncryptionActiveKey: "two"}, []string{envEncryptionActiveKey, "is not a key version"}},
		{"admin token short", map[string]string{envAdminToken: "short"}, []string{envAdminToken, "too short (5 characters)"}},
		{"metrics token space", map[string]string{envMetricsToken: "a b"}, []string{envMetricsToken, "spaces or control characters"}},
		{"log level", map[string]string{envLogLevel: "verbose"}, []string{`EXTAPI_LOG_LEVEL: unknown level "verbose"`}},
		{"log format", map[string]string{envLogFormat: "xml"}, []string{`EXTAPI_LOG_FORMAT: unknown format "xml"`}},
		{"auto migrate", map[string]string{envAutoMigrate: "maybe"}, []string{`EXTAPI_AUTO_MIGRATE: "maybe" is not a boolean`}},
		{"duration syntax", map[string]string{envShutdownTimeout: "30"}, []string{`EXTAPI_SHUTDOWN_TIMEOUT: invalid duration "30"`}},
		{"duration zero", map[string]string{envCacheTTL: "0s"}, []string{envCacheTTL, "must be positive"}},
		{"duration negative", map[string]string{envRedisTimeout: "-1ms"}, []string{envRedisTimeout, "must be positive"}},
		{"shutdown delay negative", map[string]string{envShutdownDelay: "-1s"}, []string{envShutdownDelay, "must not be negative"}},
		{"shutdown delay too long", map[string]string{envShutdownDelay: "6m"}, []string{envShutdownDelay, "out of range (want 0..5m)"}},
		{"size syntax", map[string]string{envMaxRequestBody: "ten megs"}, []string{`EXTAPI_MAX_REQUEST_BODY: invalid size "ten megs"`}},
		{"size rounding to zero", map[string]string{envMaxRequestBody: "0.5"}, []string{envMaxRequestBody, `"0.5" is 0 bytes`}},
		{"buffer limit zero", map[string]string{envBufferLimit: "0"}, []string{envBufferLimit, "want a positive size"}},
		{"conns per host zero", map[string]string{envMaxConnsPerHost: "0"}, []string{envMaxConnsPerHost, "want 1..65535"}},
		{"horizon not above skew", map[string]string{envRefreshSkew: "5m", envRefreshHorizon: "5m"}, []string{envRefreshHorizon, "is not above EXTAPI_OAUTH2_REFRESH_SKEW"}},
		{"skew too long", map[string]string{envRefreshSkew: "2h", envRefreshHorizon: "3h"}, []string{envRefreshSkew, "out of range (want 1s..1h)"}},
		{"webhook body too large", map[string]string{envWebhookMaxBody: "100MiB"}, []string{envWebhookMaxBody, "out of range"}},
		{"buffer limit too small", map[string]string{envBufferLimit: "10"}, []string{envBufferLimit, "out of range (want 1KiB..64MiB)"}},
		{"buffer limit too large", map[string]string{envBufferLimit: "1GiB"}, []string{envBufferLimit, "out of range (want 1KiB..64MiB)"}},
		{"conns per host", map[string]string{envMaxConnsPerHost: "many"}, []string{`EXTAPI_MAX_CONNS_PER_HOST: "many" is not an integer`}},
		{"conns per host range", map[string]string{envMaxConnsPerHost: "70000"}, []string{envMaxConnsPerHost, "out of range (want 1..65535)"}},
		{"upstream timeout too long", map[string]string{envUpstreamTimeout: "6m"}, []string{envUpstreamTimeout, "out of range (want 1ms..5m)"}},
		{"shutdown too long", map[string]string{envShutdownTimeout: "11m"}, []string{envShutdownTimeout, "out of range (want > 0 and <= 10m)"}},
		{"cache ttl too short", map[string]string{envCacheTTL: "500ms"}, []string{envCacheTTL, "out of range (want 1s..1h)"}},
		{"redis timeout too long", map[string]string{envRedisTimeout: "6s"}, []string{envRedisTimeout, "out of range (want 1ms..5s)"}},
		{"access log", map[string]string{envAccessLog: "sample:0"}, []string{`EXTAPI_ACCESS_LOG: "sample:0" not understood`}},
		{"missing config file", map[string]string{envConfig: "/nonexistent/extapi.yaml"}, []string{"EXTAPI_CONFIG: open /nonexistent/extapi.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			c, err := Load(envOf(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			if c == nil {
				t.Fatal("Load returned nil Config with error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadAllAtOnce(t *testing.T) {
	k := testKey(3)
	env := map[string]string{
		envDatabaseURL:     "mysql://db/x",
		envEncryptionKeys:  "garbage,2:" + b64(k[:16]) + ",3:" + b64(k) + ",3:" + b64(k),
		envLogLevel:        "loud",
		envShutdownTimeout: "soon",
	}
	_, err := Load(envOf(env))
	if err == nil {
		t.Fatal("Load succeeded, want error")
	}
	for _, w := range []string{
		`EXTAPI_DATABASE_URL: unknown scheme "mysql"`,
		"EXTAPI_ENCRYPTION_KEYS: item 1: malformed, want VERSION:BASE64",
		`EXTAPI_ENCRYPTION_KEYS: item 2 ("2:…"): key must be 32 bytes after base64 decoding, got 16`,
		"EXTAPI_ENCRYPTION_KEYS: version 3 listed twice",
		`EXTAPI_LOG_LEVEL: unknown level "loud"`,
		`EXTAPI_SHUTDOWN_TIMEOUT: invalid duration "soon"`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not contain %q", err, w)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 6 {
		t.Errorf("got %d problems, want 6:\n%v", n, err)
	}
}

func TestErrorsHideSecrets(t *testing.T) {
	k := testKey(9)
	std, url := b64(k), base64.RawURLEncoding.EncodeToString(k)
	short := b64(k[:20])
	tests := []struct {
		desc    string
		env     map[string]string
		secrets []string
	}{
		{"wrong length and duplicate", map[string]string{envEncryptionKeys: "1:" + short + ",2:" + std + ",2:" + url}, []string{short, std, url}},
		{"key pasted without version", map[string]string{envEncryptionKeys: std}, []string{std}},
		{"key and version swapped", map[string]string{envEncryptionKeys: std + ":1"}, []string{std}},
		{"bad base64 char", map[string]string{envEncryptionKeys: "1:" + std[:20] + "*" + std[21:]}, []string{std[:20], std[21:]}},
		{"database password", map[string]string{envDatabaseURL: "postgres://u:s3cretpw@db:bad/x"}, []string{"s3cretpw"}},
		{"database password with slash", map[string]string{envDatabaseURL: "postgres://u:s3cret/pw@db/x"}, []string{"s3cret", "pw@"}},
		{"redis password with hash", map[string]string{envRedisURL: "redis://:s3cret#pw@cache:6379"}, []string{"s3cret", "pw@"}},
		{"database keyword DSN", map[string]string{envDatabaseURL: "password=s3cretpw"}, []string{"s3cretpw"}},
		{"redis password", map[string]string{envRedisURL: "redis://:s3cretpw@cache:port"}, []string{"s3cretpw"}},
		{"redis credentials in an addr", map[string]string{envRedisURL: "redis://s1:26379?master_name=m&addr=u:s3cretpw@s2"}, []string{"s3cretpw"}},
		{"redis wrong scheme", map[string]string{envRedisURL: "s3cretpw://cache"}, []string{}}, // scheme is shown: not a secret
		{"admin token", map[string]string{envAdminToken: "s3cret pw"}, []string{"s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := Load(envOf(tt.env))
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			msg := err.Error()
			for _, s := range tt.secrets {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains secret %q", msg, s)
				}
			}
			if bytes.Contains([]byte(msg), k[:8]) {
				t.Errorf("error contains raw key bytes")
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	yamlFile := `# extapi config
database_url: postgres://db/extapi
encryption_keys: "1:` + b64(k1) + `,2:` + b64(k2) + `"
encryption_active_key: 1
shutdown_timeout: 40s
auto_migrate: false
log_level: warn
redis_url:
`
	jsonFile := `{"database_url": "postgres://db/extapi", "encryption_keys": "1:` + b64(k1) + `,2:` + b64(k2) + `",
 "encryption_active_key": 1, "shutdown_timeout": "40s", "auto_migrate": false, "log_level": "warn", "redis_url": null}`
	tests := []struct {
		desc  string
		name  string
		file  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{"yaml alone", "extapi.yaml", yamlFile, nil, func(t *testing.T, c *Config) {
			if c.Dialect() != "postgres" || len(c.EncryptionKeys) != 2 || c.EncryptionActiveKey != 1 ||
				c.ShutdownTimeout != 40*time.Second || c.AutoMigrate || c.LogLevel != "warn" || c.RedisURL != "" {
				t.Errorf("got %+v", c)
			}
		}},
		{"json alone", "extapi.json", jsonFile, nil, func(t *testing.T, c *Config) {
			if c.Dialect() != "postgres" || len(c.EncryptionKeys) != 2 || c.EncryptionActiveKey != 1 ||
				c.ShutdownTimeout != 40*time.Second || c.AutoMigrate || c.LogLevel != "warn" {
				t.Errorf("got %+v", c)
			}
		}},
		{"env overrides yaml", "extapi.yaml", yamlFile,
			map[string]string{envShutdownTimeout: "5s", envAutoMigrate: "true", envEncryptionActiveKey: "2", envLogLevel: "error"},
			func(t *testing.T, c *Config) {
				if c.ShutdownTimeout != 5*time.Second || !c.AutoMigrate || c.EncryptionActiveKey != 2 || c.LogLevel != "error" {
					t.Errorf("got %+v", c)
				}
			}},
		{"env overrides json", "extapi.json", jsonFile,
			map[string]string{envDatabaseURL: "sqlite:/tmp/x.db", envEncryptionKeys: "7:" + b64(k2)},
			func(t *testing.T, c *Config) {
				// The file's active key 1 is not among the env's keys: overridden in part only.
				if c.SQLitePath() != "/tmp/x.db" || len(c.EncryptionKeys) != 1 || c.EncryptionKeys[0].Version != 7 {
					t.Errorf("got %+v", c)
				}
			}},
		{"env overrides a malformed file value", "extapi.yaml", "shutdown_timeout: soon\n",
			map[string]string{envShutdownTimeout: "5s"},
			func(t *testing.T, c *Config) {
				if c.ShutdownTimeout != 5*time.Second {
					t.Errorf("got %v", c.ShutdownTimeout)
				}
			}},
		{"empty file", "extapi.yaml", "", nil, func(t *testing.T, c *Config) {
			if c.DatabaseURL != DefaultDatabaseURL {
				t.Errorf("got %q", c.DatabaseURL)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			env := map[string]string{envConfig: writeFile(t, tt.name, tt.file)}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(envOf(env))
			if tt.desc == "env overrides json" {
				// Expected: EXTAPI_ENCRYPTION_ACTIVE_KEY 1 (from the file) is not among key 7.
				if err == nil || !strings.Contains(err.Error(), "version 1 is not among EXTAPI_ENCRYPTION_KEYS (7)") {
					t.Fatalf("Load: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.ConfigFile != env[envConfig] {
				t.Errorf("ConfigFile = %q", c.ConfigFile)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		desc string
		file string
		want []string
	}{
		{"unknown key", "database_url: sqlite:x.db\nshutdown_timout: 5s\n", []string{`unknown key "shutdown_timout"`}},
		{"env name as key", "EXTAPI_LOG_LEVEL: debug\n", []string{`unknown key "EXTAPI_LOG_LEVEL" (did you mean "log_level"?)`}},
		{"config key", "config: other.yaml\n", []string{"config: only settable from the environment"}},
		{"list value", "encryption_keys: [a, b]\n", []string{"encryption_keys: want a single value"}},
		{"not a mapping", "- a\n- b\n", []string{"want a mapping"}},
		{"syntax", "a: [\n", []string{"EXTAPI_CONFIG: ", "yaml:"}},
		{"bad values named by key", "shutdown_timeout: soon\nauto_migrate: maybe\nencryption_keys: x\n",
			[]string{`: shutdown_timeout: invalid duration "soon"`, `: auto_migrate: "maybe" is not a boolean`, ": encryption_keys: item 1: malformed"}},
		{"duplicate key", "log_level: debug\nlog_level: info\n", []string{"log_level: listed twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			path := writeFile(t, "extapi.yaml", tt.file)
			_, err := Load(envOf(map[string]string{envConfig: path}))
			if err == nil {
				t.Fatal("Load succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestDevMode(t *testing.T) {
	k := Key{1, testKey(1)}
	tests := []struct {
		desc string
		c    Config
		want bool
	}{
		{"sqlite, no keys", Config{DatabaseURL: "sqlite:x.db"}, true},
		{"sqlite, keys", Config{DatabaseURL: "sqlite:x.db", EncryptionKeys: []Key{k}}, false},
		{"postgres, no keys", Config{DatabaseURL: "postgres://db/x"}, false},
		{"postgres, keys", Config{DatabaseURL: "postgres://db/x", EncryptionKeys: []Key{k}}, false},
		{"unknown scheme", Config{DatabaseURL: "mysql://db"}, false},
		{"sqlite:// is not sqlite", Config{DatabaseURL: "sqlite://x.db"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			if got := tt.c.DevMode(); got != tt.want {
				t.Errorf("DevMode() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	tests := []struct {
		desc string
		c    Config
		want []string // empty: valid
	}{
		{"zero value is valid", Config{}, nil},
		{"key wrong length", Config{EncryptionKeys: []Key{{1, make([]byte, 16)}}}, []string{"EXTAPI_ENCRYPTION_KEYS: version 1: key must be 32 bytes, got 16"}},
		{"key version 0", Config{EncryptionKeys: []Key{{0, testKey(1)}}}, []string{"version 0 is not allowed"}},
		{"duplicate key", Config{EncryptionKeys: []Key{{4, testKey(1)}, {4, testKey(2)}}}, []string{"version 4 listed twice"}},
		{"negative duration", Config{ShutdownTimeout: -time.Second}, []string{envShutdownTimeout, "out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			before := tt.c
			err := tt.c.Validate()
			if !reflect.DeepEqual(before, tt.c) {
				t.Error("Validate modified the Config")
			}
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate succeeded, want error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// TestVars checks that Vars covers every Config field once and that its defaults are those of
// SetDefaults (and of Load, for AutoMigrate).
func TestVars(t *testing.T) {
	vars := Vars()
	if n := reflect.TypeFor[Config]().NumField(); len(vars) != n {
		t.Errorf("Vars() has %d entries, Config has %d fields", len(vars), n)
	}
	c, err := Load(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vars {
		if seen[v.Name] || !strings.HasPrefix(v.Name, "EXTAPI_") || v.Doc == "" || strings.Contains(v.Doc, "\n") {
			t.Errorf("bad Var %+v", v)
		}
		seen[v.Name] = true
		if v.Default == "" || v.Name == envConfig {
			continue
		}
		// Setting each variable to its documented default must change nothing.
		d, err := Load(envOf(map[string]string{v.Name: v.Default}))
		if err != nil {
			t.Errorf("%s=%s: %v", v.Name, v.Default, err)
		} else if !reflect.DeepEqual(c, d) {
			t.Errorf("%s: documented default %q differs from the real one", v.Name, v.Default)
		}
	}
}

// FuzzParseKeys: no panic; success means every key is 32 bytes with a unique non-zero version;
// failure never quotes a key.
func FuzzParseKeys(f *testing.F) {
	k1, k2 := testKey(1), testKey(2)
	for _, s := range []string{
		"", ",", "1:", ":x", "1:" + b64(k1), "1:" + b64(k1) + ",2:" + base64.RawURLEncoding.EncodeToString(k2),
		"1:" + b64(k1) + ",1:" + b64(k1), "4294967295:" + b64(k2), "4294967296:" + b64(k2), "1:" + b64(k1[:16]),
		" 1 : " + b64(k1) + " ,\t2:" + b64(k2) + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := parseKeys(s)
		if err != nil {
			if keys != nil {
				t.Fatalf("keys %v returned with error", keys)
			}
			msg := err.Error()
			for item := range strings.SplitSeq(s, ",") {
				_, b, _ := strings.Cut(item, ":")
				if b = strings.TrimSpace(b); len(b) >= 16 && !strings.ContainsAny(b, " \"") && strings.Contains(msg, b) {
					t.Fatalf("error %q quotes key text %q", msg, b)
				}
			}
			return
		}
		seen := map[uint32]bool{}
		for _, k := range keys {
			if len(k.Bytes) != KeySize {
				t.Fatalf("version %d: %d bytes", k.Version, len(k.Bytes))
			}
			if k.Version == 0 || seen[k.Version] {
				t.Fatalf("version %d zero or repeated in %q", k.Version, s)
			}
			seen[k.Version] = true
		}
	})
}
