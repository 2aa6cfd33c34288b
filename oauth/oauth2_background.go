package oauth

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/extapi/extapi/store"
)

// BackgroundOptions configure NewBackground. Refresher is required.
type BackgroundOptions struct {
	Refresher *Refresher
	// Connector, when set, has its expired states purged on every pass.
	Connector *Connector
	// OAuth1, when set, has its expired OAuth 1.0a flows purged on every pass.
	OAuth1 *OAuth1Connector
	// Horizon: connections whose token expires within it are refreshed. Default 10 min; it
	// should exceed Interval plus the Refresher's skew, so requests rarely refresh in-line, and
	// stay below the providers' token lifetimes, or every pass renews every token.
	Horizon time.Duration
	// Interval between passes. Default 1 min.
	Interval time.Duration
	// Ticks, when set, replaces the interval ticker (tests send on it).
	Ticks <-chan time.Time
	// Concurrency of refreshes within a pass. Default 4.
	Concurrency int
	Log         *slog.Logger
}

// Background refreshes tokens ahead of use, so most requests never wait for a refresh. Every
// instance may run one: each refresh takes the connection's lock and, having it, skips a
// connection another instance already renewed, so one instance at a time refreshes a connection.
type Background struct {
	r           *Refresher
	conn        *Connector
	oauth1      *OAuth1Connector
	horizon     time.Duration
	interval    time.Duration
	ticks       <-chan time.Time
	concurrency int
	log         *slog.Logger
}

// NewBackground returns a Background; Run starts it.
func NewBackground(o BackgroundOptions) *Background {
	b := &Background{r: o.Refresher, conn: o.Connector, oauth1: o.OAuth1, horizon: o.Horizon, interval: o.Interval, ticks: o.Ticks,
		concurrency: o.Concurrency, log: o.Log}
	if b.horizon <= 0 {
		b.horizon = 10 * time.Minute
	}
	if b.interval <= 0 {
		b.interval = time.Minute
	}
	if b.concurrency <= 0 {
		b.concurrency = 4
	}
	if b.log == nil {
		b.log = o.Refresher.log
	}
	return b
}

// PassResult counts what one pass did.
type PassResult struct {
	Due       int // connections found expiring within the horizon, and tried
	Refreshed int // of those, refreshed by this pass or found already renewed
	Expired   int // refused by the provider and marked expired
	Failed    int // failed otherwise (left for the next pass or for in-line refresh)
	// BackedOff counts connections expiring within the horizon that were not tried: their last
	// refresh failed and they are backing off.
	BackedOff int
}

// passStepTimeout bounds each database step of a pass (a purge, the listing).
const passStepTimeout = 30 * time.Second

// maxBackoffSkip bounds how many extra rows a pass asks for to page past connections in backoff.
const maxBackoffSkip = 10 * backgroundBatchSize

// Run makes a pass on every tick until ctx is done.
func (b *Background) Run(ctx context.Context) {
	ticks := b.ticks
	if ticks == nil {
		t := time.NewTicker(b.interval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		res, err := b.Pass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			b.log.Warn("oauth: background refresh pass", "err", err)
		} else if res.Due > 0 {
			b.log.Info("oauth: background refresh pass", "due", res.Due, "refreshed", res.Refreshed,
				"expired", res.Expired, "failed", res.Failed)
		}
	}
}

// Pass refreshes, once, every connection whose token expires within the horizon (up to a batch
// of 500, soonest first, not counting those backing off after a failure, which are passed
// over), and purges old OAuth 2.0 states and OAuth 1.0a flows.
func (b *Background) Pass(ctx context.Context) (PassResult, error) {
	var res PassResult
	if b.conn != nil {
		b.step(ctx, "oauth: purge OAuth 2.0 states", b.conn.PurgeStates)
	}
	if b.oauth1 != nil {
		b.step(ctx, "oauth: purge OAuth 1.0a flows", b.oauth1.PurgeRequests)
	}
	// Connections backing off sort first (their token is the oldest) and would fill the batch
	// every pass: ask for as many more rows as there are, and pass over them.
	now := b.r.now()
	skip := min(b.r.backoff.active(lockPrefixConn, now), maxBackoffSkip)
	lctx, cancel := context.WithTimeout(ctx, passStepTimeout)
	due, err := b.r.store.ListOAuth2Expiring(lctx, now.Add(b.horizon), backgroundBatchSize+skip)
	cancel()
	if err != nil {
		return res, err
	}
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		sem = make(chan struct{}, b.concurrency)
	)
	for i := range due {
		c := &due[i]
		if !c.Credentials.RefreshToken.IsSet() {
			continue // nothing to renew it with; in-line use will mark it expired when it ends
		}
		if b.r.backoff.blocked(lockPrefixConn+c.ID, now) != nil {
			res.BackedOff++
			continue
		}
		if res.Due == backgroundBatchSize {
			break
		}
		res.Due++
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return res, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := b.r.connectionFlight(ctx, c.ID, request{purpose: ahead, within: b.horizon})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				res.Refreshed++
			case errors.Is(err, ErrConnectionExpired):
				res.Expired++
			default:
				res.Failed++
				if !errors.Is(err, store.ErrNotFound) {
					b.log.Debug("oauth: background refresh", "connection", c.ID, "err", err)
				}
			}
		})
	}
	wg.Wait()
	return res, nil
}

// step runs one purge of a pass, bounded by passStepTimeout; a failure is logged, not returned.
func (b *Background) step(ctx context.Context, what string, purge func(context.Context) (int64, error)) {
	ctx, cancel := context.WithTimeout(ctx, passStepTimeout)
	defer cancel()
	if _, err := purge(ctx); err != nil {
		b.log.Warn(what, "err", err)
	}
}
