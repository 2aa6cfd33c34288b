package admin

import (
	"context"
	"net/http"
	"reflect"
	"time"

	"github.com/extapi/extapi/store"
)

// GET /admin/external-apis/{id}/connections
func (s *Server) listConnections(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixAPI, id) {
		return notFound("external API")
	}
	q, err := parseQuery(r, "status", "user_id", "limit", "offset")
	if err != nil {
		return err
	}
	f := store.ConnectionFilter{Tenant: who.tenant, ExternalAPIID: id, Status: q.enum("status", connStatuses), UserID: q.text("user_id")}
	f.Limit, f.Offset = q.page()
	if err := q.err(); err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.store.GetAPI(ctx, id, who.tenant); err != nil {
		return withNotFound(err, "external API")
	}
	list, total, err := s.store.ListConnections(ctx, f)
	if err != nil {
		return err
	}
	writePage(w, "connections", list, total, f.Limit, f.Offset, toConnOut)
	return nil
}

// POST /admin/external-apis/{id}/connections
func (s *Server) createConnection(w http.ResponseWriter, r *http.Request, who *principal) error {
	apiID := r.PathValue("id")
	if !validID(store.PrefixAPI, apiID) {
		return notFound("external API")
	}
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var c *store.Connection
	err = s.store.Tx(ctx, func(tx *store.Store) error {
		c, err = s.insertConnection(ctx, tx, who, apiID, body)
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"connection": toConnOut(c)})
	return nil
}

// insertConnection creates a connection of an API from a create body inside tx.
func (s *Server) insertConnection(ctx context.Context, tx *store.Store, who *principal, apiID string, body map[string]any) (*store.Connection, error) {
	c := &store.Connection{ID: store.NewID(store.PrefixConnection), ExternalAPIID: apiID}
	// The row lock keeps the API from being deleted while its connection is being added.
	api, err := tx.GetAPIForUpdate(ctx, apiID, who.tenant)
	if err != nil {
		return nil, withNotFound(err, "external API")
	}
	changes, _, err := s.editConn(c, nil, api, body, who)
	if err != nil {
		return nil, err
	}
	if err := tx.CreateConnection(ctx, c); err != nil {
		return nil, err
	}
	if err := audit(ctx, tx, who, actionConnCreate, targetConn, c.ID, connTenant(c), changes); err != nil {
		return nil, err
	}
	return c, tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: c.ID})
}

// GET /admin/connections/{id}
func (s *Server) getConnection(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixConnection, id) {
		return notFound("connection")
	}
	ctx := r.Context()
	c, err := s.store.GetConnection(ctx, id, who.tenant)
	if err != nil {
		return withNotFound(err, "connection")
	}
	// A connection of a deleted API is gone with it.
	if _, err := s.store.GetAPI(ctx, c.ExternalAPIID, store.Tenant{}); err != nil {
		return withNotFound(err, "connection")
	}
	writeJSON(w, http.StatusOK, map[string]any{"connection": toConnOut(c)})
	return nil
}

// PATCH /admin/connections/{id}: a merge patch, like PATCH of an API.
func (s *Server) patchConnection(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixConnection, id) {
		return notFound("connection")
	}
	body, err := readObject(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var out connOut
	err = s.store.Tx(ctx, func(tx *store.Store) error {
		seen, err := tx.GetConnection(ctx, id, who.tenant)
		if err != nil {
			return withNotFound(err, "connection")
		}
		// Locks in the order API, then connection — the order deleting an API takes them in.
		api, err := tx.GetAPIForUpdate(ctx, seen.ExternalAPIID, store.Tenant{})
		if err != nil {
			return withNotFound(err, "connection")
		}
		old, err := tx.GetConnectionForUpdate(ctx, id)
		if err != nil || !inTenant(who.tenant, old.SalesChannelID, old.PartnerID) {
			return notFound("connection")
		}
		c := *old
		changes, changed, err := s.editConn(&c, old, api, body, who)
		if err != nil {
			return err
		}
		if !changed {
			out = toConnOut(old)
			return nil
		}
		if err := tx.UpdateConnection(ctx, &c); err != nil {
			return err
		}
		if err := audit(ctx, tx, who, actionConnUpdate, targetConn, id, connTenant(&c), changes); err != nil {
			return err
		}
		if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: id}); err != nil {
			return err
		}
		cur, err := tx.GetConnection(ctx, id, store.Tenant{})
		if err != nil {
			return err
		}
		out = toConnOut(cur)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"connection": out})
	return nil
}

// DELETE /admin/connections/{id}: soft delete.
func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request, who *principal) error {
	id := r.PathValue("id")
	if !validID(store.PrefixConnection, id) {
		return notFound("connection")
	}
	ctx := r.Context()
	err := s.store.Tx(ctx, func(tx *store.Store) error {
		c, err := tx.GetConnection(ctx, id, who.tenant)
		if err != nil {
			return withNotFound(err, "connection")
		}
		if _, err := tx.GetAPIForUpdate(ctx, c.ExternalAPIID, store.Tenant{}); err != nil {
			return withNotFound(err, "connection")
		}
		if err := tx.DeleteConnection(ctx, id, who.tenant); err != nil {
			return withNotFound(err, "connection")
		}
		deleted := map[string]any{"deleted": map[string]any{"old": false, "new": true}}
		if err := audit(ctx, tx, who, actionConnDelete, targetConn, id, connTenant(c), deleted); err != nil {
			return err
		}
		return tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: id})
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// editConn applies a request body (create: old is nil) to c, a connection of api. Like editAPI.
func (s *Server) editConn(c, old *store.Connection, api *store.ExternalAPI, body map[string]any, who *principal) (map[string]any, bool, error) {
	var p problems
	checkShape(body, reflect.TypeFor[connInput](), "", &p)
	if err := p.err(); err != nil {
		return nil, false, err
	}
	before := map[string]any{}
	var oldFields []store.SecretField
	if old != nil {
		before = toGeneric(connView(old, noSecret, noData))
		oldFields = old.SecretFields()
	}
	merged := mergePatch(copyGeneric(before), body, "", isSecretPath(connSecretPaths))
	var in connInput
	if err := decodeInto(merged, &in); err != nil {
		return nil, false, err
	}
	if in.Status == "" {
		in.Status = store.ConnActive
	}
	if err := forceTenant(who, &in.SalesChannelID, &in.PartnerID); err != nil {
		return nil, false, err
	}
	// A connection of a tenant's API belongs to that tenant unless it says otherwise (which
	// validateConn then rejects).
	if in.SalesChannelID == "" {
		in.SalesChannelID = api.SalesChannelID
	}
	if in.PartnerID == "" {
		in.PartnerID = api.PartnerID
	}
	ed := readSecrets(body, merged, connSecretPaths, oldFields, &p)
	validateConn(&in, api, ed.set, &p)
	ed.check(&p, false)
	if err := p.err(); err != nil {
		return nil, false, err
	}
	applyConn(c, &in)
	if err := ed.apply(s.sealer, c.SecretFields(), oldFields, c.AAD); err != nil {
		return nil, false, err
	}
	changes := diff(before, toGeneric(connView(c, noSecret, noData)))
	changed := len(changes) > 0 || ed.changed()
	ed.audit(connSecretPaths, changes)
	// authenticated_at is when credentials were last given.
	if len(ed.plain) > 0 {
		now := s.now().UTC().Truncate(time.Microsecond)
		c.AuthenticatedAt = &now
	}
	// The error of a failed connection no longer applies once it is set active again.
	if c.Status == store.ConnActive {
		c.ErrorMessage = ""
	}
	return changes, changed, nil
}

func toConnOut(c *store.Connection) connOut {
	return connOut{
		ID: c.ID, ExternalAPIID: c.ExternalAPIID, connFields: connView(c, secretStatus, secretStatus),
		ErrorMessage: c.ErrorMessage, LastUsedAt: utcPtr(c.LastUsedAt), LastSyncAt: utcPtr(c.LastSyncAt),
		AuthenticatedAt: utcPtr(c.AuthenticatedAt), CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

func connTenant(c *store.Connection) store.Tenant {
	return store.Tenant{SalesChannelID: c.SalesChannelID, PartnerID: c.PartnerID}
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
