package admin

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"

	"github.com/extapi/extapi/store"
)

const msgSlugConflict = "an external API with this slug already exists in this environment and tenant"

// GET /admin/external-apis
func (s *Server) listAPIs(w http.ResponseWriter, r *http.Request, who *principal) error {
	q, err := parseQuery(r, "category", "status", "environment", "slug", "provider", "sales_channel_id", "partner_id", "q", "limit", "offset")
	if err != nil {
		return err
	}
	f := store.APIFilter{
		Tenant: who.tenant, Category: q.enum("category", store.Categories), Status: q.enum("status", apiStatuses),
		Environment: q.enum("environment", store.Environments), Slug: q.text("slug"), Provider: q.text("provider"),
		SalesChannelID: q.text("sales_channel_id"), PartnerID: q.text("partner_id"), Query: q.text("q"),
	}
	f.Limit, f.Offset = q.page()
	if err := q.err(); err != nil {
		return err
	}
	list, total, err := s.store.ListAPIs(r.Context(), f)
	if err != nil {
		return err
	}
	writePage(w, "external_apis", list, total, f.Limit, f.Offset, func(a *store.APIWithCount) apiOut {
		return toAPIOut(&a.ExternalAPI, a.ConnectionsCount)
	})
	return nil
}

// POST /admin/external-apis
func (s *Server) createAPI(w http.ResponseWriter, r *http.Request, who *principal) error {
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var a *store.ExternalAPI
	err = s.store.Tx(ctx, func(tx *store.Store) error {
		a, err = s.insertAPI(ctx, tx, who, body)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return withMessage(err, msgSlugConflict)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"external_api": toAPIOut(a, 0)})
	return nil
}

// insertAPI creates an API from a create body inside tx: template expansion, validation,
// sealing, the row, its audit event and its change notification.
func (s *Server) insertAPI(ctx context.Context, tx *store.Store, who *principal, body map[string]any) (*store.ExternalAPI, error) {
	body, err := withTemplate(body)
	if err != nil {
		return nil, err
	}
	// The id comes first: it is part of every secret's AAD.
	a := &store.ExternalAPI{ID: store.NewID(store.PrefixAPI), CreatedBy: who.name, UpdatedBy: who.name}
	changes, _, err := s.editAPI(a, nil, body, who)
	if err != nil {
		return nil, err
	}
	if err := tx.CreateAPI(ctx, a); err != nil {
		return nil, err
	}
	if err := audit(ctx, tx, who, actionAPICreate, targetAPI, a.ID, apiTenant(a), changes); err != nil {
		return nil, err
	}
	return a, tx.PublishChange(ctx, store.Change{Kind: store.ChangeAPI, ID: a.ID})
}

// GET /admin/external-apis/{id}
func (s *Server) getAPI(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	a, err := s.store.GetAPI(r.Context(), id, who.tenant)
	if err != nil {
		return withNotFound(err, "external API")
	}
	n, err := connectionsCount(r.Context(), s.store, id, who.tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"external_api": toAPIOut(a, n)})
	return nil
}

// PATCH /admin/external-apis/{id}: an RFC 7396 merge patch of the request form. A secret left out
// keeps its value; null clears it (or, for a section, removes the section with its secrets).
func (s *Server) patchAPI(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out apiOut
	err = s.store.Tx(ctx, func(tx *store.Store) error {
		old, err := tx.GetAPIForUpdate(ctx, id, who.tenant)
		if err != nil {
			return withNotFound(err, "external API")
		}
		a := *old
		a.UpdatedBy = who.name
		changes, changed, err := s.editAPI(&a, old, body, who)
		if err != nil {
			return err
		}
		// Its connections belong to its tenant (validateConn): it cannot move while it has any.
		if changed && apiTenant(&a) != apiTenant(old) {
			if n, err := connectionsCount(ctx, tx, id, store.Tenant{}); err != nil {
				return err
			} else if n > 0 {
				return &ValidationError{Details: []Detail{{Path: "sales_channel_id",
					Message: "the tenant (sales_channel_id, partner_id) of an API with connections cannot change; delete or move its connections first"}}}
			}
		}
		cur := old
		if changed {
			if err := tx.UpdateAPI(ctx, &a); err != nil {
				return err
			}
			if err := audit(ctx, tx, who, actionAPIUpdate, targetAPI, id, apiTenant(&a), changes); err != nil {
				return err
			}
			if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeAPI, ID: id}); err != nil {
				return err
			}
			if cur, err = tx.GetAPI(ctx, id, store.Tenant{}); err != nil {
				return err
			}
		}
		n, err := connectionsCount(ctx, tx, id, who.tenant)
		out = toAPIOut(cur, n)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return withMessage(err, msgSlugConflict)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"external_api": out})
	return nil
}

// DELETE /admin/external-apis/{id}: soft delete, together with every connection of the API, so
// none of them works any more.
func (s *Server) deleteAPI(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	ctx := r.Context()
	err := s.store.Tx(ctx, func(tx *store.Store) error {
		a, err := tx.GetAPIForUpdate(ctx, id, who.tenant)
		if err != nil {
			return withNotFound(err, "external API")
		}
		conns, _, err := tx.ListConnections(ctx, store.ConnectionFilter{ExternalAPIID: id})
		if err != nil {
			return err
		}
		if err := tx.DeleteAPI(ctx, id, who.tenant); err != nil {
			return err
		}
		if _, err := tx.DeleteConnectionsOfAPI(ctx, id); err != nil {
			return err
		}
		deleted := map[string]any{"deleted": map[string]any{"old": false, "new": true}}
		if err := audit(ctx, tx, who, actionAPIDelete, targetAPI, id, apiTenant(a), deleted); err != nil {
			return err
		}
		if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeAPI, ID: id}); err != nil {
			return err
		}
		for i := range conns {
			c := &conns[i]
			ch := map[string]any{"deleted": map[string]any{"old": false, "new": true}, "cause": actionAPIDelete}
			if err := audit(ctx, tx, who, actionConnDelete, targetConn, c.ID, connTenant(c), ch); err != nil {
				return err
			}
			if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: c.ID}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// editAPI applies a request body (create: old is nil) to a, whose id is set: shape check, merge
// over the current row, defaults, tenant scope, validation, sealing. It returns the audit
// changes and whether anything changed.
func (s *Server) editAPI(a, old *store.ExternalAPI, body map[string]any, who *principal) (map[string]any, bool, error) {
	var p problems
	checkShape(body, reflect.TypeFor[apiInput](), "", &p)
	if err := p.err(); err != nil {
		return nil, false, err
	}
	before := map[string]any{}
	var oldFields []store.SecretField
	if old != nil {
		before = toGeneric(apiView(old, noSecret))
		oldFields = old.SecretFields()
	}
	merged := mergePatch(copyGeneric(before), body, "", isSecretPath(apiSecretPaths))
	var in apiInput
	if err := decodeInto(merged, &in); err != nil {
		return nil, false, err
	}
	if in.Status == "" {
		in.Status = store.APIActive
	}
	if in.Environment == "" {
		in.Environment = "production"
	}
	if err := forceTenant(who, &in.SalesChannelID, &in.PartnerID); err != nil {
		return nil, false, err
	}
	ed := readSecrets(body, merged, apiSecretPaths, oldFields, &p)
	validateAPI(&in, ed.set, &p)
	ed.check(&p, in.APIConfig != nil && in.APIConfig.AuthType == store.AuthBasic)
	if err := p.err(); err != nil {
		return nil, false, err
	}
	applyAPI(a, &in)
	if err := ed.apply(s.sealer, a.SecretFields(), oldFields, a.AAD); err != nil {
		return nil, false, err
	}
	changes := diff(before, toGeneric(apiView(a, noSecret)))
	changed := len(changes) > 0 || ed.changed()
	ed.audit(apiSecretPaths, changes)
	return changes, changed, nil
}

func toAPIOut(a *store.ExternalAPI, connections int64) apiOut {
	return apiOut{
		ID: a.ID, apiFields: apiView(a, secretStatus), ConnectionsCount: connections,
		CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC(), CreatedBy: a.CreatedBy, UpdatedBy: a.UpdatedBy,
	}
}

func apiTenant(a *store.ExternalAPI) store.Tenant {
	return store.Tenant{SalesChannelID: a.SalesChannelID, PartnerID: a.PartnerID}
}

// connectionsCount counts the live connections of an API within the tenant scope.
func connectionsCount(ctx context.Context, st *store.Store, apiID string, t store.Tenant) (int64, error) {
	_, n, err := st.ListConnections(ctx, store.ConnectionFilter{Tenant: t, ExternalAPIID: apiID, Limit: 1})
	return n, err
}

// forceTenant puts a scoped token's tenant into a row it writes. Naming another tenant is
// forbidden (403); the token's own tenant or none is fine.
func forceTenant(who *principal, salesChannel, partner *string) error {
	if t := who.tenant.SalesChannelID; t != "" {
		if *salesChannel != "" && *salesChannel != t {
			return withMessage(errForbidden, "sales_channel_id: this token may only write rows of its own sales channel")
		}
		*salesChannel = t
	}
	if t := who.tenant.PartnerID; t != "" {
		if *partner != "" && *partner != t {
			return withMessage(errForbidden, "partner_id: this token may only write rows of its own partner")
		}
		*partner = t
	}
	return nil
}

// inTenant reports whether a row of tenant (salesChannel, partner) is visible in scope t.
func inTenant(t store.Tenant, salesChannel, partner string) bool {
	return (t.SalesChannelID == "" || t.SalesChannelID == salesChannel) && (t.PartnerID == "" || t.PartnerID == partner)
}

// validID reports whether id looks like an id of store.NewID with that prefix. Anything else is
// a 404 without a query (and never reaches the database as, say, invalid UTF-8).
func validID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) != 26 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if c := rest[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func notFound(what string) error { return withMessage(store.ErrNotFound, what+" not found") }

// withNotFound gives a store.ErrNotFound a message naming what was not found.
func withNotFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(what)
	}
	return err
}

// copyGeneric deep-copies a generic JSON object (mergePatch modifies its target).
func copyGeneric(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = copyGeneric(sub)
		}
		out[k] = v
	}
	return out
}
