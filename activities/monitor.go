package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/slo"
)

// Monitor holds the SLO evaluator for the SLOMonitor workflow's activity.
type Monitor struct {
	Eval *slo.Evaluator
}

// EvaluateSLOsInput is one evaluation: the monitor's configuration and the
// moment measured (the workflow's clock, so a retry measures the same one).
type EvaluateSLOsInput struct {
	Config slo.Config `json:"config"`
	At     time.Time  `json:"at"`
}

// EvaluateSLOs measures freshness, completeness and error rate, stores them
// in pipeline.slo_measurements and opens or resolves alerts.
func (m *Monitor) EvaluateSLOs(ctx context.Context, in EvaluateSLOsInput) (slo.Result, error) {
	if err := in.Config.Validate(); err != nil {
		return slo.Result{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, err)
	}
	if in.At.IsZero() {
		return slo.Result{}, temporal.NewNonRetryableApplicationError("EvaluateSLOs: at is required", ErrTypeInvalidInput, nil)
	}
	res, err := m.Eval.Evaluate(ctx, in.Config, in.At)
	if err != nil {
		return res, fmt.Errorf("SLO evaluation at %s: %w", in.At.UTC().Format(time.RFC3339), err)
	}
	info := activity.GetInfo(ctx)
	log := activity.GetLogger(ctx)
	for _, ms := range res.Measurements {
		if !ms.Good {
			log.Warn("SLO not met", "workflow_id", info.WorkflowExecution.ID, "slo", ms.SLO, "value", ms.Value,
				"objective", ms.Objective, "detail", ms.Detail)
		}
	}
	return res, nil
}
