// Command extapi is the outbound authenticating gateway: `extapi serve` runs it; the other
// subcommands migrate the database and manage encryption keys.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes scripts can rely on.
const (
	exitOK     = 0 // success
	exitFail   = 1 // the command ran and failed (database unreachable, a secret that does not open, …)
	exitUsage  = 2 // unknown subcommand or flag
	exitConfig = 3 // the configuration is invalid; every problem is printed
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type env struct {
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

type command struct {
	name, summary string
	run           func(e env, args []string) int
}

func commands() []command {
	return []command{
		{"serve", "run the gateway (proxy and admin listeners)", runServe},
		{"migrate", "apply database migrations and exit", runMigrate},
		{"keys generate", "print a new random encryption key", runKeysGenerate},
		{"keys rewrap", "re-encrypt every stored secret with the active key", runKeysRewrap},
		{"tokens create", "create a management API token (printed once)", runTokensCreate},
		{"tokens list", "list management API tokens", runTokensList},
		{"tokens revoke", "revoke a management API token", runTokensRevoke},
		{"import env", "create API configs from provider environment variables (STRIPE_SECRET_KEY, …)", runImportEnv},
		{"health", "check a running extapi's /healthz (for container health checks)", runHealth},
		{"version", "print the version", runVersion},
	}
}

func main() {
	os.Exit(run(os.Args[1:], env{os.Stdout, os.Stderr, os.LookupEnv}))
}

func run(args []string, e env) int {
	if len(args) == 0 || isHelp(args[0]) {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			return c.run(e, args[len(words):])
		}
	}
	if sub := subcommands(args[0]); sub != "" {
		fmt.Fprintf(e.stderr, "extapi %s: want a subcommand: %s (see extapi --help)\n", args[0], sub)
		return exitUsage
	}
	fmt.Fprintf(e.stderr, "extapi: unknown command %q (see extapi --help)\n", args[0])
	return exitUsage
}

// subcommands lists the second words of the commands whose first word is group ("" if none).
func subcommands(group string) string {
	var subs []string
	for _, c := range commands() {
		if first, second, ok := strings.Cut(c.name, " "); ok && first == group {
			subs = append(subs, second)
		}
	}
	return strings.Join(subs, ", ")
}

func isHelp(a string) bool { return a == "-h" || a == "--help" || a == "-help" || a == "help" }

func usage(w io.Writer) {
	fmt.Fprintln(w, "extapi — outbound authenticating gateway")
	fmt.Fprintln(w, "\nUsage: extapi <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun extapi <command> --help for the flags and settings of a command.")
	fmt.Fprintln(w, "Exit codes: 0 success, 1 failure, 2 usage error, 3 invalid configuration.")
}

func runVersion(e env, args []string) int {
	fs := newFlagSet(e, "version", "Print the version.")
	if code, done := parse(fs, args); done {
		return code
	}
	fmt.Fprintln(e.stdout, "extapi", version)
	return exitOK
}

// errConfig marks errors that are the configuration's fault (exit 3).
var errConfig = errors.New("invalid configuration")
