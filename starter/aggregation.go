package starter

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/workflows"
)

// AggregationWorkflowID is the workflow id of a manual aggregation of day
// (YYYY-MM-DD); the schedule's runs carry ids of their own.
func AggregationWorkflowID(day string) string { return "nightly-aggregation-" + day }

// StartAggregation starts NightlyAggregation of in.Date on batch-jobs now,
// as `pipeline aggregate` does. A running aggregation of the same day is
// returned instead of a second one.
func StartAggregation(ctx context.Context, c client.Client, in workflows.NightlyAggregationInput) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        AggregationWorkflowID(in.Date),
		TaskQueue: workflows.BatchQueue,
	}, workflows.NightlyAggregation, in)
	if err != nil {
		return nil, fmt.Errorf("start NightlyAggregation for %s: %w", in.Date, err)
	}
	return run, nil
}
