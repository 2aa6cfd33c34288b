package oauth

import (
	"context"
	"fmt"
	"time"

	"github.com/extapi/extapi/store"
)

// What the OAuth 2.0 and OAuth 1.0a connect flows share once the provider has handed out the
// account's credentials: the new connection and storing it.

// flowConnection is who a finished flow connects: the fields the authorization was started with.
type flowConnection struct {
	userID, partnerID, salesChannelID, name string
}

// newConnection is the connection a finished flow creates for api: active, authenticated now,
// with a new id; an empty tenant or name is the API's. Credentials are for the caller to seal
// (they are bound to the id).
func newConnection(api *store.ExternalAPI, f flowConnection, providerData map[string]any, now time.Time) *store.Connection {
	if providerData == nil {
		providerData = map[string]any{}
	}
	conn := &store.Connection{
		ID: store.NewID(store.PrefixConnection), ExternalAPIID: api.ID, UserID: f.userID,
		PartnerID: f.partnerID, SalesChannelID: f.salesChannelID, ConnectionName: f.name,
		Status: store.ConnActive, AuthenticatedAt: &now, ProviderData: providerData,
	}
	if conn.PartnerID == "" {
		conn.PartnerID = api.PartnerID
	}
	if conn.SalesChannelID == "" {
		conn.SalesChannelID = api.SalesChannelID
	}
	if conn.ConnectionName == "" {
		conn.ConnectionName = api.Name
	}
	return conn
}

// txStore runs a function in one transaction; StateStore and OAuth1Store have it.
type txStore interface {
	Tx(ctx context.Context, fn func(tx *store.Store) error) error
}

// createConnection stores conn in one transaction with its change notification (so every
// instance's cache learns of it) and its connection.create audit event by actor, whose changes
// are via (the flow), the status, the name and what the caller adds (which secrets were set).
func createConnection(ctx context.Context, s txStore, conn *store.Connection, actor, via string,
	secrets map[string]any, now time.Time) error {
	changes := map[string]any{"via": via, "status": conn.Status, "connection_name": conn.ConnectionName}
	for k, v := range secrets {
		changes[k] = v
	}
	err := s.Tx(ctx, func(tx *store.Store) error {
		if err := tx.CreateConnection(ctx, conn); err != nil {
			return err
		}
		if err := tx.PublishChange(ctx, store.Change{Kind: store.ChangeConnection, ID: conn.ID}); err != nil {
			return err
		}
		return tx.AddAudit(ctx, &store.AuditEvent{At: now, Actor: actor, Action: "connection.create",
			TargetType: targetConnection, TargetID: conn.ID, SalesChannelID: conn.SalesChannelID,
			PartnerID: conn.PartnerID, Changes: changes})
	})
	if err != nil {
		return fmt.Errorf("oauth: create connection: %w", err)
	}
	return nil
}
