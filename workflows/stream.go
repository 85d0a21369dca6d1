package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
	"github.com/acme/pipeline/internal/shards"
)

// Names of the stream workflow's signal and query.
const (
	// StreamStopSignal ends the workflow after the current cycle (no
	// payload). Restarting it later resumes from pipeline.stream_offsets.
	StreamStopSignal = "stop"
	// StreamProgressQuery returns a StreamProgress.
	StreamProgressQuery = "progress"
)

// Defaults of StreamCompactionInput.
const (
	DefaultTopic           = config.DefaultTopic
	DefaultFlushesPerCycle = 1000
	DefaultCycleDuration   = 30 * time.Second
	DefaultCyclesPerRun    = 500
	DefaultCompactEvery    = 5 * time.Minute
)

// StreamCompactionInput configures one shard of the live stream. Only Shard
// (and Shards, when there are several) matter to start it; the rest has
// defaults, and Offsets, LastCompaction and Totals are carried across
// continue-as-new. Durations are JSON integers in nanoseconds.
type StreamCompactionInput struct {
	// Topic is the Kafka topic. Default "events".
	Topic string `json:"topic,omitempty"`
	// Shard and Shards split the topic's partitions: this workflow owns the
	// partitions p with p % Shards == Shard, and is their only writer.
	// Default shard 0 of 1.
	Shard  int `json:"shard"`
	Shards int `json:"shards,omitempty"`
	// MaxRecords bounds the records one flush reads per partition. Default
	// 10,000.
	MaxRecords int `json:"max_records,omitempty"`
	// FlushWait is how long a flush waits for records before writing what it
	// has: the stream's latency floor. Default 1s.
	FlushWait time.Duration `json:"flush_wait,omitempty"`
	// FlushesPerCycle and CycleDuration bound one CompactCycle activity
	// (whichever comes first). A cycle is 6 history events however many
	// flushes it makes, so long cycles keep the history small; the offsets
	// of every flush are heartbeated, so a crash loses no work. Defaults
	// 1,000 and 30s.
	FlushesPerCycle int           `json:"flushes_per_cycle,omitempty"`
	CycleDuration   time.Duration `json:"cycle_duration,omitempty"`
	// CyclesPerRun continues the workflow as new after this many cycles,
	// or earlier when the server suggests it. Default 500.
	CyclesPerRun int `json:"cycles_per_run,omitempty"`
	// CompactEvery and AllowedLateness drove the retired hour compaction
	// of runs started before silver was the Iceberg table silver.events
	// (which the SilverMaintenance workflow compacts); they are kept for
	// those runs' inputs and ignored since.
	CompactEvery    time.Duration `json:"compact_every,omitempty"`
	AllowedLateness time.Duration `json:"allowed_lateness,omitempty"`

	// Offsets maps each owned partition to its next offset. Empty on a
	// fresh start: then they come from pipeline.stream_offsets, else the
	// earliest retained offset.
	Offsets map[int32]int64 `json:"offsets,omitempty"`
	// Incarnation is the topic incarnation of Offsets, carried with them:
	// a cycle of an incarnation an operator retired meanwhile stops the
	// shard (StaleOffsets) instead of reading the new topic at old offsets.
	Incarnation int `json:"incarnation,omitempty"`
	// LastCompaction is when shard 0 last started the retired hour
	// compaction (runs from before version hour-compaction-retired).
	LastCompaction time.Time `json:"last_compaction,omitzero"`
	// Totals accumulate across runs.
	Totals StreamTotals `json:"totals"`
}

// StreamTotals counts what a shard has done since it first started.
type StreamTotals struct {
	Runs        int64 `json:"runs"`
	Cycles      int64 `json:"cycles"`
	Flushes     int64 `json:"flushes"`
	Records     int64 `json:"records"`
	Cleaned     int64 `json:"cleaned"`
	Quarantined int64 `json:"quarantined"`
	Inserted    int64 `json:"inserted"`
	Duplicates  int64 `json:"duplicates"`
	Compactions int64 `json:"compactions"`
	// Times sums the cycles' stage times.
	Times activities.StageTimes `json:"times"`
}

// StreamProgress answers StreamProgressQuery.
type StreamProgress struct {
	Shard          int                            `json:"shard"`
	Shards         int                            `json:"shards"`
	Offsets        map[int32]int64                `json:"offsets"`
	Totals         StreamTotals                   `json:"totals"`
	LastCycle      *activities.CompactCycleResult `json:"last_cycle,omitempty"`
	LastCompaction time.Time                      `json:"last_compaction,omitzero"`
}

// StreamCompactionResult is returned when the workflow is stopped by
// StreamStopSignal.
type StreamCompactionResult struct {
	Offsets map[int32]int64 `json:"offsets"`
	Totals  StreamTotals    `json:"totals"`
}

// StreamWorkflowID is the workflow id of one shard.
func StreamWorkflowID(topic string, shard, shards int) string {
	return shardID(topic, shard, shards)
}

// shardID is the shards package's naming, under a name the parameters do
// not shadow.
var shardID = shards.WorkflowID

// StreamCompaction is the live stream of one shard: a loop of CompactCycle
// activities, each taking the shard's partitions from Kafka through bronze
// and gold into silver.events for up to CycleDuration, with the offsets held
// here in workflow state. It continues as new when the server suggests it or
// after CyclesPerRun cycles, carrying the offsets. (Runs from before version
// hour-compaction-retired also ran hour compaction on shard 0 every
// CompactEvery; silver.events is compacted by SilverMaintenance.)
//
// History: a cycle is 6 events (activity scheduled, started, completed and a
// workflow task) whatever it moves; at 5,000 events/s and 30 s cycles that is
// well under one event per 1,000 events. Retries add no event of their own:
// the ActivityTaskStarted event of the attempt that ended carries "attempt"
// and "lastFailure" (the previous attempt's error, which names the object,
// partition and offsets). The plain `temporal workflow show` does not print
// them; `temporal workflow show --detailed` and `-o json` do. A retry that is
// still going on shows in `temporal workflow describe` under pending
// activities, with its attempt and last failure.
func StreamCompaction(ctx workflow.Context, in StreamCompactionInput) (StreamCompactionResult, error) {
	in = in.WithDefaults()
	if in.Shards < 1 || in.Shard < 0 || in.Shard >= in.Shards {
		return StreamCompactionResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("shard %d of %d: need 0 ≤ shard < shards", in.Shard, in.Shards), activities.ErrTypeInvalidInput, nil)
	}
	logger := log.With(workflow.GetLogger(ctx), "topic", in.Topic, "shard", in.Shard, "shards", in.Shards)
	in.Totals.Runs++
	progress := StreamProgress{Shard: in.Shard, Shards: in.Shards, Totals: in.Totals, LastCompaction: in.LastCompaction}
	if err := workflow.SetQueryHandler(ctx, StreamProgressQuery, func() (StreamProgress, error) {
		return progress, nil
	}); err != nil {
		return StreamCompactionResult{}, err
	}
	stop := workflow.GetSignalChannel(ctx, StreamStopSignal)

	var a *activities.Stream
	startCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
	var start activities.StreamStartResult
	err := workflow.ExecuteActivity(startCtx, a.StreamStart, activities.StreamStartInput{
		Topic: in.Topic, Shard: in.Shard, Shards: in.Shards, Known: in.Offsets, Incarnation: in.Incarnation}).Get(ctx, &start)
	if err != nil {
		return StreamCompactionResult{}, fmt.Errorf("start shard %d of %d on topic %s: %w", in.Shard, in.Shards, in.Topic, err)
	}
	offsets := start.Offsets
	progress.Offsets = offsets
	if len(offsets) == 0 {
		logger.Warn("the shard owns no partition: nothing to do until more partitions exist", "partitions", start.Partitions)
	}
	logger.Info("stream run starting", "partitions", start.Partitions, "offsets", offsets, "sources", start.Sources, "run", in.Totals.Runs)

	cycleCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: in.CycleDuration + 4*in.FlushWait + 2*time.Minute,
		// The activity heartbeats every flush; the SDK sends one every
		// 8 s, so a killed worker's cycle is retried within 10 s.
		HeartbeatTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    30 * time.Second,
			// Unlimited attempts: an outage of Kafka, S3 or PostgreSQL
			// pauses the stream; it resumes when the component is back.
			NonRetryableErrorTypes: []string{activities.ErrTypeInvalidInput, activities.ErrTypeBronzeCorrupt,
				activities.ErrTypeGoldRejected, activities.ErrTypeOffsetAhead},
		},
	})
	compactCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 5},
	})
	var compaction workflow.Future
	// Hour compaction of silver Parquet files is retired: only runs that
	// started before keep scheduling it (the activity now does nothing).
	hourCompaction := workflow.GetVersion(ctx, "hour-compaction-retired", workflow.DefaultVersion, 1) == workflow.DefaultVersion
	collectCompaction := func() {
		var r activities.CompactHoursResult
		if err := compaction.Get(ctx, &r); err != nil {
			// Not fatal: the hours stay dirty and the next run retries them.
			logger.Error("hour compaction failed; it runs again later", "error", err)
		} else if len(r.Hours) > 0 || r.Deleted > 0 {
			logger.Info("hour compaction done", "partition_hours", len(r.Hours), "deleted", r.Deleted, "more", r.More)
		}
		compaction = nil
	}

	for cycle := 1; ; cycle++ {
		now := workflow.Now(ctx)
		if hourCompaction && in.Shard == 0 && in.CompactEvery > 0 && compaction == nil && now.Sub(in.LastCompaction) >= in.CompactEvery {
			compaction = workflow.ExecuteActivity(compactCtx, a.CompactHours, activities.CompactHoursInput{
				Now: now, AllowedLateness: in.AllowedLateness})
			in.LastCompaction = now
			in.Totals.Compactions++
			progress.LastCompaction = now
		}

		var res activities.CompactCycleResult
		if len(offsets) > 0 {
			err := workflow.ExecuteActivity(cycleCtx, a.CompactCycle, activities.CompactCycleInput{
				Topic: in.Topic, Offsets: offsets, MaxRecords: in.MaxRecords, FlushWait: in.FlushWait,
				MaxFlushes: in.FlushesPerCycle, MaxDuration: in.CycleDuration, Incarnation: start.Incarnation,
			}).Get(ctx, &res)
			if err != nil {
				if compaction != nil {
					collectCompaction()
				}
				logger.Error("stream cycle failed for good", "offsets", offsets, "error", err)
				// The activity's error names the object, partition and
				// offsets; its type stays visible to callers.
				return StreamCompactionResult{Offsets: offsets, Totals: in.Totals}, err
			}
			offsets = res.Offsets
		} else if err := workflow.Sleep(ctx, in.CycleDuration); err != nil {
			return StreamCompactionResult{}, err
		}
		in.Totals.Cycles++
		in.Totals.Flushes += int64(res.Flushes)
		in.Totals.Records += res.Records
		in.Totals.Cleaned += res.Cleaned
		in.Totals.Quarantined += res.Quarantined
		in.Totals.Inserted += res.Inserted
		in.Totals.Duplicates += res.Duplicates
		in.Totals.Times.Add(res.Times)
		progress.Offsets, progress.Totals, progress.LastCycle = offsets, in.Totals, &res
		if res.Records > 0 || res.Quarantined > 0 {
			logger.Info("stream cycle done", "cycle", cycle, "flushes", res.Flushes, "records", res.Records,
				"inserted", res.Inserted, "quarantined", res.Quarantined, "offsets", offsets)
		}

		if compaction != nil && compaction.IsReady() {
			collectCompaction()
		}
		stopped := stop.ReceiveAsync(nil)
		if stopped || cycle >= in.CyclesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			if compaction != nil {
				collectCompaction()
			}
			if stopped {
				logger.Info("stream stopped by signal", "offsets", offsets)
				return StreamCompactionResult{Offsets: offsets, Totals: in.Totals}, nil
			}
			next := in
			next.Offsets, next.Incarnation = offsets, start.Incarnation
			logger.Info("continuing as new", "cycles", cycle, "offsets", offsets)
			return StreamCompactionResult{}, workflow.NewContinueAsNewError(ctx, StreamCompaction, next)
		}
	}
}

// WithDefaults fills the zero fields with the defaults the workflow runs
// with (one shard of topic events, ...), for starters that need the shard
// count before the workflow runs.
func (in StreamCompactionInput) WithDefaults() StreamCompactionInput {
	if in.Topic == "" {
		in.Topic = DefaultTopic
	}
	if in.Shards == 0 {
		in.Shards = 1
	}
	if in.FlushWait <= 0 {
		in.FlushWait = activities.DefaultFlushWait
	}
	if in.FlushesPerCycle <= 0 {
		in.FlushesPerCycle = DefaultFlushesPerCycle
	}
	if in.CycleDuration <= 0 {
		in.CycleDuration = DefaultCycleDuration
	}
	if in.CyclesPerRun <= 0 {
		in.CyclesPerRun = DefaultCyclesPerRun
	}
	if in.CompactEvery == 0 {
		in.CompactEvery = DefaultCompactEvery
	}
	if in.AllowedLateness <= 0 {
		in.AllowedLateness = activities.DefaultAllowedLateness
	}
	return in
}
