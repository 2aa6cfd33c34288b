//go:build loadbench

// The load benchmark behind `make bench`: a small fasthttp upstream on loopback, called directly,
// through a real extapi process (built without -race), and through nginx doing the same header
// injection and prefix rewrite when nginx is installed. Load comes from wrk when installed, else
// from a Go generator. It prints requests/s, p50/p99 latency and each proxy's CPU-seconds per
// 10,000 requests, and rewrites the generated section of docs/BENCHMARKS.md.
//
//	go test -tags loadbench -run TestLoadBench -v -timeout 30m ./cmd/extapi/
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"
)

const (
	benchKey    = "bench-secret-key-0123456789"
	adminToken  = "loadbench-admin-token-0123456789"
	marker      = "<!-- loadbench:begin -->"
	markerEnd   = "<!-- loadbench:end -->"
	upstreamRes = `{"id":"obj_123","object":"thing","ok":true}`
)

type result struct {
	name          string
	conc          int
	rps           float64
	p50, p99      time.Duration
	cpuPer10k     float64 // CPU-seconds of the proxy process per 10,000 requests; -1 for direct
	redisPer10k   float64 // CPU-seconds of redis-server per 10,000 requests; -1 when not measured
	requests      int
	errors        int
	loadGenerator string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func TestLoadBench(t *testing.T) {
	dur := envDur("LOADBENCH_DURATION", 10*time.Second)
	dir := t.TempDir()

	// Upstream: counts requests, checks the injected key, answers a small JSON body.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var bad int64
	var mu sync.Mutex
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Request.Header.Peek("X-API-Key")) != benchKey || !bytes.HasPrefix(ctx.Path(), []byte("/base/")) {
			mu.Lock()
			bad++
			mu.Unlock()
			ctx.SetStatusCode(401)
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(upstreamRes)
	}}
	go up.Serve(upLn)
	defer up.Shutdown()
	upAddr := upLn.Addr().String()

	bin := filepath.Join(dir, "extapi")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	var results []result
	gen := "go"
	if _, err := exec.LookPath("wrk"); err == nil {
		gen = "wrk"
	}
	redisURL := os.Getenv("EXTAPI_TEST_REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	var redisCPU func() float64 // set for the runs through Redis
	measure := func(name, url string, conc int, pids func() []int) result {
		hdr := ""
		if pids == nil { // direct: the caller holds the key itself
			hdr = "X-API-Key: " + benchKey
		}
		load(t, gen, url, hdr, 2, time.Second) // warm-up: connection pools, caches
		before, rBefore := cpuOf(pids), 0.0
		if redisCPU != nil {
			rBefore = redisCPU()
		}
		r := load(t, gen, url, hdr, conc, dur)
		after := cpuOf(pids)
		r.name, r.conc, r.loadGenerator = name, conc, gen
		r.cpuPer10k, r.redisPer10k = -1, -1
		if pids != nil && r.requests > 0 {
			r.cpuPer10k = (after - before) / float64(r.requests) * 10000
		}
		if redisCPU != nil && r.requests > 0 {
			r.redisPer10k = (redisCPU() - rBefore) / float64(r.requests) * 10000
		}
		t.Logf("%-34s c=%-3d %9.0f req/s  p50 %8s  p99 %8s  cpu/10k %6.3fs  redis/10k %6.3fs  errors %d",
			name, conc, r.rps, r.p50, r.p99, r.cpuPer10k, r.redisPer10k, r.errors)
		return r
	}
	run := func(name, url string, conc int, pids func() []int) result {
		r := measure(name, url, conc, pids)
		results = append(results, r)
		return r
	}

	direct := "http://" + upAddr + "/base/v1/items?limit=10"
	for _, c := range []int{1, 64} {
		run("direct to upstream", direct, c, nil)
	}

	// extapi, embedded default (SQLite, in-process limiter).
	ex := startExtapi(t, bin, dir, nil)
	apiPlain := createAPI(t, ex.admin, "bench", "http://"+upAddr+"/base", nil)
	connPlain := createConnection(t, ex.admin, apiPlain)
	apiLimited := createAPI(t, ex.admin, "bench-limited", "http://"+upAddr+"/base",
		map[string]any{"requests_per_second": 1000000, "burst": 1000000, "scope": "api"})
	connLimited := createConnection(t, ex.admin, apiLimited)
	for _, c := range []int{1, 64} {
		run("extapi (no rate limit)", "http://"+ex.proxy+"/bench/"+connPlain+"/v1/items?limit=10", c, ex.pids)
	}
	run("extapi (in-process limit, never bites)", "http://"+ex.proxy+"/bench-limited/"+connLimited+"/v1/items?limit=10", 64, ex.pids)
	ex.stop()

	// The default configuration logs every request (info): the lines go to a file, as stderr
	// does to a container runtime's pipe.
	exl := startExtapi(t, bin, filepath.Join(dir, "logged"), map[string]string{
		"EXTAPI_ACCESS_LOG": "on", "EXTAPI_LOG_LEVEL": "info", logFileKey: filepath.Join(dir, "logged", "extapi.log")})
	apiL := createAPI(t, exl.admin, "bench", "http://"+upAddr+"/base", nil)
	connL := createConnection(t, exl.admin, apiL)
	run("extapi (access log on: the default)", "http://"+exl.proxy+"/bench/"+connL+"/v1/items?limit=10", 64, exl.pids)
	exl.stop()

	// extapi with Redis: limits shared through Redis.
	redisCPU = redisCPUOf(t, redisURL)
	exr := startExtapi(t, bin, filepath.Join(dir, "redis"), map[string]string{"EXTAPI_REDIS_URL": redisURL})
	apiR := createAPI(t, exr.admin, "bench-redis", "http://"+upAddr+"/base",
		map[string]any{"requests_per_second": 1000000, "burst": 1000000, "scope": "api"})
	connR := createConnection(t, exr.admin, apiR)
	apiR0 := createAPI(t, exr.admin, "bench-redis-off", "http://"+upAddr+"/base", nil)
	connR0 := createConnection(t, exr.admin, apiR0)
	// The cost of limiting is a difference of two noisy figures (±5% between runs here): measure
	// the pair several times, alternating, and report the median pair and the range.
	type pair struct {
		off, on result
		cost    float64
	}
	var pairs []pair
	for range envInt("LOADBENCH_REDIS_PAIRS", 3) {
		off := measure("extapi+redis (no rate limit)", "http://"+exr.proxy+"/bench-redis-off/"+connR0+"/v1/items?limit=10", 64, exr.pids)
		on := measure("extapi+redis (Redis limit, never bites)", "http://"+exr.proxy+"/bench-redis/"+connR+"/v1/items?limit=10", 64, exr.pids)
		pairs = append(pairs, pair{off, on, 100 * (1 - on.rps/off.rps)})
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].cost < pairs[j].cost })
	med := pairs[len(pairs)/2]
	results = append(results, med.off, med.on)
	redisCosts := make([]float64, len(pairs))
	for i, p := range pairs {
		redisCosts[i] = p.cost
	}
	exr.stop()
	redisCPU = nil

	// nginx doing the same work: prefix rewrite and header injection.
	if ng, err := exec.LookPath("nginx"); err == nil {
		addr, pids, stop := startNginx(t, ng, filepath.Join(dir, "nginx"), upAddr)
		for _, c := range []int{1, 64} {
			run("nginx (same injection + rewrite)", "http://"+addr+"/bench/conn_x/v1/items?limit=10", c, pids)
		}
		stop()
	} else {
		t.Log("nginx not installed: no nginx comparison (apt-get install nginx)")
	}
	// The floor of the stack: fasthttp's server and client doing only the rewrite and injection,
	// first with fasthttp's defaults, then with the options extapi's proxy sets (timeouts,
	// streamed bodies, buffers, a per-request deadline). What extapi costs above "safe" is its own.
	bare := filepath.Join(dir, "bareproxy")
	build = exec.Command("go", "build", "-o", bare, "./testdata/bareproxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bareproxy: %v\n%s", err, out)
	}
	for _, mode := range []string{"bare", "safe"} {
		addr, pids, stop := startBare(t, bare, mode, upAddr)
		run(floorNames[mode], "http://"+addr+"/bench/conn_x/v1/items?limit=10", 64, pids)
		stop()
	}
	if bad > 0 {
		t.Errorf("upstream saw %d requests without the injected key or prefix", bad)
	}
	writeReport(t, results, dur, redisCosts)
}

type extapiProc struct {
	admin, proxy string
	cmd          *exec.Cmd
	stop         func()
}

func (e *extapiProc) pids() []int { return []int{e.cmd.Process.Pid} }

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logFileKey in startExtapi's extra names a file for the process's output instead of memory.
const logFileKey = "loadbench.logfile"

func startExtapi(t *testing.T, bin, dir string, extra map[string]string) *extapiProc {
	t.Helper()
	os.MkdirAll(dir, 0o700)
	p := &extapiProc{admin: freePort(t), proxy: freePort(t)}
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"EXTAPI_DATABASE_URL=sqlite:" + filepath.Join(dir, "bench.db"),
		"EXTAPI_DEV_DIR=" + filepath.Join(dir, "dev"),
		"EXTAPI_ADMIN_ADDR=" + p.admin, "EXTAPI_PROXY_ADDR=" + p.proxy,
		"EXTAPI_ADMIN_TOKEN=" + adminToken, "EXTAPI_ACCESS_LOG=off", "EXTAPI_LOG_LEVEL=warn",
		"PATH=" + os.Getenv("PATH"),
	}
	for k, v := range extra {
		if k != logFileKey {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if name := extra[logFileKey]; name != "" {
		f, err := os.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	p.stop = func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			p.stop()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + p.admin + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("extapi did not become ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness
	}
}

func adminDo(t *testing.T, addr, method, path string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	json.Unmarshal(raw, &out)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s = %d: %s", method, path, resp.StatusCode, raw)
	}
	return out
}

func createAPI(t *testing.T, admin, slug, base string, rl map[string]any) string {
	cfg := map[string]any{"base_url": base, "auth_type": "api_key",
		"api_key": map[string]any{"key": benchKey, "header_name": "X-API-Key"}}
	if rl != nil {
		cfg["rate_limit"] = rl
	}
	out := adminDo(t, admin, "POST", "/admin/external-apis", map[string]any{
		"name": slug, "slug": slug, "category": "other", "provider": "bench", "api_config": cfg,
		"status": "active", "environment": "development", "is_sandbox": true,
	})
	return out["external_api"].(map[string]any)["id"].(string)
}

func createConnection(t *testing.T, admin, apiID string) string {
	out := adminDo(t, admin, "POST", "/admin/external-apis/"+apiID+"/connections", map[string]any{
		"connection_name": "bench", "status": "active",
	})
	return out["connection"].(map[string]any)["id"].(string)
}

func startNginx(t *testing.T, bin, dir, upAddr string) (string, func() []int, func()) {
	os.MkdirAll(filepath.Join(dir, "logs"), 0o755)
	addr := freePort(t)
	conf := fmt.Sprintf(`worker_processes 2;
error_log %[1]s/logs/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body; proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  upstream up { server %[2]s; keepalive 128; }
  server {
    listen %[3]s;
    location ~ ^/bench/[^/]+/(.*)$ {
      proxy_pass http://up/base/$1$is_args$args;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header X-API-Key "%[4]s";
    }
  }
}
`, dir, upAddr, addr, benchKey)
	cf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-p", dir, "-c", cf, "-g", "daemon off;")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitListening(t, addr, "nginx", &logs)
	pids := func() []int { return append([]int{cmd.Process.Pid}, children(cmd.Process.Pid)...) }
	return addr, pids, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}

// waitListening waits until something accepts connections on addr, for at most 10 s; then it
// fails the test with what the process (named what) printed.
func waitListening(t *testing.T, addr, what string, logs *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %s", what, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the listener
	}
}

var floorNames = map[string]string{
	"bare": "fasthttp floor (defaults)",
	"safe": "fasthttp floor (extapi's options)",
}

// startBare runs testdata/bareproxy in mode ("bare" or "safe") in front of upAddr.
func startBare(t *testing.T, bin, mode, upAddr string) (string, func() []int, func()) {
	addr := freePort(t)
	cmd := exec.Command(bin, addr, upAddr, benchKey, mode)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitListening(t, addr, "bareproxy", &logs)
	pids := func() []int { return []int{cmd.Process.Pid} }
	return addr, pids, func() { cmd.Process.Kill(); cmd.Wait() }
}

// redisCPUOf returns a reader of the Redis server's CPU-seconds (INFO cpu: used_cpu_user +
// used_cpu_sys), so that the cost of limiting through Redis counts Redis's work too.
func redisCPUOf(t *testing.T, url string) func() float64 {
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return func() float64 {
		info, err := c.Info(context.Background(), "cpu").Result()
		if err != nil {
			t.Fatalf("redis INFO cpu: %v", err)
		}
		var total float64
		for _, line := range strings.Split(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			if k == "used_cpu_user" || k == "used_cpu_sys" {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
		return total
	}
}

func children(pid int) []int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// cpuOf sums utime+stime (seconds) of the processes.
func cpuOf(pids func() []int) float64 {
	if pids == nil {
		return 0
	}
	var total float64
	for _, pid := range pids() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		total += (ut + st) / 100 // USER_HZ
	}
	return total
}

// load runs conc concurrent callers against url for d; header ("Name: value") is sent when set.
func load(t *testing.T, gen, url, header string, conc int, d time.Duration) result {
	if gen == "wrk" {
		return loadWrk(t, url, header, conc, d)
	}
	return loadGo(t, url, header, conc, d)
}

var wrkLat = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)

func loadWrk(t *testing.T, url, header string, conc int, d time.Duration) result {
	args := []string{"-t", strconv.Itoa(min(conc, 2)), "-c", strconv.Itoa(conc),
		"-d", fmt.Sprintf("%ds", max(1, int(d.Seconds()))), "--latency"}
	if header != "" {
		args = append(args, "-H", header)
	}
	out, err := exec.Command("wrk", append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	var r result
	for _, m := range wrkLat.FindAllStringSubmatch(string(out), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[m[3]]
		dd := time.Duration(math.Round(v * float64(unit)))
		if m[1] == "50" {
			r.p50 = dd
		} else {
			r.p99 = dd
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "requests in") {
			fmt.Sscanf(strings.TrimSpace(line), "%d requests in", &r.requests)
		}
		if strings.HasPrefix(line, "Requests/sec:") {
			fmt.Sscanf(strings.TrimPrefix(line, "Requests/sec:"), "%f", &r.rps)
		}
		if strings.Contains(line, "Non-2xx") {
			fmt.Sscanf(strings.TrimSpace(line), "Non-2xx or 3xx responses: %d", &r.errors)
		}
	}
	return r
}

func loadGo(t *testing.T, url, header string, conc int, d time.Duration) result {
	c := &fasthttp.Client{MaxConnsPerHost: conc * 2}
	var mu sync.Mutex
	var lats []time.Duration
	var errs int
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1<<16)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			if name, value, ok := strings.Cut(header, ": "); ok {
				req.Header.Set(name, value)
			}
			e := 0
			for time.Now().Before(stop) {
				t0 := time.Now()
				err := c.DoTimeout(req, resp, 5*time.Second)
				local = append(local, time.Since(t0))
				if err != nil || resp.StatusCode() != 200 {
					e++
				}
			}
			mu.Lock()
			lats = append(lats, local...)
			errs += e
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	r := result{requests: len(lats), errors: errs, rps: float64(len(lats)) / d.Seconds()}
	if len(lats) > 0 {
		r.p50, r.p99 = lats[len(lats)/2], lats[len(lats)*99/100]
	}
	return r
}

// writeReport rewrites the generated section of docs/BENCHMARKS.md. redisCosts are the
// throughput costs of Redis limiting of every measured pair, sorted; rs holds the median pair.
func writeReport(t *testing.T, rs []result, d time.Duration, redisCosts []float64) {
	var b strings.Builder
	cpu := "unknown CPU"
	if ci, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.+)$`).FindSubmatch(ci); m != nil {
			cpu = string(m[1])
		}
	}
	fmt.Fprintf(&b, "%s\n_Generated by `make bench` on %s — %s, %d cores (%s/%s, %s), load generator %s, %s per run, loopback only._\n\n",
		marker, time.Now().UTC().Format("2006-01-02 15:04 MST"), cpu, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		rs[0].loadGenerator, d)
	b.WriteString("| target | concurrency | requests/s | p50 | p99 | proxy CPU-s per 10k req | Redis CPU-s per 10k req | non-2xx |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		cpuS, redisS := "—", "—"
		if r.cpuPer10k >= 0 {
			cpuS = fmt.Sprintf("%.3f", r.cpuPer10k)
		}
		if r.redisPer10k >= 0 {
			redisS = fmt.Sprintf("%.3f", r.redisPer10k)
		}
		fmt.Fprintf(&b, "| %s | %d | %.0f | %s | %s | %s | %s | %d |\n", r.name, r.conc, r.rps,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), cpuS, redisS, r.errors)
	}
	// Derived figures the issues set targets for.
	find := func(name string, c int) *result {
		for i := range rs {
			if rs[i].name == name && rs[i].conc == c {
				return &rs[i]
			}
		}
		return nil
	}
	if d1, e1 := find("direct to upstream", 1), find("extapi (no rate limit)", 1); d1 != nil && e1 != nil {
		fmt.Fprintf(&b, "\n- Added p50 latency at concurrency 1: **%s** (target < 200µs).\n", (e1.p50 - d1.p50).Round(time.Microsecond))
	}
	if e, n := find("extapi (no rate limit)", 64), find("nginx (same injection + rewrite)", 64); e != nil && n != nil {
		fmt.Fprintf(&b, "- CPU per request, extapi vs nginx at concurrency 64: **%.3f s vs %.3f s per 10k** (target: extapi ≤ nginx).\n", e.cpuPer10k, n.cpuPer10k)
	}
	if e, f, n := find("extapi (no rate limit)", 64), find(floorNames["safe"], 64), find("nginx (same injection + rewrite)", 64); e != nil && f != nil && n != nil {
		fmt.Fprintf(&b, "- The floor of the stack (fasthttp with extapi's options, nothing else): **%.3f s per 10k**, %.2f× nginx; extapi's own work adds %.1f µs per request.\n",
			f.cpuPer10k, f.cpuPer10k/n.cpuPer10k, (e.cpuPer10k-f.cpuPer10k)*100)
	}
	if e, l := find("extapi (no rate limit)", 64), find("extapi (in-process limit, never bites)", 64); e != nil && l != nil {
		fmt.Fprintf(&b, "- Throughput cost of in-process limiting: **%.1f%%**.\n", 100*(1-l.rps/e.rps))
	}
	if e, l := find("extapi+redis (no rate limit)", 64), find("extapi+redis (Redis limit, never bites)", 64); e != nil && l != nil {
		fmt.Fprintf(&b, "- Throughput cost of Redis limiting: **%.1f%%** (target < 15%%; median of %d alternating pairs, range %.1f–%.1f%%).\n",
			100*(1-l.rps/e.rps), len(redisCosts), redisCosts[0], redisCosts[len(redisCosts)-1])
	}
	b.WriteString(markerEnd)

	path := "../../docs/BENCHMARKS.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s := string(doc)
	i, j := strings.Index(s, marker), strings.Index(s, markerEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %s … %s markers", path, marker, markerEnd)
	}
	s = s[:i] + b.String() + s[j+len(markerEnd):]
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
