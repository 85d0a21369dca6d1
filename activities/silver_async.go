package activities

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/activity"
)

// A cycle appends to silver.events beside its flushes: the Iceberg commit of
// one batch of loads runs while the next flush reads Kafka and loads gold,
// so the stream's latency to gold does not include it (bench-stream measured
// p95 freshness 2.2 s before silver.events, 2.9 s with the append inline).
// One append is in flight at a time, on rows it owns; the rows that gather
// meanwhile wait for the next. A flush waits for the append in flight only
// when twice SilverBatchRows rows are waiting, which bounds memory.

// silverAppend is the append in flight, if any.
type silverAppend struct {
	done chan struct{}
	buf  silverBuffer // the rows it appends
	res  silverResult
	err  error
	took time.Duration
}

// running reports whether an append was started and not yet collected.
func (p *silverAppend) running() bool { return p.done != nil }

// finished reports whether the append in flight has returned.
func (p *silverAppend) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// startSilver takes buf's rows and appends them in the background.
func (a *Stream) startSilver(ctx context.Context, p *silverAppend, buf *silverBuffer, log *slog.Logger) {
	p.buf, *buf = *buf, silverBuffer{}
	p.res, p.err = silverResult{}, nil
	done := make(chan struct{})
	p.done = done
	sweepAfter := a.sweepAfter(ctx)
	go func() {
		defer close(done)
		t := time.Now()
		p.res, p.err = a.silver.sync(ctx, &p.buf, sweepAfter, false, log)
		p.took = time.Since(t)
	}()
}

// collectSilver waits for the append in flight and accounts for it in res.
// Rows a backfill's overwrite kept out go back to buf, for the next append.
func (a *Stream) collectSilver(p *silverAppend, buf *silverBuffer, res *CompactCycleResult, log *slog.Logger) error {
	if !p.running() {
		return nil
	}
	<-p.done
	p.done = nil
	res.Times.Silver += p.took
	if p.err != nil {
		return p.err
	}
	a.account(p.res, &p.buf, res, log)
	if p.res.Busy {
		buf.merge(&p.buf)
	}
	return nil
}

// account adds an append's loads and rows to res, and says when a backfill
// held the table.
func (a *Stream) account(sr silverResult, buf *silverBuffer, res *CompactCycleResult, log *slog.Logger) {
	if sr.Busy {
		log.Info("silver.events is being overwritten by a backfill: the loads' rows wait for the next append",
			"loads", len(buf.loads), "rows", buf.rows)
	}
	res.SilverLoads += len(sr.Loads)
	res.SilverRows += int64(sr.Rows)
}

// sweepAfter is how long a load another writer left pending waits before
// this cycle sweeps it. A retried cycle sweeps at once: its own crashed
// attempt most likely left loads pending (another live writer's are safe:
// see ClaimSilver).
func (a *Stream) sweepAfter(ctx context.Context) time.Duration {
	if activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1 {
		return time.Millisecond
	}
	return a.silver.sweepAfter
}

// merge moves o's loads into b.
func (b *silverBuffer) merge(o *silverBuffer) {
	for id, rows := range o.loads {
		b.add(id, rows, o.since)
	}
	if !o.since.IsZero() && o.since.Before(b.since) {
		b.since = o.since
	}
	*o = silverBuffer{}
}
