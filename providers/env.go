package providers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Env is how a provider's credentials looked as environment variables, before extapi.
type Env struct {
	Vars []EnvVar `yaml:"vars" json:"vars"`
	// Set are constant (non-secret) values put at request-form paths, like EnvVar.To.
	Set map[string]string `yaml:"set,omitempty" json:"set,omitempty"`
	// DefaultConnection creates a connection even when no variable goes to one: the
	// credential is the API's own (client credentials, service account), and requests need a
	// connection to name.
	DefaultConnection bool `yaml:"default_connection,omitempty" json:"default_connection,omitempty"`
}

// EnvVar is one value: the names it went by (the first set wins), where it goes in the
// created configuration, and whether the provider is recognised without it.
type EnvVar struct {
	Names []string `yaml:"names" json:"names"`
	// To are request-form paths: "api.<path>" in the body of POST /admin/external-apis (e.g.
	// api.api_config.oauth2.client_secret), "connection.<path>" in the body of the default
	// connection (e.g. connection.credentials.api_key, connection.provider_data.account_sid).
	To []string `yaml:"to" json:"to"`
	// Format builds the value, {} standing for the variable's ("api:{}" for Mailgun's basic
	// user). Empty: the value as it is.
	Format   string `yaml:"format,omitempty" json:"format,omitempty"`
	Optional bool   `yaml:"optional,omitempty" json:"optional,omitempty"`
	// File: the variable holds a file's path, and the file's contents are the value
	// (GOOGLE_APPLICATION_CREDENTIALS).
	File bool `yaml:"file,omitempty" json:"file,omitempty"`
}

func (e *Env) check() error {
	var errs []error
	if len(e.Vars) == 0 {
		errs = append(errs, errors.New("no vars"))
	}
	required := 0
	for i, v := range e.Vars {
		if !v.Optional {
			required++
		}
		if len(v.Names) == 0 || len(v.To) == 0 {
			errs = append(errs, fmt.Errorf("vars[%d]: names and to are required", i))
		}
		for _, to := range v.To {
			if !strings.HasPrefix(to, "api.") && !strings.HasPrefix(to, "connection.") {
				errs = append(errs, fmt.Errorf("vars[%d]: to %q must start with api. or connection.", i, to))
			}
		}
		if v.Format != "" && strings.Count(v.Format, "{}") != 1 {
			errs = append(errs, fmt.Errorf("vars[%d]: format must hold {} once", i))
		}
	}
	if required == 0 {
		errs = append(errs, errors.New("at least one var must be required"))
	}
	return errors.Join(errs...)
}

// Match is a provider recognised among environment variables.
type Match struct {
	Template *Template
	// Used are the variable names taken (never their values).
	Used []string
	// Sets are the values to put at each "api.…" and "connection.…" path. They hold secrets:
	// never print them.
	Sets map[string]string
	// Files are the paths to read for File vars, keyed like Sets.
	Files map[string]string
}

// HasConnection reports whether the match creates a default connection.
func (m *Match) HasConnection() bool {
	if m.Template.Env.DefaultConnection {
		return true
	}
	for k := range m.Sets {
		if strings.HasPrefix(k, "connection.") {
			return true
		}
	}
	for k := range m.Files {
		if strings.HasPrefix(k, "connection.") {
			return true
		}
	}
	return false
}

// Partial is a provider some but not all of whose required variables are set.
type Partial struct {
	Template *Template
	Missing  []string // one name per missing value
	Used     []string
}

// Recognize finds the providers whose required variables are all set in vars (empty values
// count as unset). Unused lists the names of vars no provider took, sorted.
func Recognize(vars map[string]string) (matches []Match, partial []Partial, unused []string) {
	taken := map[string]bool{}
	for _, t := range All() {
		if t.Env == nil {
			continue
		}
		m := Match{Template: t, Sets: map[string]string{}, Files: map[string]string{}}
		var missing, seen []string
		for _, v := range t.Env.Vars {
			name, val := "", ""
			for _, n := range v.Names {
				if x := vars[n]; x != "" {
					name, val = n, x
					break
				}
			}
			if name == "" {
				if !v.Optional {
					missing = append(missing, v.Names[0])
				}
				continue
			}
			seen = append(seen, name)
			if v.Format != "" {
				val = strings.Replace(v.Format, "{}", val, 1)
			}
			for _, to := range v.To {
				if v.File {
					m.Files[to] = val
				} else {
					m.Sets[to] = val
				}
			}
		}
		required := 0
		for _, v := range t.Env.Vars {
			if !v.Optional {
				required++
			}
		}
		switch {
		case len(missing) == 0:
			for k, v := range t.Env.Set {
				m.Sets[k] = v
			}
			m.Used = seen
			matches = append(matches, m)
			for _, n := range seen {
				taken[n] = true
			}
		case len(missing) < required:
			partial = append(partial, Partial{Template: t, Missing: missing, Used: seen})
		}
	}
	for n := range vars {
		if !taken[n] {
			unused = append(unused, n)
		}
	}
	slices.Sort(unused)
	// A partial family's names are reported in the partial row, not as unknown.
	for _, p := range partial {
		unused = slices.DeleteFunc(unused, func(n string) bool { return slices.Contains(p.Used, n) && !taken[n] })
	}
	return matches, partial, unused
}

// LooksLikeCredential reports whether a variable's name suggests a credential (…_KEY,
// …_SECRET, …_TOKEN, …), for listing unrecognised ones of the process environment without
// listing PATH and HOME.
func LooksLikeCredential(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "_SID", "CLIENT_ID", "APP_ID", "CREDENTIAL"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
