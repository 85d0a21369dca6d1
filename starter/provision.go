package starter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/workflows"
)

// ProvisionRequest is one provisioning of a blueprint.
type ProvisionRequest struct {
	// Name is the blueprint's nome; it names the workflow. Required.
	Name string
	// Input is the workflow's input: the blueprint document, dry run, the
	// schedule zone and the stream's shard count.
	Input workflows.ProvisionInput
}

// ProvisionWorkflowID is provision-<slug of the blueprint's nome>, so two
// provisions of one blueprint cannot run at once; a dry run has its own id.
func ProvisionWorkflowID(name string, dry bool) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	slug := strings.TrimRight(b.String(), "-")
	if slug == "" {
		slug = "blueprint"
	}
	id := "provision-" + slug
	if dry {
		id += "-dry-run"
	}
	return id
}

// StartProvision starts the Provision workflow on batch-jobs. A provision of
// the same blueprint that is still running is an error that says so.
func StartProvision(ctx context.Context, c client.Client, req ProvisionRequest) (client.WorkflowRun, error) {
	id := ProvisionWorkflowID(req.Name, req.Input.DryRun)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.BatchQueue},
		workflows.Provision, req.Input)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, fmt.Errorf("a Provision of blueprint %q is already running (workflow %s): wait for it, or see `temporal workflow describe -w %s`", req.Name, id, id)
	}
	if err != nil {
		return nil, fmt.Errorf("start Provision of blueprint %q: %w", req.Name, err)
	}
	return run, nil
}

// WaitProvision waits up to timeout (default 10 minutes) for run's result.
// Past the timeout the error says where to look: the workflow keeps going.
func WaitProvision(ctx context.Context, run client.WorkflowRun, timeout time.Duration) (workflows.ProvisionResult, error) {
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var res workflows.ProvisionResult
	err := run.Get(wctx, &res)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		return res, &StillRunningError{WorkflowID: run.GetID(), After: timeout}
	}
	return res, err
}

// StillRunningError says a wait ended before the workflow did.
type StillRunningError struct {
	WorkflowID string
	After      time.Duration
}

func (e *StillRunningError) Error() string {
	return fmt.Sprintf("workflow %s still running after %s: is a `pipeline worker` polling %s? (`temporal workflow describe -w %s`)",
		e.WorkflowID, e.After, workflows.BatchQueue, e.WorkflowID)
}
