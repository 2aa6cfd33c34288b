package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/extapi/extapi/metrics"
)

// root is the repository root; tests run in deploy/.
const root = ".."

// family is a series name a query may use, with the labels it carries.
type family struct {
	base   string // the registered family (histograms: without _bucket/_sum/_count)
	labels map[string]bool
}

// targetLabels are attached by Prometheus to every scraped series.
var targetLabels = []string{"job", "instance"}

// knownSeries gathers a real registry — metrics.New plus metrics.RegisterRuntime, with every
// vector touched so it shows up — and returns the names queries may use. Prometheus' own
// per-target series (up) are added.
func knownSeries(t *testing.T) (map[string]family, []string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := metrics.New(reg)
	if err := metrics.RegisterRuntime(reg, "test"); err != nil {
		t.Fatal(err)
	}
	a := m.API("stripe")
	a.ObserveRequest(metrics.MethodGet, 200, time.Millisecond)
	a.ObserveUpstream(200, time.Millisecond)
	a.GatewayError(502)
	m.SetConnections([]metrics.ConnectionCount{{API: "stripe", Status: "active", Count: 1}})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]family{}
	var extapi []string
	for _, mf := range mfs {
		labels := map[string]bool{}
		for _, l := range targetLabels {
			labels[l] = true
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				labels[lp.GetName()] = true
			}
		}
		name := mf.GetName()
		if strings.HasPrefix(name, "extapi_") {
			extapi = append(extapi, name)
		}
		known[name] = family{name, labels}
		if mf.GetType().String() == "HISTOGRAM" {
			bucket := map[string]bool{"le": true}
			for l := range labels {
				bucket[l] = true
			}
			known[name+"_bucket"] = family{name, bucket}
			known[name+"_sum"] = family{name, labels}
			known[name+"_count"] = family{name, labels}
		}
	}
	known["up"] = family{"up", map[string]bool{"job": true, "instance": true}}
	return known, extapi
}

// checkExpr reports every metric or label name in expr that the registry does not have, and
// returns the families expr uses.
func checkExpr(known map[string]family, expr string) ([]string, error) {
	q, err := parsePromQL(expr)
	if err != nil {
		return nil, err
	}
	if len(q.selectors) == 0 {
		return nil, errors.New("selects no series")
	}
	var errs []error
	var used []string
	inScope := map[string]bool{}
	for _, sel := range q.selectors {
		fam, ok := known[sel.name]
		if !ok {
			errs = append(errs, fmt.Errorf("unknown series %q", sel.name))
			continue
		}
		used = append(used, fam.base)
		for l := range fam.labels {
			inScope[l] = true
		}
		for _, l := range sel.labels {
			if !fam.labels[l] {
				errs = append(errs, fmt.Errorf("%s has no label %q", sel.name, l))
			}
		}
	}
	for _, l := range q.grouping {
		if !inScope[l] {
			errs = append(errs, fmt.Errorf("groups by %q, which none of its series has", l))
		}
	}
	return used, errors.Join(errs...)
}

func TestParsePromQL(t *testing.T) {
	for _, tc := range []struct {
		desc, expr string
		want       promQL
	}{
		{"plain", "up", promQL{selectors: []selector{{name: "up"}}}},
		{"grafana", `sum by (api) (rate(extapi_requests_total{api=~"$api",code=~"5.."}[$__rate_interval]))`,
			promQL{selectors: []selector{{"extapi_requests_total", []string{"api", "code"}}}, grouping: []string{"api"}}},
		{"quantile", `histogram_quantile(0.99, sum by (api, le) (rate(x_bucket{a="}"}[5m]))) > 5 and sum(y) by (api)`,
			promQL{selectors: []selector{{"x_bucket", []string{"a"}}, {name: "y"}}, grouping: []string{"api", "le", "api"}}},
		{"join", `a * on(instance) group_left(version) b offset 5m`,
			promQL{selectors: []selector{{name: "a"}, {name: "b"}}, grouping: []string{"instance", "version"}}},
		{"bare matcher", `{__name__=~"extapi_.+"}`, promQL{selectors: []selector{{labels: []string{"__name__"}}}}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			got, err := parsePromQL(tc.expr)
			if err != nil {
				t.Fatalf("parsePromQL(%q) = %v", tc.expr, err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parsePromQL(%q) = %+v; want %+v", tc.expr, got, tc.want)
			}
		})
	}
	for _, bad := range []string{`x{a="b"`, `x{a="b}`, `rate(x[5m)`, `sum by api (x)`} {
		if _, err := parsePromQL(bad); err == nil {
			t.Errorf("parsePromQL(%q) = nil error; want one", bad)
		}
	}
}

// TestCheckExpr makes sure the dashboard and alert checks can fail.
func TestCheckExpr(t *testing.T) {
	known, _ := knownSeries(t)
	for _, tc := range []struct {
		desc, expr, want string
	}{
		{"ok", `sum by (api, le) (rate(extapi_upstream_duration_seconds_bucket{api=~"$api",code="200"}[5m]))`, ""},
		{"ok runtime", `sum by (instance) (go_goroutines{job="extapi"})`, ""},
		{"typo in a name", `rate(extapi_request_total[5m])`, `unknown series "extapi_request_total"`},
		{"histogram without suffix in rate", `rate(extapi_upstream_duration_seconds_buckets[5m])`, "unknown series"},
		{"label it lacks", `extapi_requests_total{status="200"}`, `has no label "status"`},
		{"le on a counter", `extapi_requests_total{le="1"}`, `has no label "le"`},
		{"grouping by a label nobody has", `sum by (connection_id) (extapi_requests_total)`, `groups by "connection_id"`},
		{"no series", `vector(1)`, "selects no series"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := checkExpr(known, tc.expr)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("checkExpr(%q) = %v; want %q", tc.expr, err, tc.want)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeYAML decodes the file at path (from the repository root) into v.
func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, path), v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Title      string         `json:"title"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

var labelValuesRE = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// TestDashboard loads deploy/grafana/extapi.json and checks every query against the registry:
// metric names, matcher labels, grouping labels; and that every extapi series is on it.
func TestDashboard(t *testing.T) {
	known, extapi := knownSeries(t)
	var d grafanaDashboard
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "deploy/grafana/extapi.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("extapi.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q, title %q; want both", d.UID, d.Title)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		q := v.Query
		if m, ok := q.(map[string]any); ok {
			q = m["query"]
		}
		s, _ := q.(string)
		mm := labelValuesRE.FindStringSubmatch(s)
		if mm == nil {
			t.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, s)
			continue
		}
		if fam, ok := known[mm[1]]; !ok || !fam.labels[mm[2]] {
			t.Errorf("variable %s: %s has no label %s", v.Name, mm[1], mm[2])
		}
	}
	for _, v := range []string{"datasource", "api"} {
		if !vars[v] {
			t.Errorf("dashboard has no $%s variable", v)
		}
	}

	used := map[string]bool{}
	ids := map[int]string{}
	var walk func([]grafanaPanel)
	queries := 0
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if other, dup := ids[p.ID]; dup {
				t.Errorf("panel id %d used by %q and %q", p.ID, other, p.Title)
			}
			ids[p.ID] = p.Title
			if p.Title == "" {
				t.Errorf("panel %d has no title", p.ID)
			}
			if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: gridPos x=%d w=%d outside the 24-column grid", p.Title, p.GridPos.X, p.GridPos.W)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v; want uid ${datasource}", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				queries++
				fams, err := checkExpr(known, tg.Expr)
				if err != nil {
					t.Errorf("panel %q query %s: %v\n\t%s", p.Title, tg.RefID, err, tg.Expr)
				}
				for _, f := range fams {
					used[f] = true
				}
			}
		}
	}
	walk(d.Panels)
	for _, name := range extapi {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
	t.Logf("%d panels, %d queries checked against %d registered series", len(ids), queries, len(known))
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestAlerts parses deploy/prometheus/alerts.yml, checks every expression's series against the
// registry, and runs promtool (check rules, the unit tests in alerts_test.yml, check config)
// when it is installed — .ci/run installs it.
func TestAlerts(t *testing.T) {
	known, _ := knownSeries(t)
	var rf ruleFile
	decodeYAML(t, "deploy/prometheus/alerts.yml", &rf)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = true
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules belong elsewhere)", g.Name)
			}
			if _, err := checkExpr(known, r.Expr); err != nil {
				t.Errorf("alert %s: %v\n\t%s", r.Alert, err, r.Expr)
			}
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: want a severity label, a summary and a description", r.Alert)
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
		}
	}
	// The list: gateway error ratio, token refresh failures, 429 storms, Redis
	// fallback, p99 latency.
	for _, want := range []string{"ExtapiHighGatewayErrorRatio", "ExtapiTokenRefreshErrors", "ExtapiTokenRefreshInvalidGrant",
		"ExtapiUpstream429Storm", "ExtapiRateLimitRedisFallback", "ExtapiHighLatencyP99"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not installed, but .ci/run installs it (Debian package prometheus)")
		}
		t.Log("promtool not installed: alerts checked by the Go parser only (apt-get install prometheus provides it)")
		return
	}
	dir := filepath.Join(root, "deploy", "prometheus")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		t.Logf("promtool %s: ok", strings.Join(args, " "))
	}
	run("check", "rules", "alerts.yml")
	run("test", "rules", "alerts_test.yml")

	// check config stats credentials_file: point it at a file that exists.
	tmp := t.TempDir()
	cfg := strings.ReplaceAll(string(readFile(t, "deploy/prometheus/prometheus.yml")), "/run/secrets/metrics_token", filepath.Join(tmp, "token"))
	for name, body := range map[string]string{"prometheus.yml": cfg, "alerts.yml": string(readFile(t, "deploy/prometheus/alerts.yml")), "token": "x"} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "config", filepath.Join(tmp, "prometheus.yml"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s", err, out)
	} else {
		t.Log("promtool check config: ok")
	}
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		Authorization struct {
			Type            string `yaml:"type"`
			CredentialsFile string `yaml:"credentials_file"`
		} `yaml:"authorization"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// compose is the part of docker-compose.yml the tests look at.
type compose struct {
	Services map[string]struct {
		Image           string            `yaml:"image"`
		Build           any               `yaml:"build"`
		ContainerName   string            `yaml:"container_name"`
		Environment     map[string]string `yaml:"environment"`
		EnvFile         any               `yaml:"env_file"`
		Ports           []string          `yaml:"ports"`
		Volumes         []string          `yaml:"volumes"`
		Secrets         []string          `yaml:"secrets"`
		DependsOn       any               `yaml:"depends_on"`
		StopGracePeriod string            `yaml:"stop_grace_period"`
		Healthcheck     any               `yaml:"healthcheck"`
		Deploy          struct {
			Replicas int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
	Secrets map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
}

var secretName = regexp.MustCompile(`(?i)password|token|secret|_keys?$|_key_`)

// interpolated matches a value that is only ${VAR…} references — nothing literal that could be
// a committed secret — and forbids a literal default (${VAR:-literal}).
var interpolated = regexp.MustCompile(`^(\$\{[A-Z_][A-Z0-9_]*(:\?[^}]*|:-)?\})+$`)

// TestCompose checks docker-compose.yml: the services, replicas against one PostgreSQL and
// Redis, secrets only from .env, mounts that exist, and the scrape path to every replica.
// Where `docker compose` works it must also accept the file; here, without it, the YAML
// checks are what runs (the test log says which).
func TestCompose(t *testing.T) {
	var c compose
	decodeYAML(t, "docker-compose.yml", &c)
	for _, s := range []string{"postgres", "redis", "extapi", "prometheus", "grafana"} {
		if _, ok := c.Services[s]; !ok {
			t.Errorf("docker-compose.yml has no service %s", s)
		}
	}
	ex := c.Services["extapi"]
	if ex.ContainerName != "" {
		t.Errorf("extapi has container_name %q: replicas cannot share one", ex.ContainerName)
	}
	if ex.Deploy.Replicas < 2 {
		t.Errorf("extapi deploy.replicas = %d; want >= 2 to show several instances on one PostgreSQL and Redis", ex.Deploy.Replicas)
	}
	for _, p := range ex.Ports {
		if strings.Contains(p, ":") {
			t.Errorf("extapi port %q binds a fixed host port: a second replica could not start", p)
		}
	}
	if d, err := time.ParseDuration(ex.StopGracePeriod); err != nil || d <= 25*time.Second {
		t.Errorf("extapi stop_grace_period = %q; want longer than the 25s EXTAPI_SHUTDOWN_TIMEOUT", ex.StopGracePeriod)
	}
	for _, k := range []string{"EXTAPI_DATABASE_URL", "EXTAPI_REDIS_URL", "EXTAPI_ENCRYPTION_KEYS", "EXTAPI_ADMIN_TOKEN", "EXTAPI_METRICS_TOKEN"} {
		if ex.Environment[k] == "" {
			t.Errorf("extapi sets no %s", k)
		}
	}
	if u := ex.Environment["EXTAPI_DATABASE_URL"]; !strings.Contains(u, "@postgres:") || !strings.Contains(u, "${POSTGRES_PASSWORD") {
		t.Errorf("EXTAPI_DATABASE_URL = %q; want the postgres service, password from .env", u)
	}
	if u := ex.Environment["EXTAPI_REDIS_URL"]; !strings.Contains(u, "//redis:") {
		t.Errorf("EXTAPI_REDIS_URL = %q; want the redis service", u)
	}
	for name, s := range c.Services {
		if s.EnvFile != nil {
			t.Errorf("%s: env_file hands every secret in .env to the container; interpolate only the ones it needs", name)
		}
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !interpolated.MatchString(v) {
				t.Errorf("%s: %s = %q is a literal; secrets come from .env as ${VAR}", name, k, v)
			}
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, "./") {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("%s mounts %s: %v", name, src, err)
				}
			}
		}
	}
	prom := c.Services["prometheus"]
	if !slices.Contains(prom.Secrets, "metrics_token") || c.Secrets["metrics_token"].Environment != "EXTAPI_METRICS_TOKEN" {
		t.Errorf("prometheus secrets %v, metrics_token %+v; want EXTAPI_METRICS_TOKEN as a secret", prom.Secrets, c.Secrets["metrics_token"])
	}

	// Prometheus reaches every replica's admin port with the token compose hands it.
	var pc promConfig
	decodeYAML(t, "deploy/prometheus/prometheus.yml", &pc)
	found := false
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName != "extapi" {
			continue
		}
		found = true
		if sc.MetricsPath != "/metrics" || sc.Authorization.CredentialsFile != "/run/secrets/metrics_token" {
			t.Errorf("extapi job: path %q, credentials %q; want /metrics and /run/secrets/metrics_token", sc.MetricsPath, sc.Authorization.CredentialsFile)
		}
		if len(sc.DNSSDConfigs) != 1 || !slices.Equal(sc.DNSSDConfigs[0].Names, []string{"extapi"}) || sc.DNSSDConfigs[0].Port != 8081 {
			t.Errorf("extapi job: dns_sd_configs %+v; want the extapi service's admin port 8081", sc.DNSSDConfigs)
		}
	}
	if !found {
		t.Error("prometheus.yml has no extapi job")
	}
	if !slices.Contains(pc.RuleFiles, "alerts.yml") || !slices.Contains(prom.Volumes, "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro") {
		t.Errorf("rule_files %v, prometheus volumes %v; want alerts.yml loaded beside prometheus.yml", pc.RuleFiles, prom.Volumes)
	}
	if !slices.Contains(c.Services["grafana"].Volumes, "./deploy/grafana/extapi.json:/var/lib/grafana/dashboards/extapi.json:ro") {
		t.Errorf("grafana volumes %v; want the dashboard where the provisioning provider looks", c.Services["grafana"].Volumes)
	}

	composeConfig(t)
}

// composeConfig runs `docker compose config` with a generated env file when docker compose
// works; without it (no plugin, as on this project's machines) it says so in the log.
func composeConfig(t *testing.T) {
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Log("docker compose config: no docker client; checked the YAML structure only")
		return
	}
	if out, err := exec.Command(docker, "compose", "version").CombinedOutput(); err != nil {
		t.Logf("docker compose config: `docker compose` unavailable (%v: %s); checked the YAML structure only", err, bytes.TrimSpace(out))
		return
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	env := "EXTAPI_ENCRYPTION_KEYS=1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nEXTAPI_ADMIN_TOKEN=t\nEXTAPI_METRICS_TOKEN=m\nPOSTGRES_PASSWORD=p\nGRAFANA_ADMIN_PASSWORD=g\n"
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(docker, "compose", "--env-file", envFile, "-f", "docker-compose.yml", "config", "--quiet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("docker compose config: %v\n%s", err, out)
		return
	}
	t.Log("docker compose config: ok")
}

// TestGrafanaProvisioning checks that the provisioned datasource is the dashboard's default
// and the dashboard provider reads the directory compose mounts the dashboard into.
func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `yaml:"datasources"`
	}
	decodeYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources = %+v; want uid prometheus at http://prometheus:9090", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "deploy/grafana/provisioning/dashboards/extapi.yml", &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard providers = %+v; want one reading /var/lib/grafana/dashboards", dp.Providers)
	}
	var d struct {
		Templating struct {
			List []struct {
				Name    string
				Query   any
				Current struct{ Value any }
			}
		}
	}
	if err := json.Unmarshal(readFile(t, "deploy/grafana/extapi.json"), &d); err != nil {
		t.Fatal(err)
	}
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && (v.Query != "prometheus" || v.Current.Value != "prometheus") {
			t.Errorf("$datasource query %v, current %v; want the provisioned prometheus", v.Query, v.Current.Value)
		}
	}
}

type k8sContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		Ports []struct {
			Name       string `yaml:"name"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
	Resources []string `yaml:"resources"`
}

func readK8s(t *testing.T, file string) []k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join("deploy/kubernetes", file))))
	var objs []k8sObject
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		objs = append(objs, o)
	}
}

// TestKubernetes checks the manifests: probes on the admin port (/healthz for startup and
// liveness, /readyz for readiness), keys from the Secret, a grace period that covers the
// shutdown timeout, non-root.
func TestKubernetes(t *testing.T) {
	var kust k8sObject
	decodeYAML(t, "deploy/kubernetes/kustomization.yaml", &kust)
	var objs []k8sObject
	for _, f := range kust.Resources {
		objs = append(objs, readK8s(t, f)...)
	}
	entries, err := os.ReadDir(filepath.Join(root, "deploy/kubernetes"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "kustomization.yaml" && !slices.Contains(kust.Resources, e.Name()) {
			t.Errorf("deploy/kubernetes/%s is not listed in kustomization.yaml", e.Name())
		}
	}
	kinds := map[string]k8sObject{}
	var services []string
	for _, o := range objs {
		kinds[o.Kind] = o
		if o.Kind == "Service" {
			for _, p := range o.Spec.Ports {
				services = append(services, o.Metadata.Name+":"+p.TargetPort)
			}
		}
	}
	sort.Strings(services)
	if want := []string{"extapi-admin:admin", "extapi:proxy"}; !slices.Equal(services, want) {
		t.Errorf("services = %v; want %v", services, want)
	}
	dep, ok := kinds["Deployment"]
	if !ok || len(dep.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want a Deployment with one container; got %+v", kinds)
	}
	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	env := map[string]string{}
	secrets := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secrets[e.Name] = e.ValueFrom.SecretKeyRef.Name
		}
	}
	if env["EXTAPI_ADMIN_ADDR"] != fmt.Sprintf("0.0.0.0:%d", ports["admin"]) || env["EXTAPI_PROXY_ADDR"] != fmt.Sprintf("0.0.0.0:%d", ports["proxy"]) {
		t.Errorf("listen addresses %q, %q do not match the container ports %v", env["EXTAPI_ADMIN_ADDR"], env["EXTAPI_PROXY_ADDR"], ports)
	}
	for _, k := range []string{"EXTAPI_DATABASE_URL", "EXTAPI_REDIS_URL", "EXTAPI_ENCRYPTION_KEYS", "EXTAPI_ADMIN_TOKEN", "EXTAPI_METRICS_TOKEN"} {
		if secrets[k] != "extapi" {
			t.Errorf("%s does not come from the Secret extapi", k)
		}
	}
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"startupProbe", c.StartupProbe, "/healthz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != "admin" {
			t.Errorf("%s = %+v; want GET %s on port admin", p.name, p.probe, p.path)
		}
	}
	shutdown, err := time.ParseDuration(env["EXTAPI_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Errorf("EXTAPI_SHUTDOWN_TIMEOUT: %v", err)
	}
	need := shutdown + time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= need {
		t.Errorf("terminationGracePeriodSeconds %v; want more than preStop + EXTAPI_SHUTDOWN_TIMEOUT = %v", grace, need)
	}
	if !pod.SecurityContext.RunAsNonRoot || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation || !c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("security context: runAsNonRoot %v, allowPrivilegeEscalation %v, readOnlyRootFilesystem %v; want true, false, true",
			pod.SecurityContext.RunAsNonRoot, c.SecurityContext.AllowPrivilegeEscalation, c.SecurityContext.ReadOnlyRootFilesystem)
	}
	if _, ok := kinds["PodDisruptionBudget"]; !ok {
		t.Error("no PodDisruptionBudget")
	}
}

// TestDockerfile checks the Dockerfile's promises: multi-stage, static, non-root, a
// HEALTHCHECK through `extapi health`, and a version the binary really has.
func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	var froms, users []string
	var health string
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
		case "USER":
			users = append(users, f[1])
		case "HEALTHCHECK":
			health = line
		}
	}
	if len(froms) < 2 {
		t.Errorf("Dockerfile has %d stages; want a build stage and a minimal final one", len(froms))
	}
	if final := froms[len(froms)-1]; !strings.Contains(final, "distroless/static") && !strings.Contains(final, "scratch") {
		t.Errorf("final stage %q; want distroless/static or scratch", final)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %v; want a non-root user in the final stage", users)
	}
	if !strings.Contains(df, "CGO_ENABLED=0") {
		t.Error("Dockerfile does not build with CGO_ENABLED=0")
	}
	if !strings.Contains(health, `"extapi", "health"`) && !strings.Contains(health, `/extapi", "health"`) {
		t.Errorf("HEALTHCHECK %q; want `extapi health`", health)
	}
	if strings.Contains(df, "-X main.version=") && !strings.Contains(string(readFile(t, "cmd/extapi/main.go")), "var version") {
		t.Error("Dockerfile sets main.version, which cmd/extapi does not declare")
	}
	if di := string(readFile(t, ".dockerignore")); !strings.Contains(di, ".env") || !strings.Contains(di, ".extapi-dev") {
		t.Errorf(".dockerignore must keep .env and the dev key directory out of the build context:\n%s", di)
	}
}
