package activities

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
)

// What every activity of the package uses: the test hook, the logger,
// the heartbeater.

// crash runs the test hook.
func (a *Stream) crash(stage string, partition int32) error {
	if a.hook == nil {
		return nil
	}
	return a.hook(stage, partition)
}

// logger returns the activity's logger with the workflow id and attempt.
func (a *Stream) logger(ctx context.Context) *slog.Logger { return activityLogger(ctx, a.log) }

// activityLogger is base with the workflow id, activity type and attempt of
// the activity running in ctx, so that log lines name the run whose history
// shows it.
func activityLogger(ctx context.Context, base *slog.Logger) *slog.Logger {
	if !activity.IsActivity(ctx) {
		return base
	}
	info := activity.GetInfo(ctx)
	return base.With("workflow_id", info.WorkflowExecution.ID, "activity", info.ActivityType.Name, "attempt", info.Attempt)
}

// heartbeater records the latest progress as the heartbeat detail, right
// away when it changes and every interval in between, from one goroutine.
type heartbeater struct {
	mu     sync.Mutex
	cur    any
	kick   chan struct{}
	done   chan struct{}
	exited chan struct{}
}

func newHeartbeater(ctx context.Context, every time.Duration) *heartbeater {
	h := &heartbeater{kick: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		close(h.exited)
		return h
	}
	go func() {
		defer close(h.exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
			case <-h.kick:
			}
			h.mu.Lock()
			cur := h.cur
			h.mu.Unlock()
			activity.RecordHeartbeat(ctx, cur)
		}
	}()
	return h
}

func (h *heartbeater) set(v any) {
	h.mu.Lock()
	h.cur = v
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *heartbeater) stop() {
	select {
	case <-h.done:
	default:
		close(h.done)
	}
	<-h.exited
}
