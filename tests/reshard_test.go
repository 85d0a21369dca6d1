package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/workflows"
)

// TestStartStreamReshards starts a topic's stream as one shard, then as
// three, on the real Temporal server: the one-shard cut is terminated (two
// cuts must never write the same partitions), the three shards run, and
// starting three again keeps them.
func TestStartStreamReshards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tc := dialTemporal(t)
	topic := fmt.Sprintf("reshard%d", time.Now().UnixNano()%1_000_000)
	status := func(id string) enumspb.WorkflowExecutionStatus {
		t.Helper()
		d, err := tc.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatalf("describe %s: %v", id, err)
		}
		return d.GetWorkflowExecutionInfo().GetStatus()
	}
	t.Cleanup(func() {
		for i := range 3 {
			_ = tc.TerminateWorkflow(context.Background(), workflows.StreamWorkflowID(topic, i, 3), "", "test done")
		}
	})

	if _, err := starter.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: topic, Shards: 1}); err != nil {
		t.Fatal(err)
	}
	one := workflows.StreamWorkflowID(topic, 0, 1)
	// Visibility (what StartStream lists) may trail the start a little.
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s' AND ExecutionStatus = 'Running'", one)})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetExecutions()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listed as running", one)
		}
		time.Sleep(100 * time.Millisecond)
	}

	for range 2 { // the second start finds the three shards running and keeps them
		runs, err := starter.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: topic, Shards: 3})
		if err != nil || len(runs) != 3 {
			t.Fatalf("StartStream with 3 shards: %d runs, %v", len(runs), err)
		}
	}
	if st := status(one); st != enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		t.Errorf("%s is %s after resharding to 3, want terminated", one, st)
	}
	for i := range 3 {
		if id := workflows.StreamWorkflowID(topic, i, 3); status(id) != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Errorf("%s is %s, want running", id, status(id))
		}
	}
}
