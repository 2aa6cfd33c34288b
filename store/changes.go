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

// changesChannel is the PostgreSQL NOTIFY channel.
const changesChannel = "extapi_changes"

// hub fans changes out to in-process subscribers (SQLite, where there is one instance).
type hub struct {
	mu   sync.Mutex
	subs map[chan Change]struct{}
}

func (h *hub) publish(ctx context.Context, c Change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- c:
		case <-ctx.Done():
			return
		}
	}
}

// PublishChange announces a change. Inside Tx it is delivered when the transaction commits
// (PostgreSQL NOTIFY semantics; on SQLite the store queues it until commit) and never if it rolls back.
func (s *Store) PublishChange(ctx context.Context, c Change) error {
	if s.dialect == "postgres" {
		if err := s.ctx(ctx).Exec("SELECT pg_notify(?, ?)", changesChannel, c.Kind+":"+c.ID).Error; err != nil {
			return fmt.Errorf("store: publish change: %w", err)
		}
		return nil
	}
	if s.pending != nil {
		*s.pending = append(*s.pending, c)
		return nil
	}
	s.hub.publish(ctx, c)
	return nil
}

// SubscribeChanges delivers every change published on any instance until ctx is done, when the
// channel is closed. On PostgreSQL it holds one LISTEN connection and reconnects on failure,
// sending ChangeAll after each reconnect. The caller must keep reading.
func (s *Store) SubscribeChanges(ctx context.Context) (<-chan Change, error) {
	out := make(chan Change, 64)
	if s.dialect != "postgres" {
		s.hub.mu.Lock()
		if s.hub.subs == nil {
			s.hub.subs = map[chan Change]struct{}{}
		}
		s.hub.subs[out] = struct{}{}
		s.hub.mu.Unlock()
		go func() {
			<-ctx.Done()
			s.hub.mu.Lock()
			delete(s.hub.subs, out)
			s.hub.mu.Unlock()
			close(out)
		}()
		return out, nil
	}
	conn, err := s.listen(ctx)
	if err != nil {
		return nil, err
	}
	go s.listenLoop(ctx, conn, out)
	return out, nil
}

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, s.url)
	if err != nil {
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+changesChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("store: listen for changes: %w", err)
	}
	return conn, nil
}

func (s *Store) listenLoop(ctx context.Context, conn *pgx.Conn, out chan<- Change) {
	defer close(out)
	backoff := 100 * time.Millisecond
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			kind, id, _ := strings.Cut(n.Payload, ":")
			select {
			case out <- Change{Kind: kind, ID: id}:
			case <-ctx.Done():
				conn.Close(context.Background())
				return
			}
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
		select {
		case out <- Change{Kind: ChangeAll}:
		case <-ctx.Done():
			conn.Close(context.Background())
			return
		}
	}
}
