// Package config loads extapi's settings from EXTAPI_* environment variables and an optional file.
//
// The pattern is Load (file, then environment over it) → SetDefaults → Validate. A zero field means
// "use the default", which is documented on the field. Validate reports every problem at once,
// joined with errors.Join, so a user can fix them all in one go; it touches no globals.
//
// Error messages never contain secret values (encryption keys, tokens, database or Redis URLs).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults, used by SetDefaults when the corresponding field is zero.
const (
	DefaultDatabaseURL     = "sqlite:extapi.db"
	DefaultProxyAddr       = "127.0.0.1:8080"
	DefaultAdminAddr       = "127.0.0.1:8081"
	DefaultLogLevel        = "info"
	DefaultLogFormat       = "json"
	DefaultDevDir          = ".extapi-dev"
	DefaultShutdownTimeout = 25 * time.Second
	DefaultCacheTTL        = 30 * time.Second
	DefaultRedisTimeout    = 50 * time.Millisecond
	DefaultAccessLog       = "on"
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultBufferLimit     = 1 << 20
	DefaultMaxConnsPerHost = 512
	DefaultRefreshSkew     = 60 * time.Second
	DefaultRefreshHorizon  = 10 * time.Minute
	DefaultWebhookMaxBody  = 1 << 20
)

// Bounds checked by Validate.
const (
	MaxShutdownTimeout = 10 * time.Minute
	MaxShutdownDelay   = 5 * time.Minute
	MaxUpstreamTimeout = 5 * time.Minute // as api_config.timeout_ms
	MinBufferLimit     = 1 << 10
	MaxBufferLimit     = 64 << 20
	MaxConnsPerHost    = 65535
	MaxRefreshSkew     = time.Hour
	MaxRefreshHorizon  = 24 * time.Hour
	MinCacheTTL        = time.Second
	MaxCacheTTL        = time.Hour
	MinRedisTimeout    = time.Millisecond
	MaxRedisTimeout    = 5 * time.Second
	KeySize            = 32 // bytes of an AES-256 key
)

// Key is one encryption key: its version (1..2^32-1) and its 32 bytes.
type Key struct {
	Version uint32
	Bytes   []byte
}

// Config holds every setting. Each field names its environment variable; the file key is that
// name lower-cased without the EXTAPI_ prefix (EXTAPI_SHUTDOWN_TIMEOUT → shutdown_timeout).
type Config struct {
	// DatabaseURL (EXTAPI_DATABASE_URL): "postgres://…" / "postgresql://…" or "sqlite:PATH".
	// "sqlite://PATH" and "file:PATH" are not accepted. DefaultDatabaseURL ("sqlite:extapi.db") is
	// used if empty.
	DatabaseURL string
	// RedisURL (EXTAPI_REDIS_URL): redis://HOST:PORT[/DB] or rediss://… (TLS); with
	// ?master_name=NAME the hosts are Sentinels, with ?cluster=true (or more nodes as
	// ?addr=HOST:PORT) Cluster seed nodes. Empty means single-instance mode (no shared cache,
	// locks or rate limits).
	RedisURL string
	// ProxyAddr (EXTAPI_PROXY_ADDR): HOST:PORT the proxy listens on. DefaultProxyAddr
	// ("127.0.0.1:8080") is used if empty.
	ProxyAddr string
	// AdminAddr (EXTAPI_ADMIN_ADDR): HOST:PORT of the admin API. DefaultAdminAddr
	// ("127.0.0.1:8081") is used if empty.
	AdminAddr string
	// WebhookAddr (EXTAPI_WEBHOOK_ADDR): HOST:PORT of the webhook listener. Empty (the default)
	// turns it off.
	WebhookAddr string
	// EncryptionKeys (EXTAPI_ENCRYPTION_KEYS): "1:<base64 of 32 bytes>,2:<…>" (standard or
	// URL-safe base64, padded or not; whitespace around items ignored). Required with PostgreSQL;
	// with SQLite and no keys the caller runs in dev mode (see DevMode).
	EncryptionKeys []Key
	// EncryptionActiveKey (EXTAPI_ENCRYPTION_ACTIVE_KEY): the key version that seals new
	// secrets; the others only open. 0 means the highest version listed (SetDefaults resolves it
	// when keys are present).
	EncryptionActiveKey uint32
	// AdminToken (EXTAPI_ADMIN_TOKEN): bootstrap admin bearer token; if set, at least 16
	// characters. Empty: none (dev mode generates one into DevDir).
	AdminToken string
	// MetricsToken (EXTAPI_METRICS_TOKEN): if set, /metrics requires it as a bearer token.
	// Empty: /metrics is open.
	MetricsToken string
	// LogLevel (EXTAPI_LOG_LEVEL): debug, info, warn or error. DefaultLogLevel ("info") is used
	// if empty.
	LogLevel string
	// LogFormat (EXTAPI_LOG_FORMAT): json or text. DefaultLogFormat ("json") is used if empty.
	LogFormat string
	// AutoMigrate (EXTAPI_AUTO_MIGRATE): run database migrations at start-up. Default true:
	// Load starts from true and "false"/"0" disables it. SetDefaults cannot tell an unset bool
	// from false, so a Config built in code must set it explicitly.
	AutoMigrate bool
	// DevDir (EXTAPI_DEV_DIR): where SQLite dev mode writes its generated key and admin token.
	// DefaultDevDir (".extapi-dev") is used if empty.
	DevDir string
	// ShutdownTimeout (EXTAPI_SHUTDOWN_TIMEOUT): how long a graceful shutdown may take; > 0 and
	// <= 10m. DefaultShutdownTimeout (25s) is used if zero.
	ShutdownTimeout time.Duration
	// ShutdownDelay (EXTAPI_SHUTDOWN_DELAY): after SIGTERM, how long extapi keeps serving
	// while /readyz answers 503 "draining", so that load balancers stop sending before it
	// stops accepting; 0..5m, default 0. A second signal ends it early.
	ShutdownDelay time.Duration
	// CacheTTL (EXTAPI_CACHE_TTL): safety-net TTL of the route cache; 1s..1h. DefaultCacheTTL
	// (30s) is used if zero.
	CacheTTL time.Duration
	// RedisTimeout (EXTAPI_REDIS_TIMEOUT): timeout of each Redis call; 1ms..5s.
	// DefaultRedisTimeout (50ms) is used if zero.
	RedisTimeout time.Duration
	// UpstreamTimeout (EXTAPI_UPSTREAM_TIMEOUT): an API's timeout when its api_config.timeout_ms
	// is not set (the whole exchange, retries included); 1ms..5m. DefaultUpstreamTimeout (30s)
	// is used if zero.
	UpstreamTimeout time.Duration
	// MaxRequestBody (EXTAPI_MAX_REQUEST_BODY): larger proxied request bodies get 413
	// request_too_large; bytes, 0 (the default) for no limit.
	MaxRequestBody int64
	// BufferLimit (EXTAPI_BUFFER_LIMIT): proxied request bodies up to this size are read into
	// memory so that a retry can send them again; larger ones stream (and are not retried);
	// 1KiB..64MiB. DefaultBufferLimit (1MiB) is used if zero.
	BufferLimit int64
	// MaxConnsPerHost (EXTAPI_MAX_CONNS_PER_HOST): connections to one upstream host; 1..65535.
	// DefaultMaxConnsPerHost (512) is used if zero.
	MaxConnsPerHost int
	// RefreshSkew (EXTAPI_OAUTH2_REFRESH_SKEW): an OAuth 2.0 access token expiring within it is
	// refreshed before the request is sent; 1s..1h. DefaultRefreshSkew (60s) is used if zero.
	RefreshSkew time.Duration
	// RefreshHorizon (EXTAPI_OAUTH2_REFRESH_HORIZON): the background refresher renews tokens
	// expiring within it (one pass a minute); above the skew, up to 24h. DefaultRefreshHorizon
	// (10m) is used if zero.
	RefreshHorizon time.Duration
	// WebhookMaxBody (EXTAPI_WEBHOOK_MAX_BODY): larger inbound webhook bodies get 413;
	// 1KiB..64MiB. DefaultWebhookMaxBody (1MiB) is used if zero.
	WebhookMaxBody int64
	// AccessLog (EXTAPI_ACCESS_LOG): "on", "off", or "sample:N" (log 1 request in N, N >= 1).
	// DefaultAccessLog ("on") is used if empty. See AccessLogEvery.
	AccessLog string
	// ConfigFile (EXTAPI_CONFIG): path of an optional YAML or JSON file read by Load. Only
	// settable from the environment, not from the file itself.
	ConfigFile string
}

// SetDefaults replaces every zero field that has a default by that default, and resolves
// EncryptionActiveKey 0 to the highest listed version. It leaves AutoMigrate alone.
func (c *Config) SetDefaults() {
	setString := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	setDuration := func(p *time.Duration, def time.Duration) {
		if *p == 0 {
			*p = def
		}
	}
	setString(&c.DatabaseURL, DefaultDatabaseURL)
	setString(&c.ProxyAddr, DefaultProxyAddr)
	setString(&c.AdminAddr, DefaultAdminAddr)
	setString(&c.LogLevel, DefaultLogLevel)
	setString(&c.LogFormat, DefaultLogFormat)
	setString(&c.DevDir, DefaultDevDir)
	setString(&c.AccessLog, DefaultAccessLog)
	setDuration(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDuration(&c.CacheTTL, DefaultCacheTTL)
	setDuration(&c.RedisTimeout, DefaultRedisTimeout)
	setDuration(&c.UpstreamTimeout, DefaultUpstreamTimeout)
	if c.BufferLimit == 0 {
		c.BufferLimit = DefaultBufferLimit
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	setDuration(&c.RefreshSkew, DefaultRefreshSkew)
	setDuration(&c.RefreshHorizon, DefaultRefreshHorizon)
	if c.WebhookMaxBody == 0 {
		c.WebhookMaxBody = DefaultWebhookMaxBody
	}
	if c.EncryptionActiveKey == 0 {
		c.EncryptionActiveKey = c.highestVersion()
	}
}

// Validate checks every field as SetDefaults would leave it (it works on a defaulted copy and
// does not modify c) and returns errors.Join of every problem, or nil.
func (c *Config) Validate() error {
	return errors.Join(c.validate(false)...)
}

// validate returns every problem. keysFailed says EXTAPI_ENCRYPTION_KEYS was already reported as
// unparsable by Load, so checks that depend on the keys would only add noise.
func (c *Config) validate(keysFailed bool) []error {
	d := *c
	d.SetDefaults()
	var errs []error
	add := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf(name+": "+format, args...))
	}

	if msg := checkDatabaseURL(d.DatabaseURL); msg != "" {
		add(envDatabaseURL, "%s", msg)
	}
	if d.RedisURL != "" {
		if msg := checkRedisURL(d.RedisURL); msg != "" {
			add(envRedisURL, "%s", msg)
		}
	}

	addrs := []struct{ name, v string }{
		{envProxyAddr, d.ProxyAddr}, {envAdminAddr, d.AdminAddr}, {envWebhookAddr, d.WebhookAddr},
	}
	for i, a := range addrs {
		if a.v == "" { // only WebhookAddr can still be empty: off
			continue
		}
		if msg := checkAddr(a.v); msg != "" {
			add(a.name, "%s", msg)
			continue
		}
		for _, b := range addrs[:i] {
			if a.v == b.v && !strings.HasSuffix(a.v, ":0") {
				add(a.name, "same address as %s (%s); give each listener its own port", b.name, a.v)
			}
		}
	}

	if !keysFailed {
		for _, p := range checkKeys(d.EncryptionKeys) {
			add(envEncryptionKeys, "%s", p)
		}
		if len(d.EncryptionKeys) == 0 && d.Dialect() == "postgres" {
			add(envEncryptionKeys, `required with a PostgreSQL database; generate one with "extapi keys generate" and set %s=1:<key>`, envEncryptionKeys)
		}
		if v := d.EncryptionActiveKey; v != 0 {
			if len(d.EncryptionKeys) == 0 {
				add(envEncryptionActiveKey, "set to %d but %s is empty", v, envEncryptionKeys)
			} else if !slices.ContainsFunc(d.EncryptionKeys, func(k Key) bool { return k.Version == v }) {
				vs := make([]string, len(d.EncryptionKeys))
				for i, k := range d.EncryptionKeys {
					vs[i] = strconv.FormatUint(uint64(k.Version), 10)
				}
				add(envEncryptionActiveKey, "version %d is not among %s (%s)", v, envEncryptionKeys, strings.Join(vs, ", "))
			}
		}
	}

	if d.AdminToken != "" {
		if n := len([]rune(d.AdminToken)); n < 16 {
			add(envAdminToken, "too short (%d characters); use at least 16, e.g. from \"openssl rand -hex 32\"", n)
		}
		if !isTokenText(d.AdminToken) {
			add(envAdminToken, "contains spaces or control characters, which cannot be sent in an Authorization header")
		}
	}
	if d.MetricsToken != "" && !isTokenText(d.MetricsToken) {
		add(envMetricsToken, "contains spaces or control characters, which cannot be sent in an Authorization header")
	}

	switch d.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add(envLogLevel, "unknown level %q (want debug, info, warn or error)", d.LogLevel)
	}
	switch d.LogFormat {
	case "json", "text":
	default:
		add(envLogFormat, "unknown format %q (want json or text)", d.LogFormat)
	}

	checkRange := func(name string, v, lo, hi time.Duration, want string) {
		if v < lo || v > hi {
			add(name, "%s is out of range (want %s)", v, want)
		}
	}
	checkRange(envShutdownTimeout, d.ShutdownTimeout, 1, MaxShutdownTimeout, "> 0 and <= 10m")
	checkRange(envShutdownDelay, d.ShutdownDelay, 0, MaxShutdownDelay, "0..5m")
	checkRange(envCacheTTL, d.CacheTTL, MinCacheTTL, MaxCacheTTL, "1s..1h")
	checkRange(envRedisTimeout, d.RedisTimeout, MinRedisTimeout, MaxRedisTimeout, "1ms..5s")
	checkRange(envUpstreamTimeout, d.UpstreamTimeout, time.Millisecond, MaxUpstreamTimeout, "1ms..5m")
	if d.MaxRequestBody < 0 || int64(int(d.MaxRequestBody)) != d.MaxRequestBody {
		add(envMaxRequestBody, "%d is out of range (want a size such as 10MiB, or 0 for no limit)", d.MaxRequestBody)
	}
	if d.BufferLimit < MinBufferLimit || d.BufferLimit > MaxBufferLimit {
		add(envBufferLimit, "%d bytes is out of range (want 1KiB..64MiB)", d.BufferLimit)
	}
	checkRange(envRefreshSkew, d.RefreshSkew, time.Second, MaxRefreshSkew, "1s..1h")
	checkRange(envRefreshHorizon, d.RefreshHorizon, time.Second, MaxRefreshHorizon, "up to 24h")
	if d.RefreshHorizon <= d.RefreshSkew && d.RefreshSkew > 0 {
		add(envRefreshHorizon, "%s is not above %s (%s): the background refresher would leave every refresh to requests",
			d.RefreshHorizon, envRefreshSkew, d.RefreshSkew)
	}
	if d.WebhookMaxBody < MinBufferLimit || d.WebhookMaxBody > MaxBufferLimit {
		add(envWebhookMaxBody, "%d bytes is out of range (want 1KiB..64MiB)", d.WebhookMaxBody)
	}
	if d.MaxConnsPerHost < 1 || d.MaxConnsPerHost > MaxConnsPerHost {
		add(envMaxConnsPerHost, "%d is out of range (want 1..65535)", d.MaxConnsPerHost)
	}

	if _, ok := accessLogEvery(d.AccessLog); !ok {
		add(envAccessLog, "%q not understood (want on, off, or sample:N with N >= 1)", d.AccessLog)
	}
	return errs
}

// Dialect returns "postgres" or "sqlite" according to DatabaseURL's scheme, or "" if it is
// neither (call after SetDefaults: an empty DatabaseURL gives "").
func (c *Config) Dialect() string {
	scheme, rest, ok := strings.Cut(c.DatabaseURL, ":")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return "postgres"
	case "sqlite":
		if strings.HasPrefix(rest, "//") {
			return ""
		}
		return "sqlite"
	}
	return ""
}

// SQLitePath returns the PATH of a "sqlite:PATH[?options]" DatabaseURL, or "" for other
// databases.
func (c *Config) SQLitePath() string {
	if c.Dialect() != "sqlite" {
		return ""
	}
	_, path, _ := strings.Cut(c.DatabaseURL, ":")
	path, _, _ = strings.Cut(path, "?")
	return path
}

// KeyMap returns EncryptionKeys by version. The byte slices are shared with c, not copied.
func (c *Config) KeyMap() map[uint32][]byte {
	m := make(map[uint32][]byte, len(c.EncryptionKeys))
	for _, k := range c.EncryptionKeys {
		m[k.Version] = k.Bytes
	}
	return m
}

// DevMode reports a SQLite database with no EncryptionKeys configured: the caller will generate
// a dev key file (and admin token) in DevDir.
func (c *Config) DevMode() bool {
	return c.Dialect() == "sqlite" && len(c.EncryptionKeys) == 0
}

// ActiveKeyVersion returns the version that seals: EncryptionActiveKey, or if that is 0 the
// highest version in EncryptionKeys (0 if there are none).
func (c *Config) ActiveKeyVersion() uint32 {
	if c.EncryptionActiveKey != 0 {
		return c.EncryptionActiveKey
	}
	return c.highestVersion()
}

func (c *Config) highestVersion() uint32 {
	var v uint32
	for _, k := range c.EncryptionKeys {
		v = max(v, k.Version)
	}
	return v
}

// AccessLogEvery interprets AccessLog: 0 means off, 1 means every request, N means one request
// in N. An empty AccessLog counts as the default "on"; an invalid one (rejected by Validate)
// also gives 1.
func (c *Config) AccessLogEvery() int {
	v := c.AccessLog
	if v == "" {
		v = DefaultAccessLog
	}
	n, ok := accessLogEvery(v)
	if !ok {
		return 1
	}
	return n
}

func accessLogEvery(v string) (int, bool) {
	switch v {
	case "on":
		return 1, true
	case "off":
		return 0, true
	}
	s, ok := strings.CutPrefix(v, "sample:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, false
	}
	return n, true
}

// checkDatabaseURL returns what is wrong with u, or "". It never quotes u itself: it may hold a
// password.
func checkDatabaseURL(u string) string {
	const want = "want postgres://… or sqlite:PATH"
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || scheme == "" {
		return "missing scheme (" + want + "; key=value DSNs are not supported)"
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if !strings.HasPrefix(rest, "//") {
			return "want postgres://USER:PASSWORD@HOST:PORT/DB"
		}
		if _, err := url.Parse(u); err != nil {
			return badURL
		}
		return ""
	case "sqlite":
		if strings.HasPrefix(rest, "//") {
			return `"sqlite://" is not accepted; write sqlite:PATH (e.g. sqlite:/var/lib/extapi/extapi.db)`
		}
		if rest == "" {
			return "sqlite: needs a PATH (e.g. sqlite:extapi.db)"
		}
		return ""
	case "file":
		return `"file:" is not accepted; write sqlite:PATH`
	}
	if isSchemeText(scheme) {
		return fmt.Sprintf("unknown scheme %q (%s)", scheme, want)
	}
	return "unknown scheme (" + want + ")"
}

func checkRedisURL(s string) string {
	const want = "want redis://HOST:PORT or rediss://HOST:PORT"
	if !strings.Contains(s, "://") {
		return "missing scheme (" + want + ")"
	}
	u, err := url.Parse(s)
	if err != nil {
		return badURL
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		if isSchemeText(u.Scheme) {
			return fmt.Sprintf("unsupported scheme %q (%s)", u.Scheme, want)
		}
		return "unsupported scheme (" + want + ")"
	}
	if u.Host == "" {
		return "missing host (" + want + ")"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db != "" {
		if _, err := strconv.ParseUint(db, 10, 31); err != nil {
			return "path must be a database number, as in redis://HOST:PORT/0"
		}
	}
	// Sentinel (?master_name=NAME) and Cluster (?cluster=true, or more nodes as ?addr=HOST:PORT).
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "the query does not parse"
	}
	sentinel, cluster := q.Has("master_name"), q.Has("cluster") || (q.Has("addr") && !q.Has("master_name"))
	switch {
	case sentinel && q.Get("master_name") == "":
		return "master_name is empty (want ?master_name=NAME, the master the sentinels monitor)"
	case q.Has("cluster") && q.Get("cluster") != "true":
		return "cluster must be true (or leave it out)"
	case sentinel && q.Has("cluster"):
		return "master_name (Sentinel) and cluster cannot go together"
	case cluster && db != "":
		return "a Cluster has no database number: leave the path out"
	}
	for i, a := range q["addr"] {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || !validPort(port) {
			// Not quoted: a mistyped addr may hold credentials.
			return fmt.Sprintf("addr number %d is not HOST:PORT", i+1)
		}
	}
	return ""
}

func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

// badURL is the message for a url.Parse failure. It does not repeat the parser's reason, which
// can quote part of the URL, and so of a password with an unescaped '/' or '#'.
const badURL = "not a valid URL (percent-encode characters such as / # ? @ : in the user name or password)"

func isSchemeText(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func isTokenText(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func checkAddr(a string) string {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Sprintf("%q is not HOST:PORT (e.g. 127.0.0.1:8080 or :8080)", a)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("port %q must be a number 0-65535", port)
	}
	return ""
}

// checkKeys checks keys built in code (Load's parser already reports these per item).
func checkKeys(keys []Key) []string {
	var probs []string
	seen := make(map[uint32]int, len(keys))
	for _, k := range keys {
		seen[k.Version]++
		if seen[k.Version] == 2 {
			probs = append(probs, fmt.Sprintf("version %d listed twice", k.Version))
		}
		if k.Version == 0 {
			if seen[0] == 1 {
				probs = append(probs, "version 0 is not allowed (want 1..4294967295)")
			}
			continue
		}
		if len(k.Bytes) != KeySize {
			probs = append(probs, fmt.Sprintf("version %d: key must be %d bytes, got %d", k.Version, KeySize, len(k.Bytes)))
		}
	}
	return probs
}

// Load reads the file named by EXTAPI_CONFIG (if any), then applies environment variables over
// it (env wins), then SetDefaults, then Validate. lookupEnv is injected (os.LookupEnv in
// production) so tests touch no globals. A variable set to the empty string (after trimming
// spaces) counts as unset. Every problem, from parsing and from validation, is collected; on
// error Load returns the partially-filled Config and the joined error.
func Load(lookupEnv func(string) (string, bool)) (*Config, error) {
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(name)
		v = strings.TrimSpace(v)
		return v, ok && v != ""
	}
	c := &Config{AutoMigrate: true}
	var errs []error
	type raw struct{ val, label string }
	vals := make(map[string]raw)

	if path, ok := env(envConfig); ok {
		c.ConfigFile = path
		fileVals, fileErrs := readFile(path)
		errs = append(errs, fileErrs...)
		for key, v := range fileVals {
			vals[envPrefix+strings.ToUpper(key)] = raw{v, path + ": " + key}
		}
	}
	for _, s := range specs {
		if s.Name == envConfig {
			continue
		}
		if v, ok := env(s.Name); ok {
			vals[s.Name] = raw{v, s.Name}
		}
	}

	keysFailed := false
	for _, s := range specs {
		r, ok := vals[s.Name]
		if !ok || s.set == nil {
			continue
		}
		if err := s.set(c, r.val); err != nil {
			errs = append(errs, label(r.label, err)...)
			if s.Name == envEncryptionKeys {
				keysFailed = true
			}
		}
	}

	c.SetDefaults()
	errs = append(errs, c.validate(keysFailed)...)
	return c, errors.Join(errs...)
}

// label prefixes each problem of err (one, or several joined) with where the value came from.
func label(where string, err error) []error {
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, len(list))
	for i, e := range list {
		out[i] = fmt.Errorf("%s: %w", where, e)
	}
	return out
}

// readFile decodes the optional config file into raw string values by file key.
func readFile(path string) (map[string]string, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{fmt.Errorf("%s: %w", envConfig, err)}
	}
	return decodeFile(path, data)
}
