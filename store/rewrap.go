package store

import (
	"context"
	"fmt"
)

// Rewrapper re-seals a blob under the active key; changed is false when it already was.
// *vault.Keyring implements it; cmd wires the two.
type Rewrapper interface {
	Rewrap(blob, aad []byte) (out []byte, changed bool, err error)
}

// RewrapStats counts what Rewrap did.
type RewrapStats struct {
	Rows      int // rows read
	Secrets   int // sealed values seen
	Rewrapped int // sealed values re-sealed
	Updated   int // rows written
}

// Rewrap re-seals every stored secret, soft-deleted rows included, to the active key version,
// batch rows at a time in id order, each batch in its own transaction. It is idempotent and
// resumable: values already at the active version are left alone, so a run that stopped halfway
// is finished by running it again. After it, older key versions can be removed from the keyring.
func (s *Store) Rewrap(ctx context.Context, r Rewrapper, batch int) (RewrapStats, error) {
	if batch <= 0 {
		batch = 500
	}
	var st RewrapStats
	// Every table with a sealed column. Each AAD is the model's own AAD method, the one its
	// writers seal with, so a re-sealed blob opens exactly where the original did.
	steps := []func() error{
		func() error {
			return rewrapTable(ctx, s, batch, &st, "external_apis", "id", "api_config",
				(*ExternalAPI).SecretFields, (*ExternalAPI).AAD, func(a *ExternalAPI) string { return a.ID }, r)
		},
		func() error {
			return rewrapTable(ctx, s, batch, &st, "external_api_connections", "id", "credentials",
				(*Connection).SecretFields, (*Connection).AAD, func(c *Connection) string { return c.ID }, r)
		},
		func() error {
			return rewrapTable(ctx, s, batch, &st, "oauth1_requests", "id", "request_token_secret",
				(*OAuth1Request).SecretFields, (*OAuth1Request).AAD, func(q *OAuth1Request) string { return q.ID }, r)
		},
		func() error {
			return rewrapTable(ctx, s, batch, &st, "oauth2_states", "id", "code_verifier",
				(*OAuth2State).SecretFields, (*OAuth2State).AAD, func(q *OAuth2State) string { return q.ID }, r)
		},
		func() error {
			// Keyed by the API it caches a token of, not by an id of its own.
			return rewrapTable(ctx, s, batch, &st, "oauth2_client_tokens", "external_api_id", "credentials",
				(*OAuth2ClientToken).SecretFields, (*OAuth2ClientToken).AAD,
				func(t *OAuth2ClientToken) string { return t.ExternalAPIID }, r)
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return st, err
		}
	}
	return st, nil
}

// rewrapTable re-seals the sealed values of one table, batch rows at a time in the order of
// keyColumn (the table's primary key; key returns a row's value of it). column is the database
// column that holds the row's sealed values, the only one written; aad is the AAD the row's
// writers seal a field with.
func rewrapTable[T any](ctx context.Context, s *Store, batch int, st *RewrapStats, table, keyColumn, column string,
	fields func(*T) []SecretField, aad func(*T, string) []byte, key func(*T) string, r Rewrapper) error {
	after := ""
	for {
		var rows []T
		err := s.Tx(ctx, func(tx *Store) error {
			if err := tx.db.Unscoped().Where(keyColumn+" > ?", after).Order(keyColumn).Limit(batch).Find(&rows).Error; err != nil {
				return err
			}
			for i := range rows {
				row := &rows[i]
				st.Rows++
				changedRow := false
				for _, f := range fields(row) {
					if !f.Value.IsSet() {
						continue
					}
					st.Secrets++
					out, changed, err := r.Rewrap(*f.Value, aad(row, f.Name))
					if err != nil {
						return fmt.Errorf("store: rewrap %s %s field %s: %w", table, key(row), f.Name, err)
					}
					if changed {
						*f.Value = out
						st.Rewrapped++
						changedRow = true
					}
				}
				if changedRow {
					// Only the sealed column changes; updated_at is left as it was.
					if err := tx.db.Unscoped().Model(row).Select(column).UpdateColumns(row).Error; err != nil {
						return err
					}
					st.Updated++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(rows) < batch {
			return nil
		}
		after = key(&rows[len(rows)-1])
	}
}
