package store

import "context"

// ConnectionCount is the number of live connections of one API slug in one status.
type ConnectionCount struct {
	APISlug string
	Status  string
	Count   int
}

// CountConnections counts the live (not deleted) connections of live APIs by API slug and
// status, across every tenant and environment (a slug used by several tenants is added up), in
// one query. It is what extapi_connections shows.
func (s *Store) CountConnections(ctx context.Context) ([]ConnectionCount, error) {
	var rows []struct {
		Slug   string
		Status string
		N      int
	}
	err := s.ctx(ctx).Raw(`SELECT a.slug AS slug, c.status AS status, COUNT(*) AS n
		FROM external_api_connections c JOIN external_apis a ON a.id = c.external_api_id
		WHERE c.deleted_at IS NULL AND a.deleted_at IS NULL
		GROUP BY a.slug, c.status
		ORDER BY a.slug, c.status`).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]ConnectionCount, len(rows))
	for i, r := range rows {
		out[i] = ConnectionCount{APISlug: r.Slug, Status: r.Status, Count: r.N}
	}
	return out, nil
}

// LiveAPISlugs lists the distinct slugs of the live (not deleted) APIs, across every tenant
// and environment, sorted. It tells which APIs' metric series may be dropped.
func (s *Store) LiveAPISlugs(ctx context.Context) ([]string, error) {
	var slugs []string
	err := s.ctx(ctx).Raw(`SELECT DISTINCT slug FROM external_apis WHERE deleted_at IS NULL ORDER BY slug`).
		Scan(&slugs).Error
	if err != nil {
		return nil, translate(err)
	}
	return slugs, nil
}
