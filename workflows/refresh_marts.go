package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
)

// The marts refresher, started by a schedule that Provision creates next to
// the nightly one.
const (
	// RefreshScheduleID is the schedule that runs RefreshMarts.
	RefreshScheduleID = "marts-refresh"
	// RefreshEvery is how often it runs: how stale a day's marts may get
	// after a late event or a backfill, plus the rebuild itself.
	RefreshEvery = 5 * time.Minute
	// RefreshCatchupWindow is short: a missed run is replaced by the next.
	RefreshCatchupWindow = time.Minute
	// DefaultRefreshLimit bounds the days one run rebuilds, so that one run
	// stays short and its history small; the next run takes the rest.
	DefaultRefreshLimit = 24
)

// RefreshMartsInput bounds a run. All fields are optional.
type RefreshMartsInput struct {
	// Limit is the most days rebuilt by the run, longest pending first.
	// Default DefaultRefreshLimit.
	Limit int `json:"limit,omitempty"`
}

// RefreshMartsResult says what the run rebuilt.
type RefreshMartsResult struct {
	// Rebuilt are the days rebuilt, in order.
	Rebuilt []activities.BuildMartsResult `json:"rebuilt"`
	// Failed are the days whose rebuild failed (they stay pending).
	Failed []string `json:"failed,omitempty"`
	// Left is how many days were pending beyond Limit, for the next run.
	Left int64 `json:"left"`
}

// RefreshMarts rebuilds the marts of the days that are pending: their gold
// changed after the marts were built (late events, a gold-only backfill), a
// rebuild died half-way, or they were built in another zone than the
// recorded one. It lists up to Limit of them and rebuilds each with one
// BuildMarts activity (id marts/DAY), in the recorded zone. A day that
// fails is reported and stays pending, so the other days go on; the run
// fails at the end, naming them, so that the schedule's history shows it.
func RefreshMarts(ctx workflow.Context, in RefreshMartsInput) (RefreshMartsResult, error) {
	limit := in.Limit
	if limit <= 0 {
		limit = DefaultRefreshLimit
	}
	opts := martActivityOptions
	opts.RetryPolicy = &temporal.RetryPolicy{
		InitialInterval:    2 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5, // the next run tries again
	}
	ctx = workflow.WithActivityOptions(ctx, opts)
	var m *activities.Marts
	var pending activities.PendingMartDaysResult
	if err := workflow.ExecuteActivity(ctx, m.PendingMartDays, activities.PendingMartDaysInput{Limit: limit}).Get(ctx, &pending); err != nil {
		return RefreshMartsResult{}, fmt.Errorf("list pending mart days: %w", err)
	}
	res := RefreshMartsResult{Rebuilt: []activities.BuildMartsResult{}, Left: pending.Total - int64(len(pending.Days))}
	log := workflow.GetLogger(ctx)
	var failures []string
	for _, d := range pending.Days {
		actx := workflow.WithActivityOptions(ctx, withID(ctx, "marts/"+d.Day))
		var r activities.BuildMartsResult
		if err := workflow.ExecuteActivity(actx, m.BuildMarts, activities.BuildMartsInput{Day: d.Day}).Get(ctx, &r); err != nil {
			log.Warn("mart rebuild failed; the day stays pending", "day", d.Day, "state", d.State, "error", err)
			res.Failed = append(res.Failed, d.Day)
			failures = append(failures, d.Day+": "+err.Error())
			continue
		}
		res.Rebuilt = append(res.Rebuilt, r)
	}
	if len(failures) > 0 {
		return res, temporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("%d of %d pending days failed to rebuild (they stay pending):\n  %s", len(failures), len(pending.Days), strings.Join(failures, "\n  ")),
			"MartRefreshFailed", temporal.ApplicationErrorOptions{NonRetryable: true, Details: []any{res}})
	}
	return res, nil
}
