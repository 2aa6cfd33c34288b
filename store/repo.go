package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Tenant scopes a query to one sales channel and/or partner. Empty fields do not restrict.
// A row of another tenant is reported as ErrNotFound, never as forbidden.
type Tenant struct {
	SalesChannelID string
	PartnerID      string
}

func (t Tenant) apply(db *gorm.DB, table string) *gorm.DB {
	if t.SalesChannelID != "" {
		db = db.Where(table+".sales_channel_id = ?", t.SalesChannelID)
	}
	if t.PartnerID != "" {
		db = db.Where(table+".partner_id = ?", t.PartnerID)
	}
	return db
}

// APIFilter selects external APIs. Empty fields do not restrict.
type APIFilter struct {
	Tenant
	Category, Status, Environment, Slug, Provider string
	SalesChannelID, PartnerID                     string // explicit filters, on top of the Tenant scope
	Query                                         string // case-insensitive substring of name
	Limit, Offset                                 int
}

// APIWithCount is an API and the number of its live connections.
type APIWithCount struct {
	ExternalAPI
	ConnectionsCount int64
}

// CreateAPI inserts a new API; a.ID is generated when empty. ErrConflict on a live slug clash.
func (s *Store) CreateAPI(ctx context.Context, a *ExternalAPI) error {
	if a.ID == "" {
		a.ID = NewID(PrefixAPI)
	}
	return translate(s.ctx(ctx).Create(a).Error)
}

// GetAPI returns a live API by id within the tenant scope.
func (s *Store) GetAPI(ctx context.Context, id string, t Tenant) (*ExternalAPI, error) {
	var a ExternalAPI
	err := t.apply(s.ctx(ctx), "external_apis").Where("id = ?", id).Take(&a).Error
	if err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// GetAPIForUpdate is GetAPI with a row lock (PostgreSQL), for read-modify-write inside Tx.
func (s *Store) GetAPIForUpdate(ctx context.Context, id string, t Tenant) (*ExternalAPI, error) {
	var a ExternalAPI
	db := s.ctx(ctx)
	if s.dialect == "postgres" {
		db = db.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := t.apply(db, "external_apis").Where("id = ?", id).Take(&a).Error; err != nil {
		return nil, translate(err)
	}
	return &a, nil
}

// ListAPIs returns one page of APIs, each with its live connection count, and the total matching.
func (s *Store) ListAPIs(ctx context.Context, f APIFilter) ([]APIWithCount, int64, error) {
	q := f.Tenant.apply(s.ctx(ctx).Model(&ExternalAPI{}), "external_apis")
	for _, w := range [...]struct{ col, v string }{
		{"category", f.Category}, {"status", f.Status}, {"environment", f.Environment},
		{"slug", f.Slug}, {"provider", f.Provider}, {"sales_channel_id", f.SalesChannelID}, {"partner_id", f.PartnerID},
	} {
		if w.v != "" {
			q = q.Where("external_apis."+w.col+" = ?", w.v)
		}
	}
	if f.Query != "" {
		q = q.Where("LOWER(external_apis.name) LIKE ? ESCAPE '\\'", "%"+escapeLike(strings.ToLower(f.Query))+"%")
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var apis []ExternalAPI
	if err := q.Order("external_apis.created_at DESC, external_apis.id DESC").
		Limit(f.Limit).Offset(f.Offset).Find(&apis).Error; err != nil {
		return nil, 0, err
	}
	out := make([]APIWithCount, len(apis))
	if len(apis) == 0 {
		return out, total, nil
	}
	ids := make([]string, len(apis))
	for i := range apis {
		ids[i] = apis[i].ID
		out[i].ExternalAPI = apis[i]
	}
	var counts []struct {
		ExternalAPIID string
		N             int64
	}
	// The count is tenant-scoped too, so a scoped caller never counts another tenant's rows.
	if err := f.Tenant.apply(s.ctx(ctx).Model(&Connection{}), "external_api_connections").Select("external_api_id, COUNT(*) AS n").
		Where("external_api_id IN ?", ids).Group("external_api_id").Scan(&counts).Error; err != nil {
		return nil, 0, err
	}
	byID := make(map[string]int64, len(counts))
	for _, c := range counts {
		byID[c.ExternalAPIID] = c.N
	}
	for i := range out {
		out[i].ConnectionsCount = byID[out[i].ID]
	}
	return out, total, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// UpdateAPI writes every column of a (which must be live). ErrNotFound, ErrConflict.
func (s *Store) UpdateAPI(ctx context.Context, a *ExternalAPI) error {
	res := s.ctx(ctx).Model(a).Select("*").Omit("id", "created_at", "created_by", "deleted_at").Updates(a)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteAPI soft-deletes a live API within the tenant scope.
func (s *Store) DeleteAPI(ctx context.Context, id string, t Tenant) error {
	res := t.apply(s.ctx(ctx), "external_apis").Where("id = ?", id).Delete(&ExternalAPI{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ConnectionFilter selects connections. Empty fields do not restrict.
type ConnectionFilter struct {
	Tenant
	ExternalAPIID, Status, UserID string
	Limit, Offset                 int
}

// CreateConnection inserts a connection; c.ID is generated when empty. The API must be live.
func (s *Store) CreateConnection(ctx context.Context, c *Connection) error {
	if c.ID == "" {
		c.ID = NewID(PrefixConnection)
	}
	if c.ProviderData == nil {
		c.ProviderData = map[string]any{}
	}
	return translate(s.ctx(ctx).Create(c).Error)
}

// GetConnection returns a live connection by id within the tenant scope.
func (s *Store) GetConnection(ctx context.Context, id string, t Tenant) (*Connection, error) {
	var c Connection
	err := t.apply(s.ctx(ctx), "external_api_connections").Where("id = ?", id).Take(&c).Error
	if err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// GetConnectionForUpdate is GetConnection with a row lock (PostgreSQL), for use inside Tx.
func (s *Store) GetConnectionForUpdate(ctx context.Context, id string) (*Connection, error) {
	var c Connection
	db := s.ctx(ctx)
	if s.dialect == "postgres" {
		db = db.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := db.Where("id = ?", id).Take(&c).Error; err != nil {
		return nil, translate(err)
	}
	return &c, nil
}

// ListConnections returns one page of connections and the total matching.
func (s *Store) ListConnections(ctx context.Context, f ConnectionFilter) ([]Connection, int64, error) {
	q := f.Tenant.apply(s.ctx(ctx).Model(&Connection{}), "external_api_connections")
	if f.ExternalAPIID != "" {
		q = q.Where("external_api_id = ?", f.ExternalAPIID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, err
	}
	var out []Connection
	if f.Limit > 0 {
		q = q.Limit(f.Limit).Offset(f.Offset)
	}
	if err := q.Order("created_at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// UpdateConnection writes every column of c (which must be live).
func (s *Store) UpdateConnection(ctx context.Context, c *Connection) error {
	res := s.ctx(ctx).Model(c).Select("*").Omit("id", "external_api_id", "created_at", "deleted_at").Updates(c)
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteConnection soft-deletes a live connection within the tenant scope.
func (s *Store) DeleteConnection(ctx context.Context, id string, t Tenant) error {
	res := t.apply(s.ctx(ctx), "external_api_connections").Where("id = ?", id).Delete(&Connection{})
	if res.Error != nil {
		return translate(res.Error)
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteConnectionsOfAPI soft-deletes every live connection of an API and returns their ids, so
// deleting an API (inside the same Tx) leaves no connection reachable.
func (s *Store) DeleteConnectionsOfAPI(ctx context.Context, apiID string) ([]string, error) {
	var ids []string
	if err := s.ctx(ctx).Model(&Connection{}).Where("external_api_id = ?", apiID).Order("id").Pluck("id", &ids).Error; err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	if err := s.ctx(ctx).Where("id IN ?", ids).Delete(&Connection{}).Error; err != nil {
		return nil, translate(err)
	}
	return ids, nil
}

// touchChunk is how many connections one TouchConnections statement updates (5 parameters each).
const touchChunk = 500

// TouchConnections moves last_used_at of live connections forward (never back) to the times in
// used, the proxy's batch since its last flush: one UPDATE per touchChunk connections.
func (s *Store) TouchConnections(ctx context.Context, used map[string]time.Time) error {
	ids := make([]string, 0, len(used))
	for id := range used {
		ids = append(ids, id)
	}
	// Rows in a fixed order, so concurrent flushes of several instances lock them alike.
	sort.Strings(ids)
	param := "?"
	if s.dialect == "postgres" {
		param = "?::timestamptz" // else a CASE of parameters alone is text
	}
	for len(ids) > 0 {
		chunk := ids[:min(touchChunk, len(ids))]
		ids = ids[len(chunk):]
		var cases strings.Builder
		caseArgs := make([]any, 0, 2*len(chunk))
		cases.WriteString("CASE id")
		for _, id := range chunk {
			cases.WriteString(" WHEN ? THEN " + param)
			caseArgs = append(caseArgs, id, used[id].UTC().Truncate(time.Microsecond))
		}
		cases.WriteString(" END")
		args := make([]any, 0, 5*len(chunk))
		args = append(args, caseArgs...)
		args = append(args, chunk)
		args = append(args, caseArgs...)
		q := "UPDATE external_api_connections SET last_used_at = " + cases.String() +
			" WHERE id IN ? AND deleted_at IS NULL AND (last_used_at IS NULL OR last_used_at < " + cases.String() + ")"
		if err := s.ctx(ctx).Exec(q, args...).Error; err != nil {
			return fmt.Errorf("store: touch connections: %w", err)
		}
	}
	return nil
}

// AuditFilter selects audit events, newest first.
type AuditFilter struct {
	Tenant
	TargetID, Actor, Action string
	Since, Until            time.Time // zero = open
	Limit, Offset           int
}

// AddAudit appends an audit event; e.ID and e.At are filled when empty.
func (s *Store) AddAudit(ctx context.Context, e *AuditEvent) error {
	if e.ID == "" {
		e.ID = NewID(PrefixAudit)
	}
	if e.At.IsZero() {
		e.At = time.Now().UTC().Truncate(time.Microsecond)
	}
	if e.Changes == nil {
		e.Changes = map[string]any{}
	}
	return translate(s.ctx(ctx).Create(e).Error)
}

// ListAudit returns one page of audit events, newest first, and the total matching.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, int64, error) {
	q := f.Tenant.apply(s.ctx(ctx).Model(&AuditEvent{}), "audit_events")
	if f.TargetID != "" {
		q = q.Where("target_id = ?", f.TargetID)
	}
	if f.Actor != "" {
		q = q.Where("actor = ?", f.Actor)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UTC())
	}
	var total int64
	if err := q.Session(&gorm.Session{}).Count(&total).Error; err != nil {
		return nil, 0, err
	}
	if f.Limit > 0 {
		q = q.Limit(f.Limit).Offset(f.Offset)
	}
	var out []AuditEvent
	if err := q.Order("at DESC, id DESC").Find(&out).Error; err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// KeyFingerprint is the stored key check value of one encryption key version.
type KeyFingerprint struct {
	Version     int64 `gorm:"primaryKey;autoIncrement:false"`
	Fingerprint string
	CreatedAt   time.Time
}

// TableName of the key check values.
func (KeyFingerprint) TableName() string { return "encryption_keys" }

// KeyFingerprints returns every recorded key check value.
func (s *Store) KeyFingerprints(ctx context.Context) ([]KeyFingerprint, error) {
	var out []KeyFingerprint
	err := s.ctx(ctx).Order("version").Find(&out).Error
	return out, err
}

// RecordKeyFingerprint stores the check value of a version the first time it is seen; an existing
// record is left as it is (the caller compares it).
func (s *Store) RecordKeyFingerprint(ctx context.Context, version uint32, fp string) error {
	err := s.ctx(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&KeyFingerprint{Version: int64(version), Fingerprint: fp}).Error
	if err != nil {
		return fmt.Errorf("store: record key fingerprint: %w", err)
	}
	return nil
}
