package oauth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/extapi/extapi/oauth"
	"github.com/extapi/extapi/store"
)

// TestRefreshAbandonedWhenLockLost: while the token endpoint is slow, the connection's lock is
// lost (its key deleted in Redis, as an expiry during a stall would). The refresh gives up at
// once: an error, nothing written, no audit event; another instance may be refreshing by now.
func TestRefreshAbandonedWhenLockLost(t *testing.T) {
	f := pgFixture(t)
	rc := testRedis(t)
	in := f.instance(false, func(o *oauth.RefresherOptions) {
		o.Locker = oauth.NewRedisLocker(rc, oauth.RedisLockerOptions{Prefix: f.prefix, TTL: 600 * time.Millisecond})
	})
	api := f.api(nil)
	c, access, refresh := f.expiredConn(api)
	const delay = 1500 * time.Millisecond
	f.srv.SetDelay(delay)

	type result struct {
		err error
		at  time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := in.r.Token(testCtx(t), api, c)
		done <- result{err, time.Since(start)}
	}()
	// The refresh is at the provider: the lock goes.
	for f.srv.Hits("refresh_token") == 0 {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the refresh never reached the token endpoint")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n, err := rc.Del(testCtx(t), f.prefix+"conn:"+c.ID).Result(); err != nil || n != 1 {
		t.Fatalf("DEL lock key = %d, %v; want the held lock's key deleted", n, err)
	}
	res := <-done
	if !errors.Is(res.err, oauth.ErrRefreshFailed) || !errors.Is(res.err, oauth.ErrLockLost) {
		t.Fatalf("Token(lock lost mid-refresh) = %v; want ErrRefreshFailed caused by ErrLockLost", res.err)
	}
	if res.at >= delay {
		t.Errorf("Token() returned after %v; want it to give up before the token endpoint's %v answer", res.at, delay)
	}
	got := f.reload(c.ID)
	if a, r := f.tokens(got); a != access || r != refresh || got.Status != store.ConnActive || !got.UpdatedAt.Equal(c.UpdatedAt) {
		t.Errorf("connection after an abandoned refresh = %+v; want it untouched", got)
	}
	if evs := f.audits(c.ID); len(evs) != 0 {
		t.Errorf("audit events = %+v; want none", evs)
	}
}

// supersedingStore commits a change to a connection's tokens just before the refresh's own
// transaction, as another holder of a lost lock (or a re-authentication) would.
type supersedingStore struct {
	*store.Store
	before func()
}

func (s *supersedingStore) Tx(ctx context.Context, fn func(tx *store.Store) error) error {
	if b := s.before; b != nil {
		s.before = nil
		b()
	}
	return s.Store.Tx(ctx, fn)
}

// TestSaveRefusesSupersededToken: the row's refresh token changed between the refresh's read and
// its save: the save writes nothing over the newer tokens and the refresh fails.
func TestSaveRefusesSupersededToken(t *testing.T) {
	f := pgFixture(t)
	api := f.api(nil)
	c, _, _ := f.expiredConn(api)
	newerAccess, newerRefresh := f.srv.Issue("read")
	s := &supersedingStore{Store: f.db}
	s.before = func() {
		row := f.reload(c.ID)
		row.Credentials.AccessToken = sealed(t, f.kr, newerAccess, row.AAD("credentials.access_token"))
		row.Credentials.RefreshToken = sealed(t, f.kr, newerRefresh, row.AAD("credentials.refresh_token"))
		if err := f.db.UpdateConnection(testCtx(t), row); err != nil {
			t.Error(err)
		}
	}
	r := oauth.NewRefresher(oauth.RefresherOptions{Store: s, Sealer: f.kr, Now: f.clock.Now})
	_, err := r.Token(testCtx(t), api, c)
	if !errors.Is(err, oauth.ErrRefreshFailed) {
		t.Fatalf("Token(superseded during the refresh) = %v; want ErrRefreshFailed", err)
	}
	if f.srv.Hits("refresh_token") != 1 {
		t.Fatalf("refreshes = %d; want 1", f.srv.Hits("refresh_token"))
	}
	if a, rt := f.tokens(f.reload(c.ID)); a != newerAccess || rt != newerRefresh {
		t.Errorf("stored tokens = %q, %q; want the newer %q, %q kept", a, rt, newerAccess, newerRefresh)
	}
	for _, ev := range f.audits(c.ID) {
		if ev.Action == oauth.ActionTokenRefresh {
			t.Errorf("audit %+v; want no refresh recorded", ev)
		}
	}
}
