package shards

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/warehouse"
)

// maxPages bounds the visibility pages one List reads (1,000 executions a
// page): every run of every shard is listed, continue-as-new included, so
// a namespace with a long retention holds many.
const maxPages = 20

// Lister reads the shards' state from Temporal's visibility and, for a
// stopped shard, the reason from its close event.
type Lister struct {
	c client.Client
}

// NewLister builds a Lister on a client of the shards' namespace.
func NewLister(c client.Client) (*Lister, error) {
	if c == nil {
		return nil, errors.New("shards: a Temporal client is required")
	}
	return &Lister{c: c}, nil
}

// List returns the shards of topic's current cut, in shard order: the cut
// is the shard count of the most recently started shard workflow of the
// topic (resharding terminates the other cuts), and each shard has the
// state of its latest run. A shard of the cut that Temporal does not know
// is Missing. No shard workflow of topic at all gives no shard.
func (l *Lister) List(ctx context.Context, topic string) ([]warehouse.StreamShard, error) {
	// The healthy case costs one small query: every shard of one cut runs.
	running, err := l.latestRuns(ctx, topic, " AND ExecutionStatus = 'Running'")
	if err != nil {
		return nil, err
	}
	if out, ok := wholeCut(running); ok {
		return out, nil
	}
	latest, err := l.latestRuns(ctx, topic, "")
	if err != nil {
		return nil, err
	}
	shards := 0
	var newest time.Time
	for _, r := range latest {
		if shards == 0 || r.started.After(newest) {
			shards, newest = r.Shards, r.started
		}
	}
	out := make([]warehouse.StreamShard, shards)
	for i := range out {
		id := WorkflowID(topic, i, shards)
		r, ok := latest[id]
		if !ok {
			out[i] = warehouse.StreamShard{Topic: topic, WorkflowID: id, Shard: i, Shards: shards, State: Missing,
				Reason: "Temporal knows no run of this shard"}
			continue
		}
		if r.Stopped() {
			if r.Reason, err = l.closeReason(ctx, r.WorkflowID, r.RunID); err != nil {
				return nil, err
			}
		}
		out[i] = r.StreamShard
	}
	return out, nil
}

// run is a shard's run with its start time.
type run struct {
	warehouse.StreamShard
	started time.Time
}

// wholeCut returns the shards when the runs are every shard of one cut,
// in shard order.
func wholeCut(runs map[string]run) ([]warehouse.StreamShard, bool) {
	if len(runs) == 0 {
		return nil, false
	}
	var n int
	for _, r := range runs {
		if n != 0 && r.Shards != n {
			return nil, false // two cuts: a reshard under way
		}
		n = r.Shards
	}
	if len(runs) != n {
		return nil, false
	}
	out := make([]warehouse.StreamShard, n)
	for _, r := range runs {
		out[r.Shard] = r.StreamShard
	}
	return out, true
}

// latestRuns lists the shard workflows of topic (narrowed by the
// visibility query's extra clause, when given), keeping the latest run of
// each workflow id.
func (l *Lister) latestRuns(ctx context.Context, topic, extra string) (map[string]run, error) {
	latest := map[string]run{}
	var token []byte
	for range maxPages {
		resp, err := l.c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s'%s", WorkflowType, extra),
			PageSize:      1000,
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list the %s workflows: %w", WorkflowType, err)
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			shard, shards, ok := Parse(id, topic)
			if !ok {
				continue
			}
			r := run{StreamShard: warehouse.StreamShard{Topic: topic, WorkflowID: id, RunID: e.GetExecution().GetRunId(), Shard: shard, Shards: shards,
				State: state(e.GetStatus())}, started: e.GetStartTime().AsTime()}
			if r.Stopped() {
				r.Since = e.GetCloseTime().AsTime()
			} else {
				r.Since = r.started
			}
			if cur, seen := latest[id]; !seen || r.started.After(cur.started) {
				latest[id] = r
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	return latest, nil
}

// state names a run's status. A run that continued as new is running: its
// successor may not be listed yet.
func state(s enumspb.WorkflowExecutionStatus) string {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return warehouse.ShardRunning
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		return "failed"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		return "terminated"
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		return "canceled"
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return "timed_out"
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		return "completed"
	default:
		return strings.ToLower(strings.TrimPrefix(s.String(), "WORKFLOW_EXECUTION_STATUS_"))
	}
}

// closeReason reads why a run closed from its close event: the failure's
// messages down to the root cause, the termination's reason and identity.
func (l *Lister) closeReason(ctx context.Context, id, runID string) (string, error) {
	it := l.c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	if !it.HasNext() {
		return "", nil
	}
	ev, err := it.Next()
	if err != nil {
		return "", fmt.Errorf("close event of %s run %s: %w", id, runID, err)
	}
	switch {
	case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
		return failureText(ev.GetWorkflowExecutionFailedEventAttributes().GetFailure()), nil
	case ev.GetWorkflowExecutionTerminatedEventAttributes() != nil:
		a := ev.GetWorkflowExecutionTerminatedEventAttributes()
		return fmt.Sprintf("terminated by %s: %s", a.GetIdentity(), a.GetReason()), nil
	case ev.GetWorkflowExecutionCanceledEventAttributes() != nil:
		return "canceled", nil
	case ev.GetWorkflowExecutionTimedOutEventAttributes() != nil:
		return "timed out (workflow execution timeout)", nil
	case ev.GetWorkflowExecutionCompletedEventAttributes() != nil:
		return "completed: stopped by its stop signal", nil
	}
	return "", nil
}

// failureText joins a failure's messages with its causes', skipping the
// SDK's generic wrappers' repetition: "activity error: … : offset 12 beyond
// the end".
func failureText(f *failurepb.Failure) string {
	var parts []string
	for ; f != nil; f = f.GetCause() {
		if m := f.GetMessage(); m != "" && (len(parts) == 0 || parts[len(parts)-1] != m) {
			parts = append(parts, m)
		}
	}
	return strings.Join(parts, ": ")
}
