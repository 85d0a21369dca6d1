package workflows

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
)

type streamSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

func TestStreamWorkflow(t *testing.T) { suite.Run(t, new(streamSuite)) }

func (s *streamSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(&activities.Stream{})
	s.env.SetStartTime(time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC))
}

func (s *streamSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

var a *activities.Stream

// advance is a CompactCycle stub: every partition moves by step, each cycle
// takes d of workflow time.
func advance(step int64, d time.Duration) func(context.Context, activities.CompactCycleInput) (activities.CompactCycleResult, error) {
	return func(_ context.Context, in activities.CompactCycleInput) (activities.CompactCycleResult, error) {
		res := activities.CompactCycleResult{Offsets: maps.Clone(in.Offsets), Flushes: 3}
		for p := range res.Offsets {
			res.Offsets[p] += step
			res.Records += step
			res.Inserted += step
		}
		return res, nil
	}
}

func startStub(offsets map[int32]int64) func(context.Context, activities.StreamStartInput) (activities.StreamStartResult, error) {
	return func(_ context.Context, in activities.StreamStartInput) (activities.StreamStartResult, error) {
		res := activities.StreamStartResult{Offsets: map[int32]int64{}, Sources: map[int32]string{}}
		for p, o := range offsets {
			if int(p)%in.Shards != in.Shard {
				continue
			}
			res.Partitions = append(res.Partitions, p)
			res.Offsets[p], res.Sources[p] = o, "stored"
			if k, ok := in.Known[p]; ok {
				res.Offsets[p], res.Sources[p] = k, "carried"
			}
		}
		return res, nil
	}
}

// continuedAs returns the input of the continue-as-new the workflow ended with.
func (s *streamSuite) continuedAs() StreamCompactionInput {
	s.T().Helper()
	s.True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "want continue-as-new, got %v", err)
	var next StreamCompactionInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

// Offsets are carried from cycle to cycle and across continue-as-new, and
// the totals accumulate.
func (s *streamSuite) TestOffsetsCarried() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.MatchedBy(func(in activities.StreamStartInput) bool {
		return in.Shard == 1 && in.Shards == 2 && in.Known == nil
	})).Return(startStub(map[int32]int64{0: 0, 1: 500, 2: 0, 3: 70})).Once()
	var seen []map[int32]int64
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CompactCycleInput) (activities.CompactCycleResult, error) {
			seen = append(seen, maps.Clone(in.Offsets))
			return advance(100, 0)(ctx, in)
		}).Times(3)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{Shard: 1, Shards: 2, CyclesPerRun: 3, CompactEvery: -1})

	next := s.continuedAs()
	s.Equal([]map[int32]int64{{1: 500, 3: 70}, {1: 600, 3: 170}, {1: 700, 3: 270}}, seen)
	s.Equal(map[int32]int64{1: 800, 3: 370}, next.Offsets)
	s.Equal(int64(3), next.Totals.Cycles)
	s.Equal(int64(600), next.Totals.Records)
	s.Equal(int64(1), next.Totals.Runs)
	s.Equal("events", next.Topic)
}

// A run that starts with carried offsets keeps them over the stored ones.
func (s *streamSuite) TestCarriedOffsetsWin() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 5})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.MatchedBy(func(in activities.CompactCycleInput) bool {
		return in.Offsets[0] == 900
	})).Return(advance(1, 0)).Once()
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CyclesPerRun: 1, CompactEvery: -1,
		Offsets: map[int32]int64{0: 900}, Totals: StreamTotals{Runs: 4, Cycles: 10}})
	next := s.continuedAs()
	s.Equal(map[int32]int64{0: 901}, next.Offsets)
	s.Equal(int64(5), next.Totals.Runs)
	s.Equal(int64(11), next.Totals.Cycles)
}

// The workflow continues as new as soon as the server suggests it.
func (s *streamSuite) TestContinueAsNewWhenSuggested() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).Return(advance(10, 0)).Once()
	s.env.SetContinueAsNewSuggested(true)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CompactEvery: -1})
	next := s.continuedAs()
	s.Equal(map[int32]int64{0: 10}, next.Offsets)
}

// Retryable cycle failures are retried with the same offsets; the workflow
// goes on.
func (s *streamSuite) TestCycleRetried() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 40})).Once()
	attempts := 0
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.CompactCycleInput) (activities.CompactCycleResult, error) {
			attempts++
			if in.Offsets[0] != 40 {
				return activities.CompactCycleResult{}, errors.New("wrong offsets on retry")
			}
			if attempts < 3 {
				return activities.CompactCycleResult{}, errors.New("gold load of partition 0 offsets 40..99: connection refused")
			}
			return advance(60, 0)(ctx, in)
		}).Times(3)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CyclesPerRun: 1, CompactEvery: -1})
	next := s.continuedAs()
	s.Equal(3, attempts)
	s.Equal(map[int32]int64{0: 100}, next.Offsets)
}

// A non-retryable failure ends the workflow with a message naming it.
func (s *streamSuite) TestNonRetryableFailure() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).Return(activities.CompactCycleResult{},
		temporal.NewNonRetryableApplicationError("bronze object bronze/events/x (partition 0 offsets 0..9) is corrupt",
			activities.ErrTypeBronzeCorrupt, nil)).Once()
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CompactEvery: -1})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "bronze/events/x (partition 0 offsets 0..9)")
	var appErr *temporal.ApplicationError
	s.True(errors.As(err, &appErr))
	s.Equal(activities.ErrTypeBronzeCorrupt, appErr.Type())
}

// A run started before version hour-compaction-retired still runs the
// (now empty) hour compaction on shard 0 every CompactEvery of workflow
// time, next to the cycles, with workflow.Now; other shards never do.
func (s *streamSuite) TestCompactionSchedule() {
	s.env.OnGetVersion("hour-compaction-retired", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).After(time.Minute).Return(advance(1, 0)).Times(12)
	var nows []time.Time
	s.env.OnActivity(a.CompactHours, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CompactHoursInput) (activities.CompactHoursResult, error) {
			nows = append(nows, in.Now)
			s.Equal(10*time.Minute, in.AllowedLateness)
			return activities.CompactHoursResult{}, nil
		}).Times(3)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CyclesPerRun: 12, CompactEvery: 5 * time.Minute})
	next := s.continuedAs()
	t0 := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	s.Require().Len(nows, 3)
	s.True(nows[0].Equal(t0), "first compaction at %v", nows[0])
	s.True(nows[1].Sub(nows[0]) >= 5*time.Minute && nows[1].Sub(nows[0]) <= 6*time.Minute, "second at %v", nows[1])
	s.Equal(int64(3), next.Totals.Compactions)
	s.True(next.LastCompaction.Equal(nows[2]))
}

func (s *streamSuite) TestNoCompactionOnOtherShards() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{1: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).After(10 * time.Minute).Return(advance(1, 0)).Times(3)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{Shard: 1, Shards: 2, CyclesPerRun: 3})
	s.continuedAs()
}

// New runs schedule no hour compaction: SilverMaintenance compacts
// silver.events.
func (s *streamSuite) TestNoHourCompactionInNewRuns() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).After(10 * time.Minute).Return(advance(1, 0)).Times(3)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CyclesPerRun: 3, CompactEvery: 5 * time.Minute})
	s.Equal(int64(0), s.continuedAs().Totals.Compactions)
}

// In a run from before, a failing hour compaction does not stop the stream.
func (s *streamSuite) TestCompactionFailureIsNotFatal() {
	s.env.OnGetVersion("hour-compaction-retired", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).After(time.Minute).Return(advance(1, 0)).Times(2)
	s.env.OnActivity(a.CompactHours, mock.Anything, mock.Anything).Return(activities.CompactHoursResult{},
		temporal.NewNonRetryableApplicationError("silver file missing", "SilverMissing", nil)).Once()
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CyclesPerRun: 2})
	next := s.continuedAs()
	s.Equal(map[int32]int64{0: 2}, next.Offsets)
}

// The stop signal ends the workflow after the current cycle; the progress
// query answers at any time.
func (s *streamSuite) TestStopAndProgress() {
	s.env.OnActivity(a.StreamStart, mock.Anything, mock.Anything).Return(startStub(map[int32]int64{0: 0, 1: 0})).Once()
	s.env.OnActivity(a.CompactCycle, mock.Anything, mock.Anything).After(30 * time.Second).Return(advance(5, 0))
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(StreamProgressQuery)
		s.Require().NoError(err)
		var p StreamProgress
		s.Require().NoError(v.Get(&p))
		s.Equal(map[int32]int64{0: 10, 1: 10}, p.Offsets)
		s.Equal(int64(2), p.Totals.Cycles)
		s.env.SignalWorkflow(StreamStopSignal, nil)
	}, 75*time.Second)
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{CompactEvery: -1})
	s.True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res StreamCompactionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(map[int32]int64{0: 15, 1: 15}, res.Offsets)
	s.Equal(int64(3), res.Totals.Cycles)
}

func (s *streamSuite) TestBadShard() {
	s.env.ExecuteWorkflow(StreamCompaction, StreamCompactionInput{Shard: 3, Shards: 2})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "shard 3 of 2")
}
