package slo

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// AcceptedRecorder keeps an event API process's count of accepted events
// per received_at hour and stores it in pipeline.api_accepted every few
// seconds: the "accepted" layer of the completeness SLO. A crash loses at
// most the last interval's count, which can only make bronze look ahead of
// the API, never events look missing.
type AcceptedRecorder struct {
	store    *warehouse.Store
	instance string
	log      *slog.Logger

	mu     sync.Mutex
	counts map[time.Time]int64
	dirty  bool
}

// recorders numbers the recorders of this process, so that two in one
// process (tests, an embedded API) never share an instance name.
var recorders atomic.Int64

// NewAcceptedRecorder names its instance host/pid/start/n: unique per
// recorder, since each stores a running count that must not be mixed with
// another's.
func NewAcceptedRecorder(store *warehouse.Store, log *slog.Logger) *AcceptedRecorder {
	host, _ := os.Hostname()
	if log == nil {
		log = slog.Default()
	}
	return &AcceptedRecorder{store: store, log: log, counts: map[time.Time]int64{},
		instance: fmt.Sprintf("%s/%d/%s/%d", host, os.Getpid(), time.Now().UTC().Format("20060102T150405.000"), recorders.Add(1))}
}

// Add counts n events received at at; the event API calls it after its 202.
func (r *AcceptedRecorder) Add(at time.Time, n int) {
	h := at.UTC().Truncate(time.Hour)
	r.mu.Lock()
	r.counts[h] += int64(n)
	r.dirty = true
	r.mu.Unlock()
}

// Run flushes every interval until ctx is done, then once more.
func (r *AcceptedRecorder) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.Flush(fctx)
			cancel()
			return
		case <-t.C:
			r.Flush(ctx)
		}
	}
}

// Flush stores the running counts and forgets hours that can no longer grow.
func (r *AcceptedRecorder) Flush(ctx context.Context) {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return
	}
	snap := make(map[time.Time]int64, len(r.counts))
	for h, n := range r.counts {
		snap[h] = n
	}
	r.dirty = false
	r.mu.Unlock()
	if err := r.store.RecordAccepted(ctx, r.instance, snap); err != nil {
		r.log.Warn("could not store accepted counts; retrying at the next flush", "error", err)
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	old := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	for h := range r.counts {
		if h.Before(old) {
			delete(r.counts, h)
		}
	}
	r.mu.Unlock()
}
