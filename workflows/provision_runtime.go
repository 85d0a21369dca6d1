package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/slo"
)

// provisionStartsRuntime versions Provision's last steps, which start the
// stream and the SLO monitor. Before it, the CLI started them after the
// workflow returned, so a crash in between left the stream unstarted.
const provisionStartsRuntime = "provision-starts-runtime"

// StreamShards is how many StreamCompaction workflows split the topic's
// partitions: want when positive, else one per 4 partitions, at most the
// worker's replicas_max (more shards than workers would only queue), at
// least 1. Each shard's cycle is one activity, so shards are the unit that
// spreads over worker processes. It is pure: the Provision workflow
// computes it.
func StreamShards(bp *blueprint.Blueprint, want int) int {
	if want > 0 {
		return want
	}
	_, parts, _ := bp.Topic()
	n := (parts + 3) / 4
	if _, w, ok := bp.Worker(); ok && w.ReplicasMax > 0 {
		n = min(n, w.ReplicasMax)
	}
	return max(1, min(n, parts))
}

// ensureRuntime starts what runs beside the resources, once they are
// applied: every shard of the stream that is not running (a changed shard
// count reshards), and the SLO monitor with the insight resource's
// configuration (a running monitor gets it as a signal). Both activities
// are idempotent, so a rerun after a crash completes what is left.
func ensureRuntime(ctx workflow.Context, bp *blueprint.Blueprint, in ProvisionInput, res *ProvisionResult) error {
	if workflow.GetVersion(ctx, provisionStartsRuntime, workflow.DefaultVersion, 1) != 1 {
		return nil
	}
	topic, _, _ := bp.Topic() // a valid blueprint has exactly one conduit
	var sr activities.StreamEnsureResult
	err := workflow.ExecuteActivity(ctx, activities.EnsureStreamActivity,
		activities.StreamEnsureInput{Topic: topic, Shards: StreamShards(bp, in.StreamShards)}).Get(ctx, &sr)
	if err != nil {
		return fmt.Errorf("start the stream of topic %s: %w", topic, err)
	}
	res.Stream = sr.WorkflowIDs
	if _, ins, ok := bp.Insight(); ok {
		cfg := slo.Config{Topic: topic, Alerts: ins.Alerts, RetentionDays: ins.RetentionDays}
		if err := workflow.ExecuteActivity(ctx, activities.EnsureSLOMonitorActivity, cfg).Get(ctx, &res.Monitor); err != nil {
			return fmt.Errorf("start the SLO monitor: %w", err)
		}
		res.MonitorConfig = cfg.Defaults()
	}
	return nil
}
