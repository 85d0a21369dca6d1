package status

import (
	"context"
	"sync"
	"time"
)

// DefaultCacheFor is how long the status page and its JSON reuse one
// snapshot: a snapshot is about ten queries and a Kafka client, and a flood
// of requests (or many open tabs refreshing every 10 s) must cost no more
// than one of them.
const DefaultCacheFor = 5 * time.Second

// snapshotCache shares one snapshot among the requests of CacheFor, and one
// computation among the requests that arrive while it runs. An error is
// shared the same way, so a warehouse that is down is asked once per
// CacheFor, not once per request.
type snapshotCache struct {
	take func(context.Context) (Snapshot, error)
	ttl  time.Duration

	mu       sync.Mutex
	at       time.Time
	snap     Snapshot
	err      error
	inflight chan struct{}
}

// get returns the cached snapshot, or takes one. The snapshot is taken with
// a context of its own (8 s): a client that goes away does not fail the
// others waiting for it.
func (c *snapshotCache) get(ctx context.Context) (Snapshot, error) {
	c.mu.Lock()
	for {
		if !c.at.IsZero() && time.Since(c.at) < c.ttl {
			snap, err := c.snap, c.err
			c.mu.Unlock()
			return snap, err
		}
		if c.inflight == nil {
			break
		}
		wait := c.inflight
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return Snapshot{}, ctx.Err()
		}
		c.mu.Lock()
	}
	done := make(chan struct{})
	c.inflight = done
	c.mu.Unlock()

	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 8*time.Second)
	snap, err := c.take(tctx)
	cancel()

	c.mu.Lock()
	c.snap, c.err, c.at, c.inflight = snap, err, time.Now(), nil
	c.mu.Unlock()
	close(done)
	return snap, err
}
