package admin

import (
	"context"
	"net/http"
	"reflect"
	"time"

	"github.com/extapi/extapi/store"
)

// Audit actions and target types.
const (
	actionAPICreate   = "external_api.create"
	actionAPIUpdate   = "external_api.update"
	actionAPIDelete   = "external_api.delete"
	actionConnCreate  = "connection.create"
	actionConnUpdate  = "connection.update"
	actionConnDelete  = "connection.delete"
	actionTokenCreate = "token.create"
	actionTokenRevoke = "token.revoke"

	targetAPI   = "external_api"
	targetConn  = "connection"
	targetToken = "admin_token"
)

// diff compares two rows in request form (secrets left out) and returns, for every leaf that
// differs, {"old": …, "new": …}. Objects are compared member by member; arrays as a whole.
func diff(old, cur map[string]any) map[string]any {
	a, b := map[string]any{}, map[string]any{}
	flatten("", old, a)
	flatten("", cur, b)
	out := map[string]any{}
	for k, nv := range b {
		if ov, ok := a[k]; !ok || !reflect.DeepEqual(ov, nv) {
			out[k] = map[string]any{"old": a[k], "new": nv}
		}
	}
	for k, ov := range a {
		if _, ok := b[k]; !ok {
			out[k] = map[string]any{"old": ov, "new": nil}
		}
	}
	return out
}

func flatten(prefix string, v any, out map[string]any) {
	m, ok := v.(map[string]any)
	if !ok {
		if v != nil && v != "" {
			out[prefix] = v
		}
		return
	}
	for k, e := range m {
		flatten(join(prefix, k), e, out)
	}
}

// audit writes one audit event inside tx.
func audit(ctx context.Context, tx *store.Store, who *principal, action, targetType, targetID string, t store.Tenant, changes map[string]any) error {
	return tx.AddAudit(ctx, &store.AuditEvent{
		Actor: who.name, Action: action, TargetType: targetType, TargetID: targetID,
		SalesChannelID: t.SalesChannelID, PartnerID: t.PartnerID, Changes: changes,
	})
}

type auditOut struct {
	ID             string         `json:"id"`
	At             time.Time      `json:"at"`
	Actor          string         `json:"actor"`
	Action         string         `json:"action"`
	TargetType     string         `json:"target_type"`
	TargetID       string         `json:"target_id"`
	SalesChannelID string         `json:"sales_channel_id"`
	PartnerID      string         `json:"partner_id"`
	Changes        map[string]any `json:"changes"`
}

// GET /admin/audit-events
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, who *principal) error {
	q, err := parseQuery(r, "target_id", "actor", "action", "since", "until", "limit", "offset")
	if err != nil {
		return err
	}
	f := store.AuditFilter{
		Tenant: who.tenant, TargetID: q.text("target_id"), Actor: q.text("actor"), Action: q.text("action"),
		Since: q.time("since"), Until: q.time("until"),
	}
	f.Limit, f.Offset = q.page()
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		q.p.add("query.until", "must be after since")
	}
	if err := q.err(); err != nil {
		return err
	}
	events, total, err := s.store.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	writePage(w, "audit_events", events, total, f.Limit, f.Offset, func(e *store.AuditEvent) auditOut {
		return auditOut{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, TargetType: e.TargetType,
			TargetID: e.TargetID, SalesChannelID: e.SalesChannelID, PartnerID: e.PartnerID, Changes: e.Changes}
	})
	return nil
}
