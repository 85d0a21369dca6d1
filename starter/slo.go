package starter

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/slo"
	"github.com/acme/pipeline/workflows"
)

// StartSLOMonitor starts the namespace's SLOMonitor on task queue
// batch-jobs with cfg, or sends cfg to the running one, in one call
// (signal-with-start): there is no moment where the monitor runs with a
// configuration other than the last one given.
func StartSLOMonitor(ctx context.Context, c client.Client, cfg slo.Config) (client.WorkflowRun, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	run, err := c.SignalWithStartWorkflow(ctx, workflows.SLOMonitorWorkflowID, workflows.SLOConfigSignal, cfg,
		client.StartWorkflowOptions{
			ID:                    workflows.SLOMonitorWorkflowID,
			TaskQueue:             workflows.BatchQueue,
			WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		}, workflows.SLOMonitor, workflows.SLOMonitorInput{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("start or configure %s: %w", workflows.SLOMonitorWorkflowID, err)
	}
	return run, nil
}
