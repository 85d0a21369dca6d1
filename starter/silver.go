package starter

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/workflows"
)

// SilverMaintenanceWorkflowID is the workflow id of a maintenance run
// started by hand (`pipeline maintain`); the schedules' runs carry ids of
// their own.
const SilverMaintenanceWorkflowID = "silver-maintenance-manual"

// StartSilverMaintenance starts SilverMaintenance on batch-jobs now, as
// `pipeline maintain` does. A manual run still going on is returned instead
// of a second one; a scheduled run at the same time waits for it at the
// compaction lock.
func StartSilverMaintenance(ctx context.Context, c client.Client, in workflows.SilverMaintenanceInput) (client.WorkflowRun, error) {
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        SilverMaintenanceWorkflowID,
		TaskQueue: workflows.BatchQueue,
	}, workflows.SilverMaintenance, in)
	if err != nil {
		return nil, fmt.Errorf("start SilverMaintenance: %w", err)
	}
	return run, nil
}
