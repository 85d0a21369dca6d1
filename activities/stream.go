package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// Error types of the stream's non-retryable failures (ApplicationError.Type).
const (
	ErrTypeInvalidInput  = "InvalidInput"
	ErrTypeBronzeCorrupt = "BronzeCorrupt"
	// ErrTypeGoldRejected is no longer returned: rows gold refuses are
	// quarantined, and other gold errors are retried (kept for histories
	// and retry policies that name it).
	ErrTypeGoldRejected  = "GoldRejected"
	ErrTypeOffsetAhead   = "OffsetBeyondEnd"
	ErrTypeSilverMissing = "SilverMissing"
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
	// continue-as-new); they win over everything else.
	Known map[int32]int64 `json:"known,omitempty"`
}

// StreamStartResult gives the shard's partitions and where each starts.
type StreamStartResult struct {
	Partitions []int32          `json:"partitions"`
	Offsets    map[int32]int64  `json:"offsets"`
	Sources    map[int32]string `json:"sources"` // "carried", "stored" (pipeline.stream_offsets) or "earliest"
}

// StreamStart lists the partitions of the shard and their next offsets: the
// carried offset, else the offset stored with the last gold load (so a
// terminated and restarted workflow resumes), else the earliest retained
// offset. Partitions added to the topic since are picked up here.
func (a *Activities) StreamStart(ctx context.Context, in StreamStartInput) (StreamStartResult, error) {
	if in.Topic == "" || in.Shards < 1 || in.Shard < 0 || in.Shard >= in.Shards {
		return StreamStartResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("stream start: topic %q shard %d of %d: need a topic and 0 ≤ shard < shards", in.Topic, in.Shard, in.Shards),
			ErrTypeInvalidInput, nil)
	}
	all, err := a.kafka.Partitions(ctx, in.Topic)
	if err != nil {
		return StreamStartResult{}, fmt.Errorf("stream start: %w", err)
	}
	res := StreamStartResult{Offsets: map[int32]int64{}, Sources: map[int32]string{}}
	for _, p := range all {
		if int(p)%in.Shards == in.Shard {
			res.Partitions = append(res.Partitions, p)
		}
	}
	stored, err := a.wh.StreamOffsets(ctx, in.Topic)
	if err != nil {
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
	a.logger(ctx).Info("stream shard starting", "topic", in.Topic, "shard", in.Shard, "shards", in.Shards,
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
	Silver  time.Duration `json:"silver"`  // Parquet encode + put + index
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
	SilverFiles   int                 `json:"silver_files"`
	Bytes         int64               `json:"bytes"` // bronze bytes
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
func (a *Activities) CompactCycle(ctx context.Context, in CompactCycleInput) (CompactCycleResult, error) {
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

	log := a.logger(ctx).With("topic", in.Topic)
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
	stopCh := activity.GetWorkerStopChannel(ctx)
	for res.Flushes < in.MaxFlushes {
		if err := a.flush(ctx, in, partitions, offsets, prog, &res, log); err != nil {
			return CompactCycleResult{}, err
		}
		res.Flushes++
		hb.set(cycleProgress{Offsets: maps.Clone(offsets), Flushes: res.Flushes, Records: res.Records})
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

// partFlush is one partition's share of a flush.
type partFlush struct {
	partition                   int32
	from, next                  int64
	bronzeKey                   string
	reused                      bool
	records                     int
	bytes                       int64
	quarantined                 int
	rows                        []event.Row   // deduplicated by event_id, offset order
	recs                        []lake.Record // the records read, offset order
	tally                       warehouse.PartitionTally
	silverKeys                  []string
	hwm                         int64
	lost                        int64
	read, bronze, clean, silver time.Duration
	span                        trace.Span // stream.flush, when there were records; flush ends it
}

// flush takes every partition one step and loads gold.
func (a *Activities) flush(ctx context.Context, in CompactCycleInput, partitions []int32, offsets map[int32]int64,
	prog map[int32]*PartitionProgress, res *CompactCycleResult, log *slog.Logger) (err error) {
	t0 := time.Now()
	parts := make([]partFlush, len(partitions))
	// The stream.flush spans last until gold has the rows (and the offsets
	// are committed): a failure anywhere fails the flush of every partition.
	defer func() {
		for i := range parts {
			if parts[i].span != nil {
				endSpan(parts[i].span, err)
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for i, p := range partitions {
		g.Go(func() error {
			pf, err := a.flushPartition(gctx, in, p, offsets[p], log.With("partition", p))
			parts[i] = pf
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	var rows []event.Row
	var sources []string
	advanced := map[int32]int64{}
	var tally []warehouse.PartitionTally
	for i := range parts {
		pf := &parts[i]
		rows = append(rows, pf.rows...)
		sources = append(sources, pf.silverKeys...)
		if pf.next != pf.from {
			advanced[pf.partition] = pf.next
			if pf.records > 0 {
				tally = append(tally, pf.tally)
			}
		}
	}
	if len(advanced) > 0 {
		tg := time.Now()
		var flushes []trace.Link
		for i := range parts {
			if parts[i].span != nil {
				flushes = append(flushes, trace.Link{SpanContext: parts[i].span.SpanContext()})
			}
		}
		gctx, gspan := tracer.Start(ctx, "stream.gold", trace.WithLinks(flushes...), trace.WithAttributes(
			attribute.String("messaging.destination.name", in.Topic),
			attribute.Int("pipeline.partitions", len(advanced)),
			attribute.Int("pipeline.rows", len(rows)),
			attribute.Int("pipeline.silver.keys", len(sources))))
		lr, err := a.wh.LoadLive(gctx, warehouse.LoadInput{Rows: rows, Sources: sources, Topic: in.Topic, Offsets: advanced, Tally: tally})
		if loadErr := err; err != nil && warehouse.RecordError(err) {
			// Rows gold cannot take go to quarantine; the others load.
			var n int
			if rows, n, err = a.isolateRefused(gctx, in.Topic, parts, rows, log); err == nil && n == 0 {
				err = fmt.Errorf("gold refused the batch, but no single row of it: %w", loadErr)
			} else if err == nil {
				gspan.SetAttributes(attribute.Int("pipeline.refused", n))
				lr, err = a.wh.LoadLive(gctx, warehouse.LoadInput{Rows: rows, Sources: sources, Topic: in.Topic, Offsets: advanced, Tally: tally})
			}
		}
		goldTook := time.Since(tg)
		res.Times.Gold += goldTook
		if err == nil {
			gspan.SetAttributes(attribute.Int64("pipeline.inserted", lr.Inserted), attribute.Int64("pipeline.duplicates", lr.Duplicates))
		}
		endSpan(gspan, err)
		if err != nil {
			// No single record explains it (privileges, a missing table, a
			// full disk): the shard stops here and the cycle is retried
			// until the warehouse takes the load again; the freshness SLO
			// pages meanwhile.
			return fmt.Errorf("gold load of %s: %w", describeRanges(parts), err)
		}
		res.Inserted += lr.Inserted
		res.Duplicates += lr.Duplicates
		if lr.Conflicting > 0 {
			log.Warn("records reused known event ids for other content: kept out of gold (pipeline.conflicting_ids names them)",
				"count", lr.Conflicting, "load_id", lr.LoadID, "offsets", advanced)
		}
		a.m.recordFlush(ctx, in.Topic, parts, lr.Inserted, lr.Duplicates, goldTook, time.Since(t0))
		if err := a.crash("gold", -1); err != nil {
			return err
		}

		tc := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := a.kafka.Commit(cctx, a.group, in.Topic, advanced); err != nil {
			res.CommitErrors++
			log.Warn("consumer-group commit failed; gold and pipeline.stream_offsets are up to date, the group's lag shows stale until the next commit",
				"group", a.group, "offsets", advanced, "error", err)
		}
		cancel()
		res.Times.Commit += time.Since(tc)
	}

	for i := range parts {
		pf := &parts[i]
		offsets[pf.partition] = pf.next
		pp := prog[pf.partition]
		pp.Next = pf.next
		pp.Records += int64(pf.records)
		pp.Quarantined += int64(pf.quarantined)
		pp.Lost += pf.lost
		if pf.reused {
			pp.Reused++
		}
		if pf.hwm >= 0 {
			pp.Lag = max(0, pf.hwm-pf.next)
		}
		res.Records += int64(pf.records)
		res.Quarantined += int64(pf.quarantined)
		res.Cleaned += int64(pf.records - pf.quarantined)
		res.Bytes += pf.bytes
		res.SilverFiles += len(pf.silverKeys)
		if pf.bronzeKey != "" {
			res.BronzeObjects++
		}
		res.Times.Read += pf.read
		res.Times.Bronze += pf.bronze
		res.Times.Clean += pf.clean
		res.Times.Silver += pf.silver
	}
	res.Times.Flushes += time.Since(t0)
	if len(advanced) > 0 {
		log.Debug("flush done", "offsets", advanced, "rows", len(rows), "silver_files", len(sources),
			"took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// flushPartition runs bronze, clean and silver for one partition from offset
// next.
func (a *Activities) flushPartition(ctx context.Context, in CompactCycleInput, p int32, next int64, log *slog.Logger) (partFlush, error) {
	pf := partFlush{partition: p, from: next, next: next, hwm: -1}

	// 1. Bronze: reuse what an earlier attempt recorded, else read Kafka.
	t := time.Now()
	obj, found, err := a.wh.BronzeAt(ctx, in.Topic, p, next)
	if err != nil {
		return pf, err
	}
	var recs []lake.Record
	if found {
		if recs, err = readBronze(ctx, a.lake, obj); err != nil {
			return pf, err
		}
		pf.reused = true
		log.Info("reusing bronze object of an earlier attempt", "key", obj.Key, "first", obj.First, "last", obj.Last)
	} else {
		batch, err := a.kafka.Read(ctx, kafkaread.ReadRequest{Topic: in.Topic, Partition: p, Offset: next,
			MaxRecords: in.MaxRecords, Wait: in.FlushWait})
		var oor *kafkaread.OutOfRangeError
		if errors.As(err, &oor) {
			return a.outOfRange(ctx, in.Topic, p, next, pf, log)
		}
		if err != nil {
			return pf, err
		}
		pf.hwm = batch.HighWatermark
		recs = batch.Records
	}
	pf.read = time.Since(t)
	if len(recs) == 0 {
		return pf, nil
	}
	first, last := recs[0].Offset, recs[len(recs)-1].Offset
	ctx, pf.span = startFlushSpan(ctx, in.Topic, p, recs, trace.WithTimestamp(t))

	// 2. Clean.
	t = time.Now()
	rows, bad := clean(in.Topic, recs)
	pf.clean = time.Since(t)

	t = time.Now()
	if !found {
		key := lake.BronzeKey(in.Topic, p, first, last, recs[0].Time)
		data := lake.EncodeBronze(recs)
		if err := a.lake.Put(ctx, key, data, "application/x-ndjson"); err != nil {
			return pf, fmt.Errorf("bronze partition %d offsets %d..%d: %w", p, first, last, err)
		}
		obj = warehouse.BronzeObject{Topic: in.Topic, Partition: p, First: first, Last: last, Records: len(recs),
			Bytes: int64(len(data)), Key: key, ArrivedAt: recs[0].Time, Cleaned: len(rows), Quarantined: len(bad)}
		fillEventTimes(&obj, rows)
		won, err := a.wh.RecordBronze(ctx, obj)
		if err != nil {
			return pf, fmt.Errorf("bronze partition %d offsets %d..%d: %w", p, first, last, err)
		}
		if won.Reused && won.Key != key {
			// A concurrent attempt recorded another range from this offset
			// first: its object is the truth; ours is an orphan.
			log.Warn("another attempt recorded a bronze object at this offset first; using it", "ours", key, "theirs", won.Key)
			if err := a.lake.Delete(ctx, key); err != nil {
				log.Warn("could not delete the orphan bronze object (harmless: readers go through the index)", "key", key, "error", err)
			}
			if recs, err = readBronze(ctx, a.lake, won); err != nil {
				return pf, err
			}
			rows, bad = clean(in.Topic, recs)
			first, last = won.First, won.Last
			pf.reused = true
		}
		obj = won
		pf.bytes = int64(len(data))
		if err := a.crash("bronze", p); err != nil {
			return pf, err
		}
	} else {
		pf.bytes = obj.Bytes
	}
	pf.bronzeKey = obj.Key
	pf.bronze = time.Since(t)
	pf.records = len(recs)
	pf.recs = recs
	pf.quarantined = len(bad)
	pf.next = last + 1
	pf.tally = tallyArrivals(p, pf.from, rows, bad)

	// 2b. Quarantine.
	if len(bad) > 0 {
		t = time.Now()
		if err := a.quarantine(ctx, in.Topic, p, first, last, recs[0].Time, bad); err != nil {
			return pf, err
		}
		pf.clean += time.Since(t)
		log.Warn("records quarantined", "count", len(bad), "first_offset", bad[0].Record.Offset,
			"key", lake.QuarantineKey(in.Topic, p, first, last, recs[0].Time), "reason", bad[0].Reason)
	}

	pf.span.SetAttributes(
		attribute.String("pipeline.bronze.key", obj.Key),
		attribute.Bool("pipeline.bronze.reused", pf.reused),
		attribute.Int64("pipeline.offset.first", first), // a concurrent attempt's range may differ
		attribute.Int64("pipeline.offset.last", last),
		attribute.Int("pipeline.records", pf.records),
		attribute.Int("pipeline.quarantined", pf.quarantined))

	// 3. Silver, per event hour.
	t = time.Now()
	pf.rows = dedupe(rows)
	sctx, sspan := tracer.Start(ctx, "stream.silver", trace.WithAttributes(attribute.Int("pipeline.rows", len(pf.rows))))
	keys, err := a.writeSilver(sctx, in.Topic, p, first, last, pf.rows)
	if err == nil {
		sspan.SetAttributes(attribute.Int("pipeline.silver.keys", len(keys)))
	}
	endSpan(sspan, err)
	if err != nil {
		return pf, err
	}
	pf.silverKeys = keys
	pf.silver = time.Since(t)
	pf.span.SetAttributes(attribute.Int("pipeline.rows", len(pf.rows)), attribute.Int("pipeline.silver.keys", len(keys)))
	if err := a.crash("silver", p); err != nil {
		return pf, err
	}
	return pf, nil
}

// tallyArrivals counts a partition's records per arrival hour for the
// completeness SLO: cleaned rows (repeated event_ids included) by
// received_at, quarantined records by their Kafka timestamp.
func tallyArrivals(p int32, from int64, rows []event.Row, bad []lake.Quarantined) warehouse.PartitionTally {
	t := warehouse.PartitionTally{Partition: p, From: from,
		Cleaned: map[time.Time]int64{}, Quarantined: map[time.Time]int64{}}
	for i := range rows {
		t.Cleaned[time.UnixMicro(rows[i].ReceivedAt).UTC().Truncate(time.Hour)]++
	}
	for i := range bad {
		t.Quarantined[bad[i].Record.Time.UTC().Truncate(time.Hour)]++
	}
	return t
}

// outOfRange handles a read at an offset the partition no longer holds:
// retention deleted records before the stream read them. It skips to the
// earliest retained offset, loudly; an offset beyond the end (the topic was
// recreated) needs an operator.
func (a *Activities) outOfRange(ctx context.Context, topic string, p int32, next int64, pf partFlush, log *slog.Logger) (partFlush, error) {
	b, err := a.kafka.Bounds(ctx, topic, []int32{p})
	if err != nil {
		return pf, err
	}
	bd := b[p]
	if next < bd.First {
		// Recorded before the offset past the gap is stored with the next
		// load, so a gap is never skipped without a trace.
		if err := a.wh.RecordLostOffsets(ctx, topic, p, next, bd.First-1); err != nil {
			return pf, err
		}
		pf.lost = bd.First - next
		pf.next = bd.First
		pf.hwm = bd.Next
		log.Error("records deleted by retention before the stream read them; skipping to the earliest retained offset",
			"offset", next, "earliest", bd.First, "lost", pf.lost, "lost_offsets", fmt.Sprintf("%d..%d", next, bd.First-1))
		return pf, nil
	}
	if next > bd.Next {
		return pf, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("topic %s partition %d: next offset %d is beyond the end (%d); was the topic recreated? Reset pipeline.stream_offsets and restart the workflow",
				topic, p, next, bd.Next), ErrTypeOffsetAhead, nil)
	}
	return pf, fmt.Errorf("topic %s partition %d: offset %d out of range (bounds %d..%d)", topic, p, next, bd.First, bd.Next)
}

// clean decodes every record with the topic's cleaning rule (event.Decode
// without assigning ids; occurred_at bounded by the record's Kafka
// timestamp, so a retry decides the same). It returns the rows in offset
// order and the records that failed.
func clean(topic string, recs []lake.Record) ([]event.Row, []lake.Quarantined) {
	rows := make([]event.Row, 0, len(recs))
	var bad []lake.Quarantined
	for i := range recs {
		r := &recs[i]
		opt := event.Options{}
		if r.Time.Year() >= 2000 {
			opt.Now = r.Time
		}
		ev, errs := event.Decode(r.Value, opt)
		if len(errs) > 0 {
			q := lake.Quarantined{Topic: topic, Record: *r, Reason: reason(errs)}
			for _, e := range errs {
				q.Errors = append(q.Errors, lake.FieldProblem{Field: e.Field, Message: e.Message})
			}
			bad = append(bad, q)
			continue
		}
		row, err := ev.ToRow(r.Partition, r.Offset)
		if err != nil {
			bad = append(bad, lake.Quarantined{Topic: topic, Record: *r, Reason: err.Error(),
				Errors: []lake.FieldProblem{{Message: err.Error()}}})
			continue
		}
		rows = append(rows, row)
	}
	return rows, bad
}

// reason summarises a record's problems in one line.
func reason(errs event.Errors) string {
	var b strings.Builder
	for i, e := range errs {
		if i == 3 {
			fmt.Fprintf(&b, " (and %d more)", len(errs)-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Field != "" {
			b.WriteString(e.Field)
			b.WriteString(": ")
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

// dedupe keeps the first row of each event_id (rows are in offset order:
// first received wins).
func dedupe(rows []event.Row) []event.Row {
	seen := make(map[[16]byte]struct{}, len(rows))
	out := rows[:0]
	for _, r := range rows {
		if _, dup := seen[r.EventID]; dup {
			continue
		}
		seen[r.EventID] = struct{}{}
		out = append(out, r)
	}
	return out
}

func hourOf(r *event.Row) time.Time {
	return time.UnixMicro(r.OccurredAt).UTC().Truncate(time.Hour)
}

func fillEventTimes(o *warehouse.BronzeObject, rows []event.Row) {
	hours := map[time.Time]bool{}
	var lo, hi int64
	for i := range rows {
		r := &rows[i]
		if i == 0 || r.OccurredAt < lo {
			lo = r.OccurredAt
		}
		if i == 0 || r.OccurredAt > hi {
			hi = r.OccurredAt
		}
		hours[hourOf(r)] = true
	}
	if len(rows) > 0 {
		o.MinOccurred, o.MaxOccurred = time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()
	}
	o.EventHours = slices.SortedFunc(maps.Keys(hours), time.Time.Compare)
}

// quarantine writes the quarantine object of a bronze range and records its
// records.
func (a *Activities) quarantine(ctx context.Context, topic string, p int32, first, last int64, arrival time.Time, bad []lake.Quarantined) error {
	key := lake.QuarantineKey(topic, p, first, last, arrival)
	if err := a.lake.Put(ctx, key, lake.EncodeQuarantine(bad), "application/x-ndjson"); err != nil {
		return fmt.Errorf("quarantine partition %d offsets %d..%d: %w", p, first, last, err)
	}
	entries := make([]warehouse.QuarantineEntry, len(bad))
	for i, q := range bad {
		entries[i] = warehouse.QuarantineEntry{Topic: topic, Partition: p, Offset: q.Record.Offset, Key: key,
			Reason: q.Reason, Errors: q.Errors, Timestamp: q.Record.Time}
	}
	if err := a.wh.RecordQuarantine(ctx, entries); err != nil {
		return fmt.Errorf("quarantine partition %d offsets %d..%d: %w", p, first, last, err)
	}
	return nil
}

// writeSilver writes one Parquet file per event hour of rows (deduplicated,
// offset order) for the bronze range first..last, skipping files recorded
// already (written by an earlier attempt, possibly compacted since), and
// records the new ones. It returns every file's key.
func (a *Activities) writeSilver(ctx context.Context, topic string, p int32, first, last int64, rows []event.Row) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	byHour := map[time.Time][]event.Row{}
	for i := range rows {
		h := hourOf(&rows[i])
		byHour[h] = append(byHour[h], rows[i])
	}
	hours := slices.SortedFunc(maps.Keys(byHour), time.Time.Compare)
	keys := make([]string, len(hours))
	for i, h := range hours {
		keys[i] = lake.SilverKey(h, p, first, last)
	}
	states, err := a.wh.SilverStates(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
	}
	var objs []warehouse.SilverObject
	for i, h := range hours {
		if _, done := states[keys[i]]; done {
			continue
		}
		data, err := lake.EncodeRows(byHour[h], a.rg)
		if err != nil {
			return nil, fmt.Errorf("silver %s: %w", keys[i], err)
		}
		if err := a.lake.Put(ctx, keys[i], data, lake.ParquetContentType); err != nil {
			return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
		}
		objs = append(objs, warehouse.SilverObject{Key: keys[i], Hour: h, Topic: topic, Partition: p,
			First: first, Last: last, Rows: int64(len(byHour[h])), Bytes: int64(len(data))})
	}
	if err := a.wh.RecordSilver(ctx, objs); err != nil {
		return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
	}
	return keys, nil
}

func describeRanges(parts []partFlush) string {
	var s []string
	for _, pf := range parts {
		if pf.next != pf.from {
			s = append(s, fmt.Sprintf("partition %d offsets %d..%d (%s)", pf.partition, pf.from, pf.next-1, pf.bronzeKey))
		}
	}
	return strings.Join(s, ", ")
}

// crash runs the test hook.
func (a *Activities) crash(stage string, partition int32) error {
	if a.hook == nil {
		return nil
	}
	return a.hook(stage, partition)
}

// logger returns the activity's logger with the workflow id and attempt.
func (a *Activities) logger(ctx context.Context) *slog.Logger {
	if !activity.IsActivity(ctx) {
		return a.log
	}
	info := activity.GetInfo(ctx)
	return a.log.With("workflow_id", info.WorkflowExecution.ID, "activity", info.ActivityType.Name, "attempt", info.Attempt)
}

// heartbeater records the latest progress as the heartbeat detail, right
// away when it changes and every interval in between, from one goroutine.
type heartbeater struct {
	mu     sync.Mutex
	cur    any
	kick   chan struct{}
	done   chan struct{}
	exited chan struct{}
}

func newHeartbeater(ctx context.Context, every time.Duration) *heartbeater {
	h := &heartbeater{kick: make(chan struct{}, 1), done: make(chan struct{}), exited: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		close(h.exited)
		return h
	}
	go func() {
		defer close(h.exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
			case <-h.kick:
			}
			h.mu.Lock()
			cur := h.cur
			h.mu.Unlock()
			activity.RecordHeartbeat(ctx, cur)
		}
	}()
	return h
}

func (h *heartbeater) set(v any) {
	h.mu.Lock()
	h.cur = v
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

func (h *heartbeater) stop() {
	select {
	case <-h.done:
	default:
		close(h.done)
	}
	<-h.exited
}
