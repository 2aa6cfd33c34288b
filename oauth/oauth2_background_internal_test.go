package oauth

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/extapi/extapi/store"
)

// fakeBackgroundStore lists conns (soonest first, up to limit) and records what a pass did.
type fakeBackgroundStore struct {
	ConnectionStore // nil: any other method panics
	conns           []store.Connection

	mu         sync.Mutex
	read       map[string]bool // connections a refresh read (so: tried)
	deadlines  map[string]time.Duration
	lastLimit  int
	purgedFrom []string
}

func (s *fakeBackgroundStore) noteDeadline(ctx context.Context, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	s.deadlines[what] = d
}

func (s *fakeBackgroundStore) ListOAuth2Expiring(ctx context.Context, _ time.Time, limit int) ([]store.Connection, error) {
	s.noteDeadline(ctx, "list")
	s.mu.Lock()
	s.lastLimit = limit
	s.mu.Unlock()
	return s.conns[:min(limit, len(s.conns))], nil
}

func (s *fakeBackgroundStore) GetConnection(_ context.Context, id string, _ store.Tenant) (*store.Connection, error) {
	s.mu.Lock()
	s.read[id] = true
	s.mu.Unlock()
	return nil, store.ErrNotFound
}

func (s *fakeBackgroundStore) DeleteOAuth2StatesBefore(ctx context.Context, _ time.Time) (int64, error) {
	s.noteDeadline(ctx, "states")
	return 0, nil
}

func (s *fakeBackgroundStore) DeleteOAuth1RequestsBefore(ctx context.Context, _ time.Time) (int64, error) {
	s.noteDeadline(ctx, "oauth1")
	return 0, nil
}

// The other methods of StateStore and OAuth1Store are not used by a pass.
func (s *fakeBackgroundStore) CreateOAuth2State(context.Context, *store.OAuth2State) error {
	panic("unused")
}
func (s *fakeBackgroundStore) ConsumeOAuth2State(context.Context, string, time.Time) (*store.OAuth2State, error) {
	panic("unused")
}
func (s *fakeBackgroundStore) CreateOAuth1Request(context.Context, *store.OAuth1Request) error {
	panic("unused")
}
func (s *fakeBackgroundStore) ConsumeOAuth1Request(context.Context, string, string, time.Time) (*store.OAuth1Request, error) {
	panic("unused")
}
func (s *fakeBackgroundStore) GetAPI(context.Context, string, store.Tenant) (*store.ExternalAPI, error) {
	panic("unused")
}
func (s *fakeBackgroundStore) Tx(context.Context, func(*store.Store) error) error { panic("unused") }

// TestBackgroundPassesOverBackedOff: more connections than a batch are backing off and sort
// first (their tokens are the oldest); the pass still reaches the others behind them, and does
// not retry those backing off. Each database step runs under a 30 s timeout, and the pass purges
// OAuth 2.0 states and OAuth 1.0a flows.
func TestBackgroundPassesOverBackedOff(t *testing.T) {
	const backingOff, others = backgroundBatchSize + 50, 40
	s := &fakeBackgroundStore{read: map[string]bool{}, deadlines: map[string]time.Duration{}}
	// A clock that stands still: the backoffs (1 s by default) cannot run out before Pass looks.
	now := time.Now()
	r := NewRefresher(RefresherOptions{Store: s, Sealer: nil, Now: func() time.Time { return now }})
	for i := range backingOff + others {
		c := store.Connection{ID: fmt.Sprintf("conn_%04d", i)}
		c.Credentials.RefreshToken = store.Sealed(`{"iv":"x"}`)
		s.conns = append(s.conns, c)
		if i < backingOff {
			r.backoff.fail(lockPrefixConn+c.ID, now, fmt.Errorf("503"))
		}
	}
	bg := NewBackground(BackgroundOptions{Refresher: r, Connector: NewConnector(ConnectorOptions{Store: s}),
		OAuth1: &OAuth1Connector{Store: s}})
	res, err := bg.Pass(context.Background())
	if err != nil {
		t.Fatalf("Pass() = %v", err)
	}
	if res.Due != others || res.BackedOff != backingOff || res.Failed != others {
		t.Errorf("Pass() = %+v; want the %d not backing off tried (and failed: not found), %d passed over", res, others, backingOff)
	}
	for i, c := range s.conns {
		if tried := s.read[c.ID]; tried != (i >= backingOff) {
			t.Errorf("connection %s tried = %v; want %v", c.ID, tried, i >= backingOff)
		}
	}
	if s.lastLimit != backgroundBatchSize+backingOff {
		t.Errorf("listing limit = %d; want the batch plus the %d backing off", s.lastLimit, backingOff)
	}
	for _, step := range []string{"list", "states", "oauth1"} {
		d, ok := s.deadlines[step]
		if !ok || d <= 0 || d > 30*time.Second {
			t.Errorf("%s: ran %v with %v left before its deadline; want a deadline within 30 s", step, ok, d)
		}
	}
}

// TestBackgroundBatchBound: without backoffs, a pass tries at most one batch.
func TestBackgroundBatchBound(t *testing.T) {
	s := &fakeBackgroundStore{read: map[string]bool{}, deadlines: map[string]time.Duration{}}
	r := NewRefresher(RefresherOptions{Store: s})
	for i := range backgroundBatchSize + 10 {
		c := store.Connection{ID: fmt.Sprintf("conn_%04d", i)}
		c.Credentials.RefreshToken = store.Sealed(`{"iv":"x"}`)
		s.conns = append(s.conns, c)
	}
	res, err := NewBackground(BackgroundOptions{Refresher: r}).Pass(context.Background())
	if err != nil || res.Due != backgroundBatchSize || len(s.read) != backgroundBatchSize {
		t.Errorf("Pass() = %+v, %v, %d tried; want one batch of %d", res, err, len(s.read), backgroundBatchSize)
	}
}
