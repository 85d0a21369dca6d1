package workflows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/warehouse"
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

// fakeSteps answers the backfill's steps: every day has 3 units of 10
// staged rows, 9 winners over 2 hours; each step takes delay (workflow
// time). It records the days planned and the most units at once.
type fakeSteps struct {
	mu              sync.Mutex
	plans           []activities.PlanDayInput
	staged          map[int64]int // stage attempts per rebuild
	lostOnce        bool          // the first resolve of each rebuild reports unit 1 missing
	failDay         string
	sleep           time.Duration // real time a unit takes, so that units overlap
	running, maxRun int
	leased          [][]string
	released        int
}

func (f *fakeSteps) enter() {
	f.mu.Lock()
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	f.mu.Unlock()
	time.Sleep(f.sleep)
}

func (f *fakeSteps) leave() {
	f.mu.Lock()
	f.running--
	f.mu.Unlock()
}

func (f *fakeSteps) register(env *testsuite.TestWorkflowEnvironment, delay time.Duration) {
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	f.staged = map[int64]int{}
	env.OnActivity(b.AcquireBackfillDays, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LeaseInput) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.leased = append(f.leased, in.Days)
		return nil
	})
	env.OnActivity(b.ReleaseBackfillDays, mock.Anything).Return(func(context.Context) (int64, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.released++
		return 1, nil
	})
	env.OnActivity(b.PlanBackfillDay, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.PlanDayInput) (warehouse.Rebuild, error) {
		f.mu.Lock()
		f.plans = append(f.plans, in)
		f.mu.Unlock()
		d, _ := warehouse.ParseDay(in.Day)
		return warehouse.Rebuild{ID: rebuildOf(in.Day), Day: d, Topic: in.Topic, Source: warehouse.RebuildFromBronze, Units: 3, Objects: 6, Records: 33}, nil
	}).After(delay)
	env.OnActivity(b.StageBackfillUnit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.UnitInput) (warehouse.UnitTally, error) {
		f.enter()
		defer f.leave()
		f.mu.Lock()
		f.staged[in.Rebuild]++
		f.mu.Unlock()
		if in.Day == f.failDay {
			return warehouse.UnitTally{}, temporal.NewNonRetryableApplicationError("bronze object x is corrupt", activities.ErrTypeBronzeCorrupt, nil)
		}
		return warehouse.UnitTally{Records: 11, Staged: 10}, nil
	}).After(delay)
	env.OnActivity(b.ResolveBackfillDay, mock.Anything, mock.Anything).Return(func(_ context.Context, rebuild int64) (warehouse.Resolved, error) {
		f.mu.Lock()
		n := f.staged[rebuild]
		f.mu.Unlock()
		if f.lostOnce && n == 3 {
			return warehouse.Resolved{Missing: []int{1}}, nil
		}
		h := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, int(rebuild))
		return warehouse.Resolved{Records: 33, Staged: 30, Rows: 9, Duplicates: 21, Hours: []time.Time{h, h.Add(time.Hour)}}, nil
	}).After(delay)
	env.OnActivity(b.OverwriteBackfillSilver, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SilverDayInput) (activities.SilverDayResult, error) {
		f.enter()
		defer f.leave()
		if in.GoldLoad != 70 {
			return activities.SilverDayResult{}, fmt.Errorf("silver overwrite of %s without the gold load: %+v", in.Day, in)
		}
		return activities.SilverDayResult{Rows: 9, SnapshotID: 7}, nil
	}).After(delay)
	env.OnActivity(b.CommitBackfillGold, mock.Anything, mock.Anything).Return(warehouse.GoldReplaced{LoadID: 70, Inserted: 9, Deleted: 5, Kept: 2}, nil).After(delay)
	env.OnActivity(b.BuildBackfillMarts, mock.Anything, mock.Anything).Return(int64(3), nil).After(delay)
	env.OnActivity(b.FinishBackfillDay, mock.Anything, mock.Anything).Return(nil)
}

func TestBackfillFansOutDaysAndUnits(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{sleep: 30 * time.Millisecond}
	f.register(env, 0)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-10-30", To: "2026-11-03"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"}
	if len(res.Days) != 5 || res.Rows != 45 || res.Records != 165 || res.BronzeObjects != 30 || res.GoldInserted != 45 {
		t.Fatalf("result %+v", res)
	}
	for i, d := range res.Days {
		if d.Day != want[i] || d.Units != 3 || d.SilverRows != 9 || d.SilverSnap != 7 || d.GoldKept != 2 || d.MartRows != 3 {
			t.Fatalf("day %d: %+v, want %s", i, d, want[i])
		}
	}
	if len(f.plans) != 5 {
		t.Fatalf("planned %v", f.plans)
	}
	if f.maxRun > DefaultBackfillConcurrency || f.maxRun < 2 {
		t.Fatalf("%d units ran at once, want 2..%d", f.maxRun, DefaultBackfillConcurrency)
	}
	for _, in := range f.plans {
		if in.Topic != "events" || strings.Join(in.Layers, ",") != "silver,gold,marts" || in.DryRun {
			t.Fatalf("plan input %+v", in)
		}
	}
	if len(f.leased) != 1 || strings.Join(f.leased[0], ",") != strings.Join(want, ",") || f.released != 1 {
		t.Fatalf("leased %v, released %d", f.leased, f.released)
	}
	q, err := env.QueryWorkflow(BackfillProgressQuery)
	if err != nil {
		t.Fatal(err)
	}
	var p BackfillProgress
	if err := q.Get(&p); err != nil {
		t.Fatal(err)
	}
	// Per day: plan, 3 units, resolve, gold, silver.events, marts = 8 units.
	if p.DaysDone != 5 || p.DaysTotal != 5 || p.UnitsTotal != 40 || p.UnitsDone != 40 || p.Rows != 45 || p.CurrentDay != "" {
		t.Fatalf("progress %+v", p)
	}
}

func TestBackfillRestagesLostUnits(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{lostOnce: true}
	f.register(env, 0)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-01"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if n := f.staged[rebuildOf("2026-11-01")]; n != 4 {
		t.Fatalf("staged %d times, want 3 units + 1 again", n)
	}
}

// rebuildOf is the fake rebuild id of a day: days since 2026-10-01.
func rebuildOf(day string) int64 {
	t, _ := time.Parse(time.DateOnly, day)
	return int64(t.Sub(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)) / (24 * time.Hour))
}

func TestBackfillPauseResume(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{}
	f.register(env, 10*time.Minute)
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
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(BackfillPauseSignal, nil) }, 15*time.Minute) // units of days 1 and 2 in flight
	env.RegisterDelayedCallback(func() { atPause = query() }, 16*time.Minute)
	env.RegisterDelayedCallback(func() { whilePaused = query() }, 5*time.Hour)
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(BackfillResumeSignal, nil) }, 6*time.Hour)
	env.RegisterDelayedCallback(func() { afterResume = query() }, 6*time.Hour+time.Minute)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-04", Concurrency: 2})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if !atPause.Paused || atPause.DaysDone != 0 || len(atPause.Running) != 2 {
		t.Fatalf("at pause: %+v", atPause)
	}
	// Units in flight finish; no other starts while paused.
	if !whilePaused.Paused || whilePaused.UnitsDone != atPause.UnitsDone+2 || whilePaused.DaysDone != 0 {
		t.Fatalf("while paused: %+v (at pause %+v)", whilePaused, atPause)
	}
	if afterResume.Paused {
		t.Fatalf("after resume: %+v", afterResume)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Days) != 4 {
		t.Fatalf("days %+v", res.Days)
	}
}

func TestBackfillDryRun(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{}
	f.register(env, 0)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-02", Layers: []string{"gold"}, DryRun: true, Topic: "t"})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res BackfillResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || len(res.Days) != 2 || !res.Days[0].DryRun || res.Days[0].Rows != 9 || res.Days[0].GoldInserted != 0 ||
		res.Days[0].SilverRows != 0 || strings.Join(res.Layers, ",") != "gold" {
		t.Fatalf("result %+v", res)
	}
	for _, in := range f.plans {
		if !in.DryRun || in.Topic != "t" || strings.Join(in.Layers, ",") != "gold" {
			t.Fatalf("plan input %+v", in)
		}
	}
	if len(f.leased) != 0 {
		t.Fatalf("a dry run leased %v", f.leased)
	}
}

func TestBackfillStopsAtAFailedDay(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{failDay: "2026-11-02"}
	f.register(env, time.Minute)
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-10", Concurrency: 1})
	err := env.GetWorkflowError()
	if err == nil || !strings.Contains(err.Error(), "backfill of 2026-11-02") || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("error %v", err)
	}
	if len(f.plans) > 3 || f.released != 1 {
		t.Fatalf("planned %d days after the failure, released %d", len(f.plans), f.released)
	}
}

func TestBackfillConflictNamesTheHolder(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var b *activities.Backfiller
	env.RegisterActivity(&activities.Backfiller{})
	env.OnActivity(b.AcquireBackfillDays, mock.Anything, mock.Anything).Return(
		temporal.NewNonRetryableApplicationError("another backfill is rebuilding 2026-11-01 by workflow backfill-2026-11-01-2026-11-01", activities.ErrTypeBackfillConflict, nil))
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-01"})
	err := env.GetWorkflowError()
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || ae.Type() != activities.ErrTypeBackfillConflict || !strings.Contains(ae.Message(), "by workflow backfill-2026-11-01") {
		t.Fatalf("error %v", err)
	}
}

func TestBackfillCancelStopsBetweenDays(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	f := &fakeSteps{}
	f.register(env, 10*time.Minute)
	env.RegisterDelayedCallback(env.CancelWorkflow, 15*time.Minute) // days 1 and 2 in flight
	env.ExecuteWorkflow(Backfill, BackfillInput{From: "2026-11-01", To: "2026-11-05", Concurrency: 2})
	err := env.GetWorkflowError()
	var ce *temporal.CanceledError
	if !errors.As(err, &ce) {
		t.Fatalf("want cancelled, got %v", err)
	}
	if len(f.plans) != 2 || f.released != 1 {
		t.Fatalf("planned %v, released %d: want the first two days only, released", f.plans, f.released)
	}
}
