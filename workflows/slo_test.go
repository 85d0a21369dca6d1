package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/slo"
)

// TestSLOMonitor runs one run of the monitor on the test clock: one
// evaluation per interval at the workflow's time, a failed evaluation does
// not stop it, a configuration signal takes effect at the next evaluation,
// and the run continues as new with its configuration and count.
func TestSLOMonitor(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	env.SetStartTime(start)
	var m *activities.Monitor
	env.RegisterActivity(m)
	var ats []time.Time
	var alerts []bool
	calls := 0
	env.OnActivity(m.EvaluateSLOs, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.EvaluateSLOsInput) (slo.Result, error) {
			calls++
			ats = append(ats, in.At)
			alerts = append(alerts, in.Config.Alerts)
			if calls == 2 {
				return slo.Result{}, temporal.NewNonRetryableApplicationError("database down", "Down", nil)
			}
			return slo.Result{At: in.At}, nil
		})
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(SLOConfigSignal, slo.Config{Alerts: true, Interval: time.Minute})
	}, 150*time.Second)
	env.ExecuteWorkflow(SLOMonitor, SLOMonitorInput{Config: slo.Config{Interval: time.Minute}, EvaluationsPerRun: 5})

	var can *workflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &can) {
		t.Fatalf("want continue-as-new, got %v", err)
	}
	var next SLOMonitorInput
	if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
		t.Fatal(err)
	}
	if next.Evaluations != 5 || !next.Config.Alerts {
		t.Errorf("next run input %+v: want 5 evaluations and the signalled config", next)
	}
	if calls != 5 {
		t.Fatalf("%d evaluations, want 5", calls)
	}
	for i, at := range ats {
		if want := start.Add(time.Duration(i) * time.Minute); !at.Equal(want) {
			t.Errorf("evaluation %d at %s, want %s", i, at, want)
		}
	}
	if want := []bool{false, false, false, true, true}; !equalBools(alerts, want) {
		t.Errorf("alerts per evaluation %v, want %v", alerts, want)
	}
}

func TestSLOMonitorRefusesBadConfig(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.ExecuteWorkflow(SLOMonitor, SLOMonitorInput{Config: slo.Config{Budget: 2}})
	var appErr *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("error %v, want a non-retryable refusal", err)
	}
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSLOMonitorReplay replays a real history of SLOMonitor, recorded on
// the Temporal dev server under `pipeline dev --infra` (23 evaluations, 3
// configuration signals from provisioning, an alert opened meanwhile) with
// `temporal workflow show -w slo-monitor -o json`: a change that breaks
// determinism fails here. Put it behind workflow.GetVersion, or record a
// new history when the old one no longer matters.
func TestSLOMonitorReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(SLOMonitor)
	if err := r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/slo_monitor.json"); err != nil {
		t.Fatal(err)
	}
}
