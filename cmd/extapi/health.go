package main

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

func runHealth(e env, args []string) int {
	fs := newFlagSet(e, "health", "GET /healthz of the extapi whose admin listener is EXTAPI_ADMIN_ADDR (or --addr);\n"+
		"exit 0 when it answers 200, 1 otherwise. Meant for container HEALTHCHECKs, where there is no curl.")
	addr := fs.String("addr", "", "admin HOST:PORT (default: EXTAPI_ADMIN_ADDR)")
	timeout := fs.Duration("timeout", 2*time.Second, "request timeout")
	if code, done := parse(fs, args); done {
		return code
	}
	if *addr == "" {
		cfg, err := loadConfig(e)
		if err != nil {
			return exitConfig
		}
		*addr = cfg.AdminAddr
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi health: --addr: %v\n", err)
		return exitUsage
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: *timeout}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi health: %v\n", err)
		return exitFail
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(e.stderr, "extapi health: /healthz answered %d\n", resp.StatusCode)
		return exitFail
	}
	fmt.Fprintln(e.stdout, "ok")
	return exitOK
}
