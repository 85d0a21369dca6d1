package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
)

// Task queues of the contract.
const (
	// StreamQueue carries the live stream workflows and activities.
	StreamQueue = "pipeline"
	// BatchQueue is the blueprint's lane: backfills and nightly aggregations.
	BatchQueue = "batch-jobs"
)

// NightlyAggregationInput selects the day to aggregate. Both fields are optional.
type NightlyAggregationInput struct {
	// Date is the day as YYYY-MM-DD. Empty means the day before the run's
	// nominal time in Zone: the time the schedule meant it to run
	// (TemporalScheduledStartTime), so that a catch-up after an outage
	// aggregates the day it was scheduled for; the workflow's start when it
	// was started by hand.
	Date string `json:"date,omitempty"`
	// Zone is the IANA time zone that cuts days. Default: the marts' zone
	// recorded by provisioning (UTC when none).
	Zone string `json:"zone,omitempty"`
}

// NightlyAggregationResult reports the mart rows written.
type NightlyAggregationResult = activities.BuildMartsResult

// scheduledStartKey is the search attribute a Temporal Schedule sets on the
// runs it starts: their nominal time.
var scheduledStartKey = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")

// martZoneChange versions the step that reads the recorded mart zone, added
// before the build: histories from before it replay without it.
const martZoneChange = "mart-zone"

// martActivityOptions are the options of the mart activities: a day can
// take minutes, and waits for a backfill of the day to commit.
var martActivityOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	HeartbeatTimeout:    time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    2 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    20,
	},
}

// NightlyAggregation rebuilds the three marts for one day from one snapshot
// of gold. Each mart is replaced for that day in one transaction, so a rerun
// (schedule backfill, `pipeline aggregate`) is idempotent.
func NightlyAggregation(ctx workflow.Context, in NightlyAggregationInput) (NightlyAggregationResult, error) {
	var loc *time.Location
	if in.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(in.Zone); err != nil {
			return NightlyAggregationResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("zone: %q is not an IANA time zone", in.Zone), activities.ErrTypeInvalidInput, err)
		}
	}
	day, zone := in.Date, in.Zone
	if day != "" {
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			return NightlyAggregationResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("date: %q is not a day as YYYY-MM-DD", day), activities.ErrTypeInvalidInput, err)
		}
	}
	ctx = workflow.WithActivityOptions(ctx, martActivityOptions)
	var m *activities.Marts
	if day == "" {
		if loc == nil {
			loc = time.UTC
			if workflow.GetVersion(ctx, martZoneChange, workflow.DefaultVersion, 1) == 1 {
				var z activities.MartZoneResult
				if err := workflow.ExecuteActivity(ctx, m.MartZone).Get(ctx, &z); err != nil {
					return NightlyAggregationResult{}, fmt.Errorf("read the mart zone: %w", err)
				}
				var err error
				if loc, err = time.LoadLocation(z.Zone); err != nil {
					return NightlyAggregationResult{}, temporal.NewNonRetryableApplicationError(
						fmt.Sprintf("recorded mart zone %q: %v", z.Zone, err), activities.ErrTypeInvalidInput, err)
				}
				zone = z.Zone
			}
		}
		day = nominalTime(ctx).In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
	}
	var res NightlyAggregationResult
	err := workflow.ExecuteActivity(ctx, m.BuildMarts, activities.BuildMartsInput{Day: day, Zone: zone}).Get(ctx, &res)
	return res, err
}

// nominalTime is when the schedule meant this run to start, or the
// workflow's start when no schedule started it.
func nominalTime(ctx workflow.Context) time.Time {
	if t, ok := workflow.GetTypedSearchAttributes(ctx).GetTime(scheduledStartKey); ok && !t.IsZero() {
		return t
	}
	return workflow.Now(ctx)
}
