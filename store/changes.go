package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Change says that a row changed, so caches on every instance drop what they hold of it.
type Change struct {
	Kind string // ChangeAPI, ChangeConnection or ChangeAll
	ID   string
}

// Change kinds.
const (
	ChangeAPI        = "api"
	ChangeConnection = "connection"
	// ChangeAll is sent after a subscription had to reconnect: notifications may have been
	// missed, so everything cached must be treated as stale.
	ChangeAll = "all"
)

// changesChannel is the PostgreSQL NOTIFY channel of a schema. NOTIFY channels are per
// database, so the schema is part of the name: instances (and tests) on different schemas of one
// database do not hear each other's changes.
func changesChannel(schema string) string { return "extapi_changes." + schema }

// subscriberBuffer is how many changes a subscriber may fall behind before they are dropped
// (and replaced by one ChangeAll).
const subscriberBuffer = 64

// subscriber is one SubscribeChanges channel. A change is offered without ever blocking the
// writer: when the reader has fallen subscriberBuffer changes behind, the change is dropped and a
// ChangeAll is owed instead, which run delivers as soon as the reader makes room. Every change the
// reader missed is thus covered by a ChangeAll it reads afterwards.
type subscriber struct {
	out  chan Change
	owed chan struct{} // holds a token while a ChangeAll is owed

	mu     sync.Mutex // guards closed against offers racing the close of out
	closed bool
}

func newSubscriber() *subscriber {
	return &subscriber{out: make(chan Change, subscriberBuffer), owed: make(chan struct{}, 1)}
}

// offer delivers c if there is room and otherwise owes the reader a ChangeAll. It never blocks.
func (s *subscriber) offer(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	select {
	case s.out <- c:
	default:
		select {
		case s.owed <- struct{}{}:
		default: // already owed
		}
	}
}

// run delivers owed ChangeAlls until ctx is done, then calls stop and closes the channel.
func (s *subscriber) run(ctx context.Context, stop func()) {
	defer func() {
		if stop != nil {
			stop()
		}
		s.mu.Lock()
		s.closed = true
		close(s.out)
		s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.owed:
			select {
			case s.out <- Change{Kind: ChangeAll}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// hub fans changes out to in-process subscribers (SQLite, where there is one instance).
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// publish offers c to every subscriber. It never blocks: neither a reader that stopped reading nor
// one unsubscribing at the same moment can hold up the writer.
func (h *hub) publish(c Change) {
	h.mu.Lock()
	subs := make([]*subscriber, 0, len(h.subs))
	for sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.offer(c)
	}
}

func (h *hub) add(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[sub] = struct{}{}
}

func (h *hub) remove(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
}

// PublishChange announces a change. Inside Tx it is delivered when the transaction commits
// (PostgreSQL NOTIFY semantics; on SQLite the store queues it until commit) and never if it rolls back.
func (s *Store) PublishChange(ctx context.Context, c Change) error {
	if s.dialect == "postgres" {
		if s.pending == nil {
			// Outside Tx the change describes a write already made: announce it even when the
			// caller's request was cancelled meanwhile, or other instances keep stale caches.
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
		}
		if err := s.ctx(ctx).Exec("SELECT pg_notify(?, ?)", s.channel, c.Kind+":"+c.ID).Error; err != nil {
			return fmt.Errorf("store: publish change: %w", err)
		}
		return nil
	}
	if s.pending != nil {
		*s.pending = append(*s.pending, c)
		return nil
	}
	s.hub.publish(c)
	return nil
}

// SubscribeChanges delivers every change published on any instance until ctx is done, when the
// channel is closed. On PostgreSQL it holds one LISTEN connection and reconnects on failure,
// sending ChangeAll after each reconnect. A reader that falls behind never holds up writers: the
// changes it has no room for are dropped and it receives a ChangeAll once it catches up, so it
// must treat everything cached as stale then.
func (s *Store) SubscribeChanges(ctx context.Context) (<-chan Change, error) {
	sub := newSubscriber()
	if s.dialect != "postgres" {
		s.hub.add(sub)
		go sub.run(ctx, func() { s.hub.remove(sub) })
		return sub.out, nil
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, err
	}
	go sub.run(ctx, nil)
	go s.listenLoop(ctx, conn, sub)
	return sub.out, nil
}

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.url)
	if err != nil {
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	return conn, nil
}

func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, sub *subscriber) {
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			kind, id, _ := strings.Cut(n.Payload, ":")
			sub.offer(Change{Kind: kind, ID: id})
			continue
		}
		conn.Close(context.Background())
		for {
			if ctx.Err() != nil {
				return
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, 5*time.Second)
			if conn, err = s.listen(ctx); err == nil {
				backoff = 100 * time.Millisecond
				break
			}
		}
		sub.offer(Change{Kind: ChangeAll})
	}
}
