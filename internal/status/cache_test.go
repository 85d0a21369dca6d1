package status

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSnapshotCache: fifty requests at once take one snapshot; requests
// within the TTL reuse it, errors included; after the TTL the next request
// takes a new one.
func TestSnapshotCache(t *testing.T) {
	var takes atomic.Int64
	fail := atomic.Bool{}
	c := &snapshotCache{ttl: 200 * time.Millisecond, take: func(ctx context.Context) (Snapshot, error) {
		n := takes.Add(1)
		time.Sleep(50 * time.Millisecond) // ten queries and a Kafka client
		if fail.Load() {
			return Snapshot{}, errors.New("warehouse down")
		}
		return Snapshot{Topic: "events", Verdict: time.Duration(n).String()}, nil
	}}
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if s, err := c.get(context.Background()); err != nil || s.Topic != "events" {
				t.Errorf("get: %+v %v", s, err)
			}
		})
	}
	wg.Wait()
	if n := takes.Load(); n != 1 {
		t.Fatalf("50 concurrent requests took %d snapshots, want 1", n)
	}
	if _, _ = c.get(context.Background()); takes.Load() != 1 {
		t.Fatalf("a request within the TTL took a snapshot")
	}
	time.Sleep(250 * time.Millisecond)
	fail.Store(true)
	for range 3 {
		if _, err := c.get(context.Background()); err == nil {
			t.Fatal("the error was not shared")
		}
	}
	if n := takes.Load(); n != 2 {
		t.Fatalf("after the TTL, with the warehouse down: %d snapshots taken, want 2 (the error cached too)", n)
	}
}
