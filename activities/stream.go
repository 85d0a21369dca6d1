package activities

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// Defaults of CompactCycleInput.
const (
	DefaultMaxRecords = 10_000
	DefaultFlushWait  = time.Second
)

// StreamStartInput asks for the starting offsets of one shard of the stream.
type StreamStartInput struct {
	// Topic is the Kafka topic. Required.
	Topic string `json:"topic"`
	// Shard and Shards select the partitions: those with partition % Shards
	// == Shard. Shards ≥ 1 and 0 ≤ Shard < Shards.
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
	// Known are offsets the workflow already holds (carried across
	// continue-as-new); they win over everything else, unless they cannot
	// be the current incarnation's (foreignOffsets).
	Known map[int32]int64 `json:"known,omitempty"`
	// Incarnation, when set, is the topic incarnation of Known: Known of
	// another incarnation than the current one are dropped. 0: unknown.
	Incarnation int `json:"incarnation,omitempty"`
}

// StreamStartResult gives the shard's partitions and where each starts.
type StreamStartResult struct {
	Partitions []int32          `json:"partitions"`
	Offsets    map[int32]int64  `json:"offsets"`
	Sources    map[int32]string `json:"sources"` // "carried", "stored" (pipeline.stream_offsets) or "earliest"
	// Incarnation is the topic incarnation (pipeline.topic_incarnations)
	// the offsets belong to: the input of every cycle.
	Incarnation int `json:"incarnation"`
}

// StreamStart lists the partitions of the shard and their next offsets: the
// carried offset, else the offset stored with the last gold load (so a
// terminated and restarted workflow resumes), else the earliest retained
// offset. Partitions added to the topic since are picked up here.
//
// Offsets belong to one incarnation of the topic: first it makes sure that
// Kafka's topic is the incarnation the stream streams (adopting a topic
// seen for the first time), and fails with ErrTypeTopicRecreated when the
// topic was deleted and created again. Carried offsets that cannot be the
// current incarnation's (an operator retired theirs since) are dropped.
func (a *Stream) StreamStart(ctx context.Context, in StreamStartInput) (StreamStartResult, error) {
	if in.Topic == "" || in.Shards < 1 || in.Shard < 0 || in.Shard >= in.Shards {
		return StreamStartResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("stream start: topic %q shard %d of %d: need a topic and 0 ≤ shard < shards", in.Topic, in.Shard, in.Shards),
			ErrTypeInvalidInput, nil)
	}
	inc, _, err := a.incarnation(ctx, in.Topic, true)
	if err != nil {
		return StreamStartResult{}, wrapRetryable("stream start", err)
	}
	all, err := a.kafka.Partitions(ctx, in.Topic)
	if err != nil {
		return StreamStartResult{}, fmt.Errorf("stream start: %w", err)
	}
	res := StreamStartResult{Offsets: map[int32]int64{}, Sources: map[int32]string{}, Incarnation: inc.Number}
	for _, p := range all {
		if int(p)%in.Shards == in.Shard {
			res.Partitions = append(res.Partitions, p)
		}
	}
	stored, err := a.wh.StreamOffsets(ctx, in.Topic)
	if err != nil {
		return StreamStartResult{}, fmt.Errorf("stream start: %w", err)
	}
	if in.Known, err = a.currentKnown(ctx, in, inc, stored); err != nil {
		return StreamStartResult{}, fmt.Errorf("stream start: %w", err)
	}
	var need []int32
	for _, p := range res.Partitions {
		if o, ok := in.Known[p]; ok {
			res.Offsets[p], res.Sources[p] = o, "carried"
		} else if o, ok := stored[p]; ok {
			res.Offsets[p], res.Sources[p] = o, "stored"
		} else {
			need = append(need, p)
		}
	}
	if len(need) > 0 {
		bounds, err := a.kafka.Bounds(ctx, in.Topic, need)
		if err != nil {
			return StreamStartResult{}, fmt.Errorf("stream start: %w", err)
		}
		for _, p := range need {
			res.Offsets[p], res.Sources[p] = bounds[p].First, "earliest"
		}
	}
	a.logger(ctx).Info("stream shard starting", "topic", in.Topic, "incarnation", inc.Number, "shard", in.Shard, "shards", in.Shards,
		"partitions", res.Partitions, "offsets", res.Offsets, "sources", res.Sources)
	return res, nil
}

// CompactCycleInput is one cycle of a shard: up to MaxFlushes flushes, each
// taking every partition from its offset through bronze, silver and gold.
type CompactCycleInput struct {
	// Topic is the Kafka topic. Required.
	Topic string `json:"topic"`
	// Offsets maps each partition of the shard to its next offset. Required.
	Offsets map[int32]int64 `json:"offsets"`
	// MaxRecords bounds the records one flush reads from one partition (and
	// so the flush's memory: about 1 KiB per record in flight). Default
	// 10,000.
	MaxRecords int `json:"max_records,omitempty"`
	// FlushWait is how long one flush waits for records before it writes
	// what it has (an idle partition still flushes). Default 1s.
	FlushWait time.Duration `json:"flush_wait,omitempty"`
	// MaxFlushes bounds the flushes of the cycle. Default 1.
	MaxFlushes int `json:"max_flushes,omitempty"`
	// MaxDuration ends the cycle after the flush that passes it. Default 0:
	// only MaxFlushes bounds the cycle.
	MaxDuration time.Duration `json:"max_duration,omitempty"`
	// Incarnation is the topic incarnation of Offsets (StreamStartResult's).
	// A cycle of an incarnation that is no longer current fails with
	// ErrTypeStaleOffsets. 0 (a workflow from before incarnations):
	// the current one.
	Incarnation int `json:"incarnation,omitempty"`
}

// PartitionProgress is what a cycle did to one partition.
type PartitionProgress struct {
	Partition   int32 `json:"partition"`
	From        int64 `json:"from"` // offset at the start of the cycle
	Next        int64 `json:"next"` // offset at the end
	Records     int64 `json:"records"`
	Quarantined int64 `json:"quarantined"`
	Lag         int64 `json:"lag"`            // high watermark - Next after the last read; -1 unknown
	Reused      int   `json:"reused"`         // bronze objects of an earlier attempt reused
	Lost        int64 `json:"lost,omitempty"` // offsets skipped because retention deleted them
}

// StageTimes sums the time spent per stage (across partitions for the
// per-partition stages).
type StageTimes struct {
	Read    time.Duration `json:"read"`    // Kafka fetches, or bronze reads on reuse
	Bronze  time.Duration `json:"bronze"`  // encode + put + index
	Clean   time.Duration `json:"clean"`   // event.Decode, quarantine
	Silver  time.Duration `json:"silver"`  // appends to silver.events
	Gold    time.Duration `json:"gold"`    // LoadLive (wall)
	Commit  time.Duration `json:"commit"`  // consumer-group commit (wall)
	Flushes time.Duration `json:"flushes"` // wall time of the flushes, waits included
}

// Add adds o to t.
func (t *StageTimes) Add(o StageTimes) {
	t.Read += o.Read
	t.Bronze += o.Bronze
	t.Clean += o.Clean
	t.Silver += o.Silver
	t.Gold += o.Gold
	t.Commit += o.Commit
	t.Flushes += o.Flushes
}

// CompactCycleResult reports a cycle. It carries offsets and counts, never
// rows.
type CompactCycleResult struct {
	// Offsets maps each partition to its next offset: the input of the next
	// cycle.
	Offsets       map[int32]int64     `json:"offsets"`
	Partitions    []PartitionProgress `json:"partitions"`
	Flushes       int                 `json:"flushes"`
	Records       int64               `json:"records"`     // records consumed
	Cleaned       int64               `json:"cleaned"`     // records cleaned into rows
	Quarantined   int64               `json:"quarantined"` // records quarantined
	Inserted      int64               `json:"inserted"`    // rows new in gold.events
	Duplicates    int64               `json:"duplicates"`  // rows gold already had (or repeated)
	BronzeObjects int                 `json:"bronze_objects"`
	SilverLoads   int                 `json:"silver_loads,omitempty"` // gold loads appended to silver.events (swept ones included)
	SilverRows    int64               `json:"silver_rows,omitempty"`  // rows appended to silver.events
	Bytes         int64               `json:"bytes"`                  // bronze bytes
	CommitErrors  int                 `json:"commit_errors,omitempty"`
	Times         StageTimes          `json:"times"`
}

// cycleProgress is the heartbeat detail of CompactCycle: a retried attempt
// resumes from the offsets of the last committed flush.
type cycleProgress struct {
	Offsets map[int32]int64 `json:"offsets"`
	Flushes int             `json:"flushes"`
	Records int64           `json:"records"`
}

// CompactCycle runs up to MaxFlushes flushes of the shard's partitions. A
// flush, for every partition concurrently:
//
//  1. bronze: reuses the object recorded at the partition's offset (written by
//     an earlier attempt), else reads up to MaxRecords records (or what
//     arrives within FlushWait) and writes one object named by its offset
//     range, recorded in pipeline.bronze_objects;
//  2. cleans each record with event.Decode; failures go to one quarantine
//     object and pipeline.quarantine, never blocking;
//  3. writes one silver Parquet file per event hour, deduplicated by
//     event_id, keyed by the bronze range (skipped when already recorded);
//
// then loads the rows of all partitions into gold with their new offsets in
// one transaction (warehouse.LoadLive, idempotent on event_id), and commits
// the offsets to the consumer group. It heartbeats the offsets after each
// flush. Every step is idempotent, so a retry after a crash anywhere loads
// every event exactly once.
func (a *Stream) CompactCycle(ctx context.Context, in CompactCycleInput) (CompactCycleResult, error) {
	if in.Topic == "" || len(in.Offsets) == 0 {
		return CompactCycleResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("compact cycle: topic %q with %d partitions: need a topic and offsets", in.Topic, len(in.Offsets)),
			ErrTypeInvalidInput, nil)
	}
	for p, o := range in.Offsets {
		if p < 0 || o < 0 {
			return CompactCycleResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("compact cycle: partition %d offset %d: must not be negative", p, o), ErrTypeInvalidInput, nil)
		}
	}
	in.MaxRecords = cmp.Or(max(in.MaxRecords, 0), DefaultMaxRecords)
	in.FlushWait = cmp.Or(max(in.FlushWait, 0), DefaultFlushWait)
	in.MaxFlushes = cmp.Or(max(in.MaxFlushes, 0), 1)

	inc, guard, err := a.incarnation(ctx, in.Topic, false)
	if err != nil {
		return CompactCycleResult{}, wrapRetryable("compact cycle", err)
	}

	log := a.logger(ctx).With("topic", in.Topic, "incarnation", inc.Number)
	offsets := maps.Clone(in.Offsets)
	if activity.HasHeartbeatDetails(ctx) {
		var hb cycleProgress
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil {
			for p, o := range hb.Offsets {
				if cur, ok := offsets[p]; ok && o > cur {
					offsets[p] = o
				}
			}
		}
	}
	// An earlier attempt may have loaded flushes beyond the last heartbeat
	// that reached the server: the offsets stored with gold say where it
	// got to (each partition has one writer, and a stored offset is only
	// written once bronze, silver and gold are done below it).
	stored, err := a.wh.StreamOffsets(ctx, in.Topic)
	if err != nil {
		return CompactCycleResult{}, fmt.Errorf("compact cycle: %w", err)
	}
	if in.Incarnation != 0 && in.Incarnation != inc.Number {
		return CompactCycleResult{}, staleOffsets(inc, offsets, stored)
	}
	in.Incarnation = inc.Number
	if foreign, err := a.foreignOffsets(ctx, in.Topic, offsets, stored); err != nil {
		return CompactCycleResult{}, fmt.Errorf("compact cycle: %w", err)
	} else if len(foreign) > 0 {
		return CompactCycleResult{}, staleOffsets(inc, foreign, stored)
	}
	for p, o := range stored {
		if cur, ok := offsets[p]; ok && o > cur {
			offsets[p] = o
		}
	}
	if !maps.Equal(offsets, in.Offsets) {
		log.Info("resuming after the work of an earlier attempt", "from", in.Offsets, "resume_at", offsets)
	}
	partitions := slices.Sorted(maps.Keys(offsets))
	res := CompactCycleResult{Offsets: offsets}
	prog := make(map[int32]*PartitionProgress, len(partitions))
	for _, p := range partitions {
		prog[p] = &PartitionProgress{Partition: p, From: in.Offsets[p], Next: offsets[p], Lag: -1}
	}

	hb := newHeartbeater(ctx, 5*time.Second)
	defer hb.stop()
	hb.set(cycleProgress{Offsets: maps.Clone(offsets)})

	start := time.Now()
	// Loads a dead writer left pending for silver first; then this
	// cycle's, every SilverEvery and at its end.
	var buf silverBuffer
	if err := a.syncSilver(ctx, &buf, &res, false, log); err != nil {
		return CompactCycleResult{}, err
	}
	// Appends run beside the flushes (silver_async.go); none outlives the
	// cycle.
	var inflight silverAppend
	defer func() {
		if inflight.running() {
			<-inflight.done
		}
	}()
	stopCh := activity.GetWorkerStopChannel(ctx)
	for res.Flushes < in.MaxFlushes {
		if err := a.flush(ctx, in, guard, partitions, offsets, prog, &res, &buf, log); err != nil {
			return CompactCycleResult{}, err
		}
		res.Flushes++
		hb.set(cycleProgress{Offsets: maps.Clone(offsets), Flushes: res.Flushes, Records: res.Records})
		if a.silver != nil && a.silver.due(&buf, time.Now()) {
			if inflight.running() && (inflight.finished() || buf.rows >= 2*a.silver.batchRows) {
				if err := a.collectSilver(&inflight, &buf, &res, log); err != nil {
					return CompactCycleResult{}, err
				}
			}
			switch {
			case inflight.running():
			case buf.rows >= 2*a.silver.batchRows:
				// Rows gather faster than appends take them, or a backfill's
				// overwrite kept them out: append now, after the overwrite,
				// rather than hold more.
				if err := a.syncSilver(ctx, &buf, &res, true, log); err != nil {
					return CompactCycleResult{}, err
				}
			default:
				a.startSilver(ctx, &inflight, &buf, log)
			}
		}
		if in.MaxDuration > 0 && time.Since(start) >= in.MaxDuration {
			break
		}
		select {
		case <-stopCh:
			log.Info("worker stopping: ending the cycle early", "flushes", res.Flushes)
			in.MaxFlushes = 0
		case <-ctx.Done():
			return CompactCycleResult{}, ctx.Err()
		default:
		}
	}
	// The cycle's rows are appended before it ends, after a backfill's
	// overwrite if one is running, so that none is left to the sweep.
	if err := a.collectSilver(&inflight, &buf, &res, log); err != nil {
		return CompactCycleResult{}, err
	}
	if err := a.syncSilver(ctx, &buf, &res, true, log); err != nil {
		return CompactCycleResult{}, err
	}
	for _, p := range partitions {
		pp := prog[p]
		pp.Next = offsets[p]
		res.Partitions = append(res.Partitions, *pp)
	}
	log.Info("cycle done", "flushes", res.Flushes, "records", res.Records, "cleaned", res.Cleaned,
		"quarantined", res.Quarantined, "inserted", res.Inserted, "duplicates", res.Duplicates,
		"offsets", offsets, "took", time.Since(start).Round(time.Millisecond))
	return res, nil
}

// syncSilver appends buf's loads, and loads left pending by others, to
// silver.events. A failure fails the cycle: gold and the offsets are
// committed, and the retry sweeps the loads from bronze.
func (a *Stream) syncSilver(ctx context.Context, buf *silverBuffer, res *CompactCycleResult, waitOverwrite bool, log *slog.Logger) error {
	if a.silver == nil {
		return nil
	}
	t := time.Now()
	sr, err := a.silver.sync(ctx, buf, a.sweepAfter(ctx), waitOverwrite, log)
	res.Times.Silver += time.Since(t)
	if err != nil {
		return err
	}
	a.account(sr, buf, res, log)
	return nil
}
