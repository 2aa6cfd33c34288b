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
	err := rewrapTable(ctx, s, batch, &st, "external_apis", "api_config", func(a *ExternalAPI) []SecretField { return a.SecretFields() },
		func(a *ExternalAPI) string { return a.ID }, r)
	if err != nil {
		return st, err
	}
	err = rewrapTable(ctx, s, batch, &st, "external_api_connections", "credentials", func(c *Connection) []SecretField { return c.SecretFields() },
		func(c *Connection) string { return c.ID }, r)
	if err != nil {
		return st, err
	}
	err = rewrapTable(ctx, s, batch, &st, "oauth1_requests", OAuth1RequestSecretField, func(q *OAuth1Request) []SecretField { return q.SecretFields() },
		func(q *OAuth1Request) string { return q.ID }, r)
	return st, err
}

func rewrapTable[T any](ctx context.Context, s *Store, batch int, st *RewrapStats, table string,
	column string, fields func(*T) []SecretField, id func(*T) string, r Rewrapper) error {
	after := ""
	for {
		var rows []T
		err := s.Tx(ctx, func(tx *Store) error {
			if err := tx.db.Unscoped().Where("id > ?", after).Order("id").Limit(batch).Find(&rows).Error; err != nil {
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
					out, changed, err := r.Rewrap(*f.Value, AAD(table, id(row), f.Name))
					if err != nil {
						return fmt.Errorf("store: rewrap %s %s field %s: %w", table, id(row), f.Name, err)
					}
					if changed {
						*f.Value = out
						st.Rewrapped++
						changedRow = true
					}
				}
				if changedRow {
					// Only the JSON column changes; updated_at is left as it was.
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
		after = id(&rows[len(rows)-1])
	}
}
