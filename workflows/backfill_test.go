package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
)

func TestBackfillRefusesBadInput(t *testing.T) {
	tests := []struct {
		name  string
		in    BackfillInput
		field string
	}{
		{"unparsable from", BackfillInput{From: "2026-13-01", To: "2026-11-02"}, "from:"},
		{"unparsable to", BackfillInput{From: "2026-11-01", To: "tomorrow"}, "to:"},
		{"from after to", BackfillInput{From: "2026-11-03", To: "2026-11-01"}, "from:"},
		{"unknown layer", BackfillInput{From: "2026-11-01", To: "2026-11-01", Layers: []string{"silver", "bronze"}}, "layers:"},
		{"beyond the default max", BackfillInput{From: "2026-01-01", To: "2026-02-01"}, "to:"},
		{"beyond max_days", BackfillInput{From: "2026-11-01", To: "2026-11-04", MaxDays: 3}, "to:"},
		{"negative max_days", BackfillInput{From: "2026-11-01", To: "2026-11-01", MaxDays: -1}, "max_days:"},
		{"concurrency too high", BackfillInput{From: "2026-11-01", To: "2026-11-01", Concurrency: 99}, "concurrency:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterActivity(&activities.Backfiller{})
			env.ExecuteWorkflow(Backfill, tc.in)
			err := env.GetWorkflowError()
			if err == nil {
				t.Fatal("no error")
			}
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != "InvalidInput" {
				t.Fatalf("want a non-retryable InvalidInput, got %v", err)
			}
			if !strings.HasPrefix(ae.Message(), tc.field) {
				t.Fatalf("message %q does not start with %q", ae.Message(), tc.field)
			}
		})
	}
	// 31 days is within the default maximum.
	if _, err := planBackfill(BackfillInput{From: "2026-01-01", To: "2026-01-31"}); err != nil {
		t.Fatal(err)
	}
}

// fakeDays answers BackfillDay with 10 rows per day after delay, recording
// the days and how many ran at once.
type fakeDays struct {
	mu              sync.Mutex
	days            []string
	inputs          []activities.BackfillDayInput
	running, maxRun int
}

func (f *fakeDays) run(delay time.Duration) func(context.Context, activities.BackfillDayInput) (activities.BackfillDayResult, error) {
	return func(ctx context.Context, in activities.BackfillDayInput) (activities.BackfillDayResult, error) {
		f.mu.Lock()
		f.days = append(f.days, in.Day)
		f.inputs = append(f.inputs, in)
		f.running++
		f.maxRun = max(f.maxRun, f.running)
		f.mu.Unlock()
		time.Sleep(delay)
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
		return activities.BackfillDayResult{Day: in.Day, DryRun: in.DryRun, BronzeObjects: 2, Records: 11, Rows: 10, GoldInserted: 10}, nil
	}
}

func TestBackfillFansOutDays(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	f := &fakeDays{}
	env.OnActivity(b.BackfillDay, mock.Anything, mock.Anything).Return(f.run(50 * time.Millisecond))
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-10-30", To: "2026-11-03"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"}
	if len(res.Days) != 5 || res.Rows != 50 || res.Records != 55 || res.BronzeObjects != 10 || res.GoldInserted != 50 {
		t.Fatalf("result %+v", res)
	}
	for i, d := range res.Days {
		if d.Day != want[i] {
			t.Fatalf("day %d is %s, want %s", i, d.Day, want[i])
		}
	}
	if len(f.days) != 5 {
		t.Fatalf("activity ran for %v", f.days)
	}
	if f.maxRun > DefaultBackfillConcurrency {
		t.Fatalf("%d days ran at once, want at most %d", f.maxRun, DefaultBackfillConcurrency)
	}
	for _, in := range f.inputs {
		if in.Topic != "events" || strings.Join(in.Layers, ",") != "silver,gold,marts" || in.DryRun {
			t.Fatalf("activity input %+v", in)
		}
	}
	var p BackfillProgress
	q, err := env.QueryWorkflow(BackfillProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Get(&p); err != nil {
		t.Fatal(err)
	}
	if p.DaysDone != 5 || p.DaysTotal != 5 || p.Rows != 50 || p.CurrentDay != "" {
		t.Fatalf("progress %+v", p)
	}
}

func TestBackfillPauseResume(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	var mu sync.Mutex
	var started []string
	env.OnActivity(b.BackfillDay, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.BackfillDayInput) (activities.BackfillDayResult, error) {
			mu.Lock()
			started = append(started, in.Day)
			mu.Unlock()
			return activities.BackfillDayResult{Day: in.Day, Rows: 1}, nil
		}).After(time.Hour) // each day takes an hour of workflow time
	query := func() BackfillProgress {
		t.Helper()
		q, err := env.QueryWorkflow(BackfillProgressQuery)
		if err != nil {
			t.Fatal(err)
		}
		var p BackfillProgress
		if err := q.Get(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var atPause, whilePaused, afterResume BackfillProgress
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(BackfillPauseSignal, nil)
	}, 30*time.Minute) // days 1 and 2 in flight
	env.RegisterDelayedCallback(func() { atPause = query() }, 31*time.Minute)
	env.RegisterDelayedCallback(func() { whilePaused = query() }, 5*time.Hour)
	env.RegisterDelayedCallback(func() {
		env.SignalWorkflow(BackfillResumeSignal, nil)
	}, 6*time.Hour)
	env.RegisterDelayedCallback(func() { afterResume = query() }, 6*time.Hour+time.Minute)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-04", Concurrency: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !atPause.Paused || atPause.DaysDone != 0 || len(atPause.Running) != 2 || atPause.CurrentDay != "2026-11-02" {
		t.Fatalf("at pause: %+v", atPause)
	}
	// The two days in flight finish; no other starts while paused.
	if !whilePaused.Paused || whilePaused.DaysDone != 2 || len(whilePaused.Running) != 0 {
		t.Fatalf("while paused: %+v", whilePaused)
	}
	if afterResume.Paused || len(afterResume.Running) != 2 {
		t.Fatalf("after resume: %+v", afterResume)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 4 || len(started) != 4 {
		t.Fatalf("days %+v, started %v", res.Days, started)
	}
}

func TestBackfillDryRun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	f := &fakeDays{}
	env.OnActivity(b.BackfillDay, mock.Anything, mock.Anything).Return(f.run(0))
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-02", Layers: []string{"gold"}, DryRun: true, Topic: "t"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || len(res.Days) != 2 || !res.Days[0].DryRun || strings.Join(res.Layers, ",") != "gold" {
		t.Fatalf("result %+v", res)
	}
	for _, in := range f.inputs {
		if !in.DryRun || in.Topic != "t" || strings.Join(in.Layers, ",") != "gold" {
			t.Fatalf("activity input %+v", in)
		}
	}
}

func TestBackfillStopsAtAFailedDay(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	env.OnActivity(b.BackfillDay, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.BackfillDayInput) (activities.BackfillDayResult, error) {
			if in.Day == "2026-11-02" {
				return activities.BackfillDayResult{}, temporal.NewNonRetryableApplicationError("bronze object x is corrupt", activities.ErrTypeBackfill, nil)
			}
			return activities.BackfillDayResult{Day: in.Day}, nil
		})
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-10", Concurrency: 1})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "backfill of 2026-11-02") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("error %v", err)
	}
}

func TestBackfillCancelStopsBetweenDays(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	var mu sync.Mutex
	var started []string
	env.OnActivity(b.BackfillDay, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.BackfillDayInput) (activities.BackfillDayResult, error) {
			mu.Lock()
			started = append(started, in.Day)
			mu.Unlock()
			return activities.BackfillDayResult{Day: in.Day, Rows: 1}, nil
		}).After(time.Hour)
	env.RegisterDelayedCallback(env.CancelWorkflow, 90*time.Minute) // day 2 in flight
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-05", Concurrency: 1})
	err := env.GetWorkflowError()
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want cancelled, got %v", err)
	}
	if len(started) != 2 {
		t.Fatalf("started %v, want the first two days only", started)
	}
}
