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
	// Date is the day as YYYY-MM-DD. Empty means the day before the workflow's
	// start in Zone, which is what the nightly schedule relies on.
	Date string `json:"date,omitempty"`
	// Zone is the IANA time zone that cuts days. Default UTC.
	Zone string `json:"zone,omitempty"`
}

// NightlyAggregationResult reports the mart rows written.
type NightlyAggregationResult = activities.BuildMartsResult

// NightlyAggregation rebuilds the three marts for one day. Each mart is
// replaced for that day in one transaction, so a rerun (schedule backfill,
// `pipeline aggregate`) is idempotent.
func NightlyAggregation(ctx workflow.Context, in NightlyAggregationInput) (NightlyAggregationResult, error) {
	loc := time.UTC
	if in.Zone != "" {
		var err error
		if loc, err = time.LoadLocation(in.Zone); err != nil {
			return NightlyAggregationResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("zone: %q is not an IANA time zone", in.Zone), "InvalidInput", err)
		}
	}
	day := in.Date
	if day == "" {
		day = workflow.Now(ctx).In(loc).AddDate(0, 0, -1).Format(time.DateOnly)
	} else if _, err := time.Parse(time.DateOnly, day); err != nil {
		return NightlyAggregationResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("date: %q is not a day as YYYY-MM-DD", day), "InvalidInput", err)
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    0,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    20,
		},
	})
	var m *activities.Marts
	var res NightlyAggregationResult
	err := workflow.ExecuteActivity(ctx, m.BuildMarts, activities.BuildMartsInput{Day: day, Zone: in.Zone}).Get(ctx, &res)
	return res, err
}
