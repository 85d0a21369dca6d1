package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/workflows"
)

// BackfillWorkflowID is the workflow id of a backfill of in's range:
// backfill-FROM-TO, or backfill-dry-run-FROM-TO. One id per range means the
// server itself refuses a second start of the same range while the first
// runs; overlapping ranges, and starts from the Temporal CLI or UI with ids
// of their own, are refused by the workflow's day leases.
func BackfillWorkflowID(in workflows.BackfillInput) string {
	kind := "backfill"
	if in.DryRun {
		kind = "backfill-dry-run"
	}
	return fmt.Sprintf("%s-%s-%s", kind, in.From, in.To)
}

// AlreadyRunningError says a backfill of the same range is running.
type AlreadyRunningError struct {
	WorkflowID, RunID string
}

func (e *AlreadyRunningError) Error() string {
	return fmt.Sprintf("a backfill of this range is already running: workflow %s (run %s); follow it with `temporal workflow describe -w %s` or cancel it with `temporal workflow cancel -w %s`",
		e.WorkflowID, e.RunID, e.WorkflowID, e.WorkflowID)
}

// StartBackfill starts the Backfill workflow on the batch-jobs queue under
// BackfillWorkflowID. A completed or failed backfill of the same range may be
// started again; a running one is an *AlreadyRunningError.
func StartBackfill(ctx context.Context, c client.Client, in workflows.BackfillInput) (client.WorkflowRun, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	id := BackfillWorkflowID(in)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       id,
		TaskQueue:                workflows.BatchQueue,
		WorkflowIDReusePolicy:    enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enums.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK hands back the running backfill as if this
		// start had begun it.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.Backfill, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, &AlreadyRunningError{WorkflowID: id, RunID: started.RunId}
	}
	if err != nil {
		return nil, fmt.Errorf("start Backfill %s..%s: %w", in.From, in.To, err)
	}
	return run, nil
}

// WaitBackfill waits for run to end; with out non-nil it renders the progress
// query as a bar there, once a second.
func WaitBackfill(ctx context.Context, c client.Client, run client.WorkflowRun, out io.Writer) (workflows.BackfillResult, error) {
	type outcome struct {
		res workflows.BackfillResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		var o outcome
		o.err = run.Get(ctx, &o.res)
		done <- o
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := ""
	for {
		select {
		case o := <-done:
			if last != "" {
				fmt.Fprintln(out)
			}
			return o.res, o.err
		case <-ctx.Done():
			return workflows.BackfillResult{}, ctx.Err()
		case <-tick.C:
			if out == nil {
				continue
			}
			v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.BackfillProgressQuery)
			if err != nil {
				continue // not started yet, or finishing
			}
			var p workflows.BackfillProgress
			if v.Get(&p) != nil {
				continue
			}
			if line := ProgressLine(p); line != last {
				fmt.Fprintf(out, "\r%s", line)
				last = line
			}
		}
	}
}

// ProgressLine renders one line of progress:
// [#####-----] 12/40 units · 1/3 days · 12345 rows · now 2026-11-04.
func ProgressLine(p workflows.BackfillProgress) string {
	const width = 30
	n := 0
	if p.UnitsTotal > 0 {
		n = width * p.UnitsDone / p.UnitsTotal
	}
	s := fmt.Sprintf("[%s%s] %d/%d units · %d/%d days · %d rows", strings.Repeat("#", n), strings.Repeat("-", width-n),
		p.UnitsDone, p.UnitsTotal, p.DaysDone, p.DaysTotal, p.Rows)
	if p.CurrentDay != "" {
		s += " · now " + strings.Join(p.Running, ", ")
	}
	if p.Paused {
		s += " · PAUSED"
	}
	return s + "   "
}
