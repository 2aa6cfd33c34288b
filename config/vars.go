package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"gopkg.in/yaml.v3"
)

const envPrefix = "EXTAPI_"

// Variable names.
const (
	envDatabaseURL         = "EXTAPI_DATABASE_URL"
	envRedisURL            = "EXTAPI_REDIS_URL"
	envProxyAddr           = "EXTAPI_PROXY_ADDR"
	envAdminAddr           = "EXTAPI_ADMIN_ADDR"
	envWebhookAddr         = "EXTAPI_WEBHOOK_ADDR"
	envEncryptionKeys      = "EXTAPI_ENCRYPTION_KEYS"
	envEncryptionActiveKey = "EXTAPI_ENCRYPTION_ACTIVE_KEY"
	envAdminToken          = "EXTAPI_ADMIN_TOKEN"
	envMetricsToken        = "EXTAPI_METRICS_TOKEN"
	envLogLevel            = "EXTAPI_LOG_LEVEL"
	envLogFormat           = "EXTAPI_LOG_FORMAT"
	envAutoMigrate         = "EXTAPI_AUTO_MIGRATE"
	envDevDir              = "EXTAPI_DEV_DIR"
	envShutdownTimeout     = "EXTAPI_SHUTDOWN_TIMEOUT"
	envShutdownDelay       = "EXTAPI_SHUTDOWN_DELAY"
	envCacheTTL            = "EXTAPI_CACHE_TTL"
	envRedisTimeout        = "EXTAPI_REDIS_TIMEOUT"
	envUpstreamTimeout     = "EXTAPI_UPSTREAM_TIMEOUT"
	envMaxRequestBody      = "EXTAPI_MAX_REQUEST_BODY"
	envBufferLimit         = "EXTAPI_BUFFER_LIMIT"
	envMaxConnsPerHost     = "EXTAPI_MAX_CONNS_PER_HOST"
	envRefreshSkew         = "EXTAPI_OAUTH2_REFRESH_SKEW"
	envRefreshHorizon      = "EXTAPI_OAUTH2_REFRESH_HORIZON"
	envWebhookMaxBody      = "EXTAPI_WEBHOOK_MAX_BODY"
	envAccessLog           = "EXTAPI_ACCESS_LOG"
	envConfig              = "EXTAPI_CONFIG"
)

// Var describes one recognised environment variable, for `extapi serve --help` and the README.
type Var struct {
	Name    string // e.g. EXTAPI_DATABASE_URL; the file key is "database_url"
	Default string // "" if none
	Doc     string // one line
}

// spec is one variable: its Var and how to store its raw text in a Config. set reports only
// syntax problems; ranges and cross-field rules belong to Validate.
type spec struct {
	Var
	set func(c *Config, v string) error // nil: not settable from the file (EXTAPI_CONFIG)
}

func str(p func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = v; return nil }
}

func dur(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want a Go duration such as 25s, 1m30s or 50ms)", v)
		}
		if d <= 0 {
			return fmt.Errorf("must be positive, got %q (unset it for the default)", v)
		}
		*p(c) = d
		return nil
	}
}

// durOrZero is dur that also takes 0 (off).
func durOrZero(p func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want a Go duration such as 5s or 0 for none)", v)
		}
		if d < 0 {
			return fmt.Errorf("must not be negative, got %q", v)
		}
		*p(c) = d
		return nil
	}
}

// size parses a byte size: a plain number of bytes, or with a unit (KiB, MiB, GiB; KB, MB,
// GB are powers of 1000), as go-humanize reads them.
// A value that rounds to 0 bytes ("0.5") is refused: only "0" itself means 0, and only where
// zeroOK (0 = no limit); elsewhere 0 is refused too (unset the variable for the default).
func size(p func(*Config) *int64, zeroOK bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := humanize.ParseBytes(v)
		if err != nil || n > math.MaxInt64 {
			return fmt.Errorf("invalid size %q (want bytes, or a number with a unit such as 512KiB or 10MiB)", v)
		}
		switch {
		case n == 0 && (v != "0" || !zeroOK):
			if zeroOK {
				return fmt.Errorf("%q is 0 bytes; write 0 for no limit, or a size such as 10MiB", v)
			}
			return fmt.Errorf("%q is 0 bytes (want a positive size; unset it for the default)", v)
		}
		*p(c) = int64(n)
		return nil
	}
}

// specs lists every variable in the order of Config's fields.
var specs = []spec{
	{Var{envDatabaseURL, DefaultDatabaseURL, `database: postgres://… / postgresql://… or sqlite:PATH`},
		str(func(c *Config) *string { return &c.DatabaseURL })},
	{Var{envRedisURL, "", `redis://HOST:PORT[/DB] or rediss://…; ?master_name=NAME for Sentinel, ?cluster=true or ?addr=HOST:PORT for Cluster; empty = single-instance mode`},
		str(func(c *Config) *string { return &c.RedisURL })},
	{Var{envProxyAddr, DefaultProxyAddr, `HOST:PORT the proxy listens on`},
		str(func(c *Config) *string { return &c.ProxyAddr })},
	{Var{envAdminAddr, DefaultAdminAddr, `HOST:PORT of the admin API`},
		str(func(c *Config) *string { return &c.AdminAddr })},
	{Var{envWebhookAddr, "", `HOST:PORT of the webhook listener; empty = off`},
		str(func(c *Config) *string { return &c.WebhookAddr })},
	{Var{envEncryptionKeys, "", `encryption keys "1:<base64 of 32 bytes>,2:<…>"; required with PostgreSQL`},
		func(c *Config, v string) error {
			keys, err := parseKeys(v)
			c.EncryptionKeys = keys
			return err
		}},
	{Var{envEncryptionActiveKey, "", `key version that seals new secrets; 0 or unset = highest listed`},
		func(c *Config, v string) error {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("%q is not a key version (want an integer 1..4294967295, or 0 for the highest listed)", v)
			}
			c.EncryptionActiveKey = uint32(n)
			return nil
		}},
	{Var{envAdminToken, "", `bootstrap admin bearer token, at least 16 characters`},
		str(func(c *Config) *string { return &c.AdminToken })},
	{Var{envMetricsToken, "", `if set, /metrics requires it as a bearer token`},
		str(func(c *Config) *string { return &c.MetricsToken })},
	{Var{envLogLevel, DefaultLogLevel, `debug, info, warn or error`},
		str(func(c *Config) *string { return &c.LogLevel })},
	{Var{envLogFormat, DefaultLogFormat, `json or text`},
		str(func(c *Config) *string { return &c.LogFormat })},
	{Var{envAutoMigrate, "true", `run database migrations at start-up; false or 0 disables`},
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not a boolean (want true or false)", v)
			}
			c.AutoMigrate = b
			return nil
		}},
	{Var{envDevDir, DefaultDevDir, `where SQLite dev mode writes its generated key and admin token`},
		str(func(c *Config) *string { return &c.DevDir })},
	{Var{envShutdownTimeout, DefaultShutdownTimeout.String(), `graceful shutdown limit, > 0 and <= 10m`},
		dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{Var{envShutdownDelay, "0s", `after SIGTERM, keep serving this long with /readyz 503 "draining", 0..5m`},
		durOrZero(func(c *Config) *time.Duration { return &c.ShutdownDelay })},
	{Var{envCacheTTL, DefaultCacheTTL.String(), `safety-net TTL of the route cache, 1s..1h`},
		dur(func(c *Config) *time.Duration { return &c.CacheTTL })},
	{Var{envRedisTimeout, DefaultRedisTimeout.String(), `timeout of each Redis call, 1ms..5s`},
		dur(func(c *Config) *time.Duration { return &c.RedisTimeout })},
	{Var{envUpstreamTimeout, DefaultUpstreamTimeout.String(), `an API's timeout when its timeout_ms is unset, 1ms..5m`},
		dur(func(c *Config) *time.Duration { return &c.UpstreamTimeout })},
	{Var{envMaxRequestBody, "0", `larger proxied request bodies get 413 (bytes, or 10MiB, 1GB …); 0 = no limit`},
		size(func(c *Config) *int64 { return &c.MaxRequestBody }, true)},
	{Var{envBufferLimit, "1MiB", `request bodies up to this size are buffered so a retry can resend them, 1KiB..64MiB`},
		size(func(c *Config) *int64 { return &c.BufferLimit }, false)},
	{Var{envMaxConnsPerHost, strconv.Itoa(DefaultMaxConnsPerHost), `connections to one upstream host, 1..65535`},
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			if n < 1 {
				return fmt.Errorf("%d is out of range (want 1..65535; unset it for the default)", n)
			}
			c.MaxConnsPerHost = n
			return nil
		}},
	{Var{envRefreshSkew, DefaultRefreshSkew.String(), `an OAuth 2.0 token expiring within this is refreshed before the request, 1s..1h`},
		dur(func(c *Config) *time.Duration { return &c.RefreshSkew })},
	{Var{envRefreshHorizon, DefaultRefreshHorizon.String(), `the background refresher renews tokens expiring within this, above the skew, up to 24h`},
		dur(func(c *Config) *time.Duration { return &c.RefreshHorizon })},
	{Var{envWebhookMaxBody, "1MiB", `larger inbound webhook bodies get 413, 1KiB..64MiB`},
		size(func(c *Config) *int64 { return &c.WebhookMaxBody }, false)},
	{Var{envAccessLog, DefaultAccessLog, `on, off, or sample:N (log 1 request in N)`},
		str(func(c *Config) *string { return &c.AccessLog })},
	{Var{envConfig, "", `path of an optional YAML or JSON file; keys are the names above lower-cased without EXTAPI_`},
		nil},
}

// Vars returns every recognised variable with its default and one-line doc, in a stable order
// (that of Config's fields).
func Vars() []Var {
	out := make([]Var, len(specs))
	for i, s := range specs {
		out[i] = s.Var
	}
	return out
}

// fileKey is the key of a variable in the config file: "EXTAPI_CACHE_TTL" → "cache_ttl".
func fileKey(name string) string {
	return strings.ToLower(strings.TrimPrefix(name, envPrefix))
}

// decodeFile decodes a YAML (or JSON) mapping of file keys to scalars into raw strings, so that
// file values go through the same parsers as environment values.
func decodeFile(path string, data []byte) (map[string]string, []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []error{fmt.Errorf("%s: %s: %w", envConfig, path, err)}
	}
	if len(doc.Content) == 0 { // empty file
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, []error{fmt.Errorf("%s: %s: want a mapping of key: value at the top level", envConfig, path)}
	}
	known := make(map[string]bool, len(specs))
	for _, s := range specs {
		known[fileKey(s.Name)] = s.set != nil
	}
	vals := make(map[string]string)
	seen := make(map[string]bool)
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		settable, ok := known[key]
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: %s: listed twice", path, key))
			continue
		}
		seen[key] = true
		switch {
		case !ok:
			msg := fmt.Sprintf("%s: unknown key %q", path, key)
			if guess := fileKey(strings.ToUpper(key)); known[guess] {
				msg += fmt.Sprintf(" (did you mean %q?)", guess)
			}
			errs = append(errs, errors.New(msg))
			continue
		case !settable:
			errs = append(errs, fmt.Errorf("%s: %s: only settable from the environment (%s)", path, key, envConfig))
			continue
		}
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch {
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			// "key:" with no value: unset.
		case v.Kind == yaml.ScalarNode:
			if s := strings.TrimSpace(v.Value); s != "" {
				vals[key] = s
			}
		default:
			errs = append(errs, fmt.Errorf("%s: %s: want a single value, not a list or mapping", path, key))
		}
	}
	return vals, errs
}

// parseKeys parses "1:<base64>,2:<base64>". It returns every problem (joined, unprefixed) and
// no keys if there is any. A problem refers to an item by position and version, never by content.
func parseKeys(s string) ([]Key, error) {
	var keys []Key
	var errs []error
	seen := make(map[uint32]int)
	for i, item := range strings.Split(s, ",") {
		pos := i + 1
		item = strings.TrimSpace(item)
		if item == "" {
			errs = append(errs, fmt.Errorf("item %d: empty (remove the stray comma)", pos))
			continue
		}
		ver, b64, ok := strings.Cut(item, ":")
		ver, b64 = strings.TrimSpace(ver), strings.TrimSpace(b64)
		if !ok || ver == "" || b64 == "" {
			errs = append(errs, fmt.Errorf("item %d: malformed, want VERSION:BASE64", pos))
			continue
		}
		n, err := strconv.ParseUint(ver, 10, 32)
		if err != nil || n == 0 {
			errs = append(errs, fmt.Errorf("item %d: version must be an integer 1..4294967295", pos))
			continue
		}
		v := uint32(n)
		where := fmt.Sprintf("item %d (\"%d:…\")", pos, v)
		if seen[v]++; seen[v] > 1 {
			if seen[v] == 2 {
				errs = append(errs, fmt.Errorf("version %d listed twice", v))
			}
			continue
		}
		key, ok := decodeBase64(b64)
		if !ok {
			errs = append(errs, fmt.Errorf("%s: key is not valid base64 (standard or URL-safe)", where))
			continue
		}
		if len(key) != KeySize {
			errs = append(errs, fmt.Errorf("%s: key must be %d bytes after base64 decoding, got %d", where, KeySize, len(key)))
			continue
		}
		keys = append(keys, Key{Version: v, Bytes: key})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

var base64Encodings = []*base64.Encoding{
	base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding,
}

func decodeBase64(s string) ([]byte, bool) {
	for _, enc := range base64Encodings {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
