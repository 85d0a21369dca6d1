package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/warehouse"
)

// This file sets aside the silver hours that hour compaction cannot compact
// (see CompactHours and warehouse.SetAsideSilverHour).

// SetAsideHour reports a (hour, partition) that compaction set aside
// (pipeline.silver_set_aside) after an error no retry can fix.
type SetAsideHour struct {
	Hour      time.Time `json:"hour"`
	Partition int32     `json:"partition"`
	Key       string    `json:"object_key,omitempty"` // the object that could not be read
	ErrorType string    `json:"error_type"`           // SilverMissing, SilverCorrupt, ...
	Reason    string    `json:"reason"`
	Attempts  int       `json:"attempts"` // failed compactions of the pair so far
	RetryAt   time.Time `json:"retry_at"` // when compaction tries it again
}

// objectError names the silver object a compaction failed on, so that a
// set-aside hour says which object to look at.
type objectError struct {
	obj warehouse.SilverObject
	err error
}

func (e *objectError) Error() string { return e.err.Error() }
func (e *objectError) Unwrap() error { return e.err }

// setAside records that compaction of ph failed with err, when no retry can
// fix err, and logs it once; otherwise (or when recording fails) it returns
// the error for Temporal to retry the run.
func (a *Stream) setAside(ctx context.Context, ph warehouse.SilverPartitionHour, err error, now time.Time) (SetAsideHour, error) {
	var appErr *temporal.ApplicationError
	if ctx.Err() != nil || !errors.As(err, &appErr) || !appErr.NonRetryable() {
		return SetAsideHour{}, err
	}
	// The ApplicationError's own message says what is wrong with what; the
	// wrapping around it only repeats the hour and partition.
	h := warehouse.SetAsideHour{Hour: ph.Hour, Partition: ph.Partition, ErrorType: cmp.Or(appErr.Type(), "Unknown"),
		Reason: oneLine(cmp.Or(appErr.Message(), err.Error()))}
	var oe *objectError
	if errors.As(err, &oe) {
		h.Key, h.Topic = oe.obj.Key, oe.obj.Topic
	} else {
		h.Topic = a.topicOf(ctx, ph)
	}
	row, serr := a.wh.SetAsideSilverHour(ctx, h, now)
	if serr != nil {
		return SetAsideHour{}, fmt.Errorf("%w (while setting aside silver hour %s partition %d after: %v)",
			serr, ph.Hour.Format("2006-01-02T15Z"), ph.Partition, err)
	}
	a.logger(ctx).Error("silver hour set aside: compaction skips it and goes on with the other hours; a backfill of its day rewrites it",
		"hour", ph.Hour.Format("2006-01-02T15Z"), "partition", ph.Partition, "key", h.Key, "reason", h.Reason,
		"error_type", h.ErrorType, "attempts", row.Attempts, "retry_at", row.RetryAt)
	return SetAsideHour{Hour: ph.Hour, Partition: ph.Partition, Key: h.Key, ErrorType: h.ErrorType, Reason: h.Reason,
		Attempts: row.Attempts, RetryAt: row.RetryAt}, nil
}

// topicOf is the topic of ph's live files ("" when it cannot be read: the
// set-aside row then names no topic, and only compaction or pruning clears
// it).
func (a *Stream) topicOf(ctx context.Context, ph warehouse.SilverPartitionHour) string {
	live, err := a.wh.LiveSilver(ctx, ph.Hour, ph.Partition)
	if err != nil || len(live) == 0 {
		return ""
	}
	return live[0].Topic
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
