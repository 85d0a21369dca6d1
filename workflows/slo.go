package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/slo"
)

// SLOMonitorWorkflowID is the one SLOMonitor of a namespace.
const SLOMonitorWorkflowID = "slo-monitor"

// SLOConfigSignal carries a new slo.Config to a running SLOMonitor (the
// Provision of a changed insight resource sends it).
const SLOConfigSignal = "slo-config"

// SLOMonitorInput configures the monitor.
type SLOMonitorInput struct {
	Config slo.Config `json:"config"`
	// EvaluationsPerRun bounds the history of one run: after that many
	// evaluations (or when Temporal suggests it) the workflow continues as
	// new. Default 240 (four hours at one a minute, ~2,000 events).
	EvaluationsPerRun int `json:"evaluations_per_run,omitempty"`
	// Evaluations counts the evaluations across runs (informational).
	Evaluations int64 `json:"evaluations,omitempty"`
}

// SLOMonitorResult is returned when the monitor stops (only when an
// evaluation's input is refused).
type SLOMonitorResult struct {
	Evaluations int64 `json:"evaluations"`
}

// SLOMonitor evaluates the pipeline's SLOs every Config.Interval, forever:
// one EvaluateSLOs activity per evaluation, measuring the moment the
// workflow's clock says, so a retried activity measures the same moment and
// stores one row per SLO. A failed evaluation (database down) is logged and
// the next one runs on time: the monitor must outlive what it watches.
func SLOMonitor(ctx workflow.Context, in SLOMonitorInput) (SLOMonitorResult, error) {
	if in.EvaluationsPerRun <= 0 {
		in.EvaluationsPerRun = 240
	}
	if err := in.Config.Validate(); err != nil {
		return SLOMonitorResult{Evaluations: in.Evaluations}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeInvalidInput, err)
	}
	log := workflow.GetLogger(ctx)
	cfg := in.Config.Defaults()
	signals := workflow.GetSignalChannel(ctx, SLOConfigSignal)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           BatchQueue,
		StartToCloseTimeout: cfg.Interval,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        cfg.Interval / 2,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidInput},
		},
	})
	var m *activities.Monitor
	for i := 0; i < in.EvaluationsPerRun; i++ {
		at := workflow.Now(ctx)
		var res slo.Result
		err := workflow.ExecuteActivity(actx, m.EvaluateSLOs, activities.EvaluateSLOsInput{Config: cfg, At: at}).Get(ctx, &res)
		in.Evaluations++
		if err != nil {
			log.Error("SLO evaluation failed; the next one runs on time", "at", at, "error", err)
		}
		// Wait for the next evaluation, taking a new configuration on the way.
		next := at.Add(cfg.Interval).Truncate(time.Second)
		timerCtx, cancel := workflow.WithCancel(ctx)
		timer := workflow.NewTimer(timerCtx, next.Sub(workflow.Now(ctx)))
		sel := workflow.NewSelector(ctx)
		waiting := true
		sel.AddFuture(timer, func(workflow.Future) { waiting = false })
		sel.AddReceive(signals, func(c workflow.ReceiveChannel, _ bool) {
			var nc slo.Config
			c.Receive(ctx, &nc)
			if err := nc.Validate(); err != nil {
				log.Error("SLO configuration refused; keeping the current one", "error", err)
				return
			}
			cfg = nc.Defaults()
			in.Config = nc
			log.Info("SLO configuration changed", "interval", cfg.Interval, "alerts", cfg.Alerts, "retention_days", cfg.RetentionDays)
		})
		for waiting {
			sel.Select(ctx)
		}
		cancel()
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	// Drain signals so that none is lost across the new run.
	for {
		var nc slo.Config
		if !signals.ReceiveAsync(&nc) {
			break
		}
		if nc.Validate() == nil {
			in.Config = nc
		}
	}
	return SLOMonitorResult{}, workflow.NewContinueAsNewError(ctx, SLOMonitor, in)
}
