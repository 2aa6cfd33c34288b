package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/extapi/extapi/config"
)

func newFlagSet(e env, name, doc string) *flag.FlagSet {
	fs := flag.NewFlagSet("extapi "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stdout, "Usage: extapi %s [flags]\n\n%s\n", name, doc)
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(e.stdout, "\nFlags:")
			fs.SetOutput(e.stdout)
			fs.PrintDefaults()
			fs.SetOutput(e.stderr)
		}
	}
	return fs
}

// parse parses flags; done reports that the command should return code now (help or bad flags).
func parse(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return exitOK, false
}

// settingsDoc lists the environment variables, for --help of commands that read them.
func settingsDoc() string {
	s := "Settings (environment variables; also keys of the YAML/JSON file named by EXTAPI_CONFIG):\n"
	for _, v := range config.Vars() {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		s += fmt.Sprintf("  %-30s %s (default: %s)\n", v.Name, v.Doc, def)
	}
	return s
}

// loadConfig loads and validates the configuration, printing every problem.
func loadConfig(e env) (*config.Config, error) {
	cfg, err := config.Load(e.lookupEnv)
	if err != nil {
		fmt.Fprintf(e.stderr, "extapi: invalid configuration:\n")
		for _, line := range splitJoined(err) {
			fmt.Fprintf(e.stderr, "  - %s\n", line)
		}
		return nil, errConfig
	}
	return cfg, nil
}

func splitJoined(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitJoined(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
