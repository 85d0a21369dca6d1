package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/internal/shards"
	"github.com/acme/pipeline/workflows"
)

// StartStream starts the StreamCompaction workflow of every shard on task
// queue pipeline, or finds it running (a running shard is kept as it is; a
// closed one starts again and resumes from pipeline.stream_offsets).
// in.Shard is ignored. Running shards of the topic cut for another number
// of shards are terminated first: two cuts must never write the same
// partitions. A flush that was cut short is redone from its recorded bronze
// object, so nothing is lost or doubled.
func StartStream(ctx context.Context, c client.Client, in workflows.StreamCompactionInput) ([]client.WorkflowRun, error) {
	in = in.WithDefaults()
	if err := terminateOtherShards(ctx, c, in.Topic, in.Shards); err != nil {
		return nil, err
	}
	var runs []client.WorkflowRun
	var errs []error
	for shard := range in.Shards {
		sin := in
		sin.Shard = shard
		id := shards.WorkflowID(in.Topic, shard, in.Shards)
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID:                       id,
			TaskQueue:                workflows.StreamQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		}, workflows.StreamCompaction, sin)
		if err != nil {
			errs = append(errs, fmt.Errorf("start %s: %w", id, err))
			continue
		}
		runs = append(runs, run)
	}
	return runs, errors.Join(errs...)
}

// terminateOtherShards ends the running StreamCompaction workflows of topic
// whose shard count is not n.
func terminateOtherShards(ctx context.Context, c client.Client, topic string, n int) error {
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus = 'Running'", shards.WorkflowType),
			NextPageToken: token,
		})
		if err != nil {
			return fmt.Errorf("list the running stream shards: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			if _, cut, ok := shards.Parse(id, topic); !ok || cut == n {
				continue
			}
			reason := fmt.Sprintf("resharding topic %s to %d shards", topic, n)
			if err := c.TerminateWorkflow(ctx, id, "", reason); err != nil {
				var nf *serviceerror.NotFound
				if !errors.As(err, &nf) {
					return fmt.Errorf("terminate %s (%s): %w", id, reason, err)
				}
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return nil
		}
	}
}
