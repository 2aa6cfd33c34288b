package admin

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/extapi/extapi/providers"
	"github.com/extapi/extapi/store"
)

// grantJWTBearer is the grant type of service accounts (RFC 7523); oauth mints their tokens.
const grantJWTBearer = "jwt_bearer"

// templateSummary is a template as GET /admin/templates lists it.
type templateSummary struct {
	Slug     string `json:"slug"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Provider string `json:"provider"`
	AuthType string `json:"auth_type"`
	Docs     string `json:"docs"`
}

// GET /admin/templates
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request, _ *principal) error {
	q, err := parseQuery(r, "category")
	if err != nil {
		return err
	}
	cat := q.enum("category", store.Categories)
	if err := q.err(); err != nil {
		return err
	}
	out := []templateSummary{}
	for _, t := range providers.All() {
		if cat != "" && t.Category != cat {
			continue
		}
		out = append(out, templateSummary{Slug: t.Slug, Name: t.Name, Category: t.Category, Provider: t.Provider,
			AuthType: t.AuthType, Docs: t.Docs})
	}
	writeJSON(w, http.StatusOK, map[string]any{"templates": out, "count": len(out)})
	return nil
}

// GET /admin/templates/{slug}
func (s *Server) getTemplate(w http.ResponseWriter, r *http.Request, _ *principal) error {
	t := providers.Get(r.PathValue("slug"))
	if t == nil {
		return notFound("template")
	}
	writeJSON(w, http.StatusOK, map[string]any{"template": t})
	return nil
}

// withTemplate expands "template": "<slug>" of a create body: the template's configuration
// (its sandbox base URL when is_sandbox is true) with the rest of the body merged over it as an
// RFC 7396 merge patch, so any field can be overridden and null removes one. The result is an
// ordinary configuration: nothing refers to the template afterwards.
func withTemplate(body map[string]any) (map[string]any, error) {
	raw, ok := body["template"]
	if !ok {
		return body, nil
	}
	slug, isStr := raw.(string)
	if !isStr {
		return nil, &ValidationError{Details: []Detail{{Path: "template", Message: "must be a template slug (GET /admin/templates)"}}}
	}
	t := providers.Get(slug)
	if t == nil {
		return nil, &ValidationError{Details: []Detail{{Path: "template", Message: "no such template (GET /admin/templates lists them)"}}}
	}
	sandbox, _ := body["is_sandbox"].(bool)
	rest := make(map[string]any, len(body))
	for k, v := range body {
		if k != "template" {
			rest[k] = v
		}
	}
	return mergePatch(toGeneric(t.Config(sandbox)), rest, "", isSecretPath(apiSecretPaths)), nil
}

// baseURLTemplate checks base_url, which may hold placeholders: their positions and names, and
// the URL around them with the ordinary rules.
func baseURLTemplate(p *problems, c *apiConfigFields[*string], u urlRule) {
	const path = "api_config.base_url"
	if !providers.HasPlaceholders(c.BaseURL) {
		u.check(p, path, c.BaseURL, true)
		return
	}
	t, err := providers.ParseURL(c.BaseURL)
	if err != nil {
		p.add(path, templateMessage(err))
		return
	}
	u.check(p, path, t.Sample(), true)
	placeholdersSet(p, path, t.Names(), c)
}

func headerTemplate(p *problems, path string, c *apiConfigFields[*string], v string) {
	if !providers.HasPlaceholders(v) {
		return
	}
	t, err := providers.ParseHeader(v)
	if err != nil {
		p.add(path, templateMessage(err))
		return
	}
	placeholdersSet(p, path, t.Names(), c)
}

// placeholdersSet: {{api_version}} and {{region}} come from the API itself, so it must have them.
func placeholdersSet(p *problems, path string, names []string, c *apiConfigFields[*string]) {
	for _, n := range names {
		switch {
		case n == "api_version" && c.APIVersion == "":
			p.add(path, "uses {{api_version}} but api_config.api_version is not set")
		case n == "region" && (c.AWSSigV4 == nil || c.AWSSigV4.Region == ""):
			p.add(path, "uses {{region}} but api_config.aws_sigv4.region is not set")
		}
	}
}

func templateMessage(err error) string {
	var te *providers.TemplateError
	if errors.As(err, &te) {
		return "template: " + te.Msg
	}
	return "is not a valid template"
}

var awsNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func validateSigV4(v *awsSigV4Fields, p *problems) {
	const s = "api_config.aws_sigv4"
	if v == nil {
		p.add(s, "required when auth_type is aws_sigv4 (service and region)")
		return
	}
	if !awsNameRE.MatchString(v.Service) {
		p.add(s+".service", "required: the signing name of the AWS service, e.g. s3 or ses")
	}
	if !awsNameRE.MatchString(v.Region) {
		p.add(s+".region", "required: an AWS region, e.g. us-east-1")
	}
}

// checkServiceAccountKey checks a service-account key file: JSON with client_email and an RSA
// private_key in PEM. The message never quotes the value.
func checkServiceAccountKey(v []byte) string {
	var k struct {
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(v, &k); err != nil {
		return "must be a service-account key file (JSON)"
	}
	if k.ClientEmail == "" {
		return "the key file has no client_email"
	}
	b, _ := pem.Decode([]byte(k.PrivateKey))
	if b == nil {
		return "the key file's private_key is not PEM"
	}
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		if _, err := x509.ParsePKCS1PrivateKey(b.Bytes); err != nil {
			return "the key file's private_key is not an RSA private key"
		}
	}
	return ""
}

// ImportActor is the audit actor of configurations created by `extapi import env`.
const ImportActor = "import-env"

// CreateAPI creates an external API (and, when conn is not nil, a connection of it) in one
// transaction through exactly the path of POST /admin/external-apis and POST
// /admin/external-apis/{id}/connections: the same decode, template expansion, validation,
// sealing, audit events and change notifications. api and conn are request bodies in generic
// JSON form. It is for callers outside HTTP (extapi import env), acting for every tenant.
func CreateAPI(ctx context.Context, st *store.Store, sealer Sealer, actor string, api, conn map[string]any) (*store.ExternalAPI, *store.Connection, error) {
	s := &Server{store: st, sealer: sealer, now: time.Now, log: slog.New(slog.DiscardHandler)}
	who := &principal{name: actor, role: roleAdmin}
	var (
		a *store.ExternalAPI
		c *store.Connection
	)
	api, conn = toGeneric(api), genericOrNil(conn)
	err := st.Tx(ctx, func(tx *store.Store) error {
		var err error
		if a, err = s.insertAPI(ctx, tx, who, api); err != nil {
			return err
		}
		if conn != nil {
			c, err = s.insertConnection(ctx, tx, who, a.ID, conn)
		}
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, nil, withMessage(err, msgSlugConflict)
	}
	if err != nil {
		return nil, nil, err
	}
	return a, c, nil
}

func genericOrNil(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return toGeneric(m)
}
