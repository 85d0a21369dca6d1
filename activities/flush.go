package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// partFlush is one partition's share of a flush.
type partFlush struct {
	partition           int32
	from, next          int64
	bronzeKey           string
	reused              bool
	first, last         int64 // the bronze range: every offset the read consumed, markers included
	bytes               int64
	quarantined         int
	rows                []event.Row   // deduplicated by event_id, offset order
	recs                []lake.Record // the records read, offset order
	tally               warehouse.PartitionTally
	hwm                 int64
	lost                int64
	read, bronze, clean time.Duration
	span                trace.Span // stream.flush, when there were records; flush ends it
}

// flush takes every partition one step and loads gold. guard checks that
// what the partitions read came from the cycle's incarnation of the topic.
func (a *Stream) flush(ctx context.Context, in CompactCycleInput, guard *topicGuard, partitions []int32, offsets map[int32]int64,
	prog map[int32]*PartitionProgress, res *CompactCycleResult, buf *silverBuffer, log *slog.Logger) (err error) {
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
			pf, err := a.flushPartition(gctx, in, guard, p, offsets[p], log.With("partition", p))
			parts[i] = pf
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	n := 0
	for i := range parts {
		n += len(parts[i].rows)
	}
	rows := make([]event.Row, 0, n)
	advanced := map[int32]int64{}
	var tally []warehouse.PartitionTally
	var bronzeKeys []string
	for i := range parts {
		pf := &parts[i]
		rows = append(rows, pf.rows...)
		if pf.bronzeKey != "" {
			bronzeKeys = append(bronzeKeys, pf.bronzeKey)
		}
		if pf.next != pf.from {
			advanced[pf.partition] = pf.next
			if len(pf.recs) > 0 {
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
			attribute.Int("pipeline.rows", len(rows))))
		load := warehouse.LoadInput{Rows: rows, Sources: bronzeKeys, BronzeKeys: bronzeKeys, Silver: a.silver != nil,
			Topic: in.Topic, Incarnation: in.Incarnation, Offsets: advanced, Tally: tally}
		lr, err := a.wh.LoadLive(gctx, load)
		if loadErr := err; err != nil && warehouse.RecordError(err) {
			// Rows gold cannot take go to quarantine; the others load.
			var n int
			if load.Rows, n, err = a.isolateRefused(gctx, in.Topic, in.Incarnation, parts, rows, log); err == nil && n == 0 {
				err = fmt.Errorf("gold refused the batch, but no single row of it: %w", loadErr)
			} else if err == nil {
				gspan.SetAttributes(attribute.Int("pipeline.refused", n))
				rows = load.Rows
				lr, err = a.wh.LoadLive(gctx, load)
			}
		}
		goldTook := time.Since(tg)
		res.Times.Gold += goldTook
		if err == nil {
			gspan.SetAttributes(attribute.Int64("pipeline.inserted", lr.Inserted), attribute.Int64("pipeline.duplicates", lr.Duplicates))
		}
		endSpan(gspan, err)
		if errors.Is(err, warehouse.ErrNotCurrentIncarnation) {
			// An operator started a new incarnation while this flush ran:
			// its offsets are the old topic's, and stay unstored.
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("gold load of %s: %v; the shard stops: start it again "+
				"(`pipeline provision BLUEPRINT`) and it starts from the current incarnation's stored offsets",
				describeRanges(parts), err), ErrTypeStaleOffsets, err)
		}
		if err != nil {
			// No single record explains it (privileges, a missing table, a
			// full disk): the shard stops here and the cycle is retried
			// until the warehouse takes the load again; the freshness SLO
			// pages meanwhile.
			return fmt.Errorf("gold load of %s: %w", describeRanges(parts), err)
		}
		res.Inserted += lr.Inserted
		res.Duplicates += lr.Duplicates
		if lr.Inserted > 0 && a.silver != nil {
			buf.add(lr.LoadID, rows, time.Now())
		}
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
		pp.Records += int64(len(pf.recs))
		pp.Quarantined += int64(pf.quarantined)
		pp.Lost += pf.lost
		if pf.reused {
			pp.Reused++
		}
		if pf.hwm >= 0 {
			pp.Lag = max(0, pf.hwm-pf.next)
		}
		res.Records += int64(len(pf.recs))
		res.Quarantined += int64(pf.quarantined)
		res.Cleaned += int64(len(pf.recs) - pf.quarantined)
		res.Bytes += pf.bytes
		if pf.bronzeKey != "" {
			res.BronzeObjects++
		}
		res.Times.Read += pf.read
		res.Times.Bronze += pf.bronze
		res.Times.Clean += pf.clean
	}
	res.Times.Flushes += time.Since(t0)
	if len(advanced) > 0 {
		log.Debug("flush done", "offsets", advanced, "rows", len(rows), "bronze_objects", len(bronzeKeys),
			"took", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

// flushPartition runs bronze and clean for one partition from offset next;
// its rows reach silver.events after gold has them (silver_sync.go).
func (a *Stream) flushPartition(ctx context.Context, in CompactCycleInput, guard *topicGuard, p int32, next int64, log *slog.Logger) (partFlush, error) {
	pf := partFlush{partition: p, from: next, next: next, hwm: -1}

	// 1. Bronze: reuse what an earlier attempt recorded (of this
	// incarnation of the topic), else read Kafka.
	t := time.Now()
	obj, found, err := a.wh.BronzeAt(ctx, in.Topic, in.Incarnation, p, next)
	if err != nil {
		return pf, err
	}
	var recs []lake.Record
	// The offsets the records stand for: a bronze object covers what its
	// read consumed, transaction markers and aborted records included, so
	// that the next object starts where this one ends.
	var first, last int64
	if found {
		if recs, err = readBronze(ctx, a.lake, obj); err != nil {
			return pf, err
		}
		pf.reused = true
		first, last = obj.First, obj.Last
		log.Info("reusing bronze object of an earlier attempt", "key", obj.Key, "first", obj.First, "last", obj.Last)
	} else {
		batch, err := a.kafka.Read(ctx, kafkaread.ReadRequest{Topic: in.Topic, Partition: p, Offset: next,
			MaxRecords: in.MaxRecords, Wait: in.FlushWait})
		var oor *kafkaread.OutOfRangeError
		if errors.As(err, &oor) {
			return a.outOfRange(ctx, in.Topic, guard, p, next, pf, log)
		}
		if err != nil {
			return pf, err
		}
		// Nothing read is written before Kafka's topic is known to be
		// still the cycle's incarnation.
		if batch.Next > next {
			if err := guard.after(ctx, time.Now()); err != nil {
				return pf, err
			}
		}
		pf.hwm = batch.HighWatermark
		recs = batch.Records
		first, last = next, batch.Next-1
	}
	pf.read = time.Since(t)
	if len(recs) == 0 {
		// Nothing, or only what read_committed leaves out (markers, aborted
		// transactions): the position moves with the next load, no object.
		pf.next = max(next, last+1)
		return pf, nil
	}
	ctx, pf.span = startFlushSpan(ctx, in.Topic, p, recs, trace.WithTimestamp(t))

	// 2. Clean.
	t = time.Now()
	rows, bad := clean(in.Topic, in.Incarnation, recs)
	pf.clean = time.Since(t)

	t = time.Now()
	if !found {
		key := lake.BronzeKey(in.Topic, in.Incarnation, p, first, last, recs[0].Time)
		data := lake.EncodeBronze(recs)
		if err := a.lake.Put(ctx, key, data, "application/x-ndjson"); err != nil {
			return pf, fmt.Errorf("bronze partition %d offsets %d..%d: %w", p, first, last, err)
		}
		obj = warehouse.BronzeObject{Topic: in.Topic, Incarnation: in.Incarnation, Partition: p, First: first, Last: last, Records: len(recs),
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
			rows, bad = clean(in.Topic, in.Incarnation, recs)
			first, last = won.First, won.Last
			pf.reused = true
		}
		obj = won
		if err := a.crash("bronze", p); err != nil {
			return pf, err
		}
	}
	pf.bytes = obj.Bytes
	pf.bronzeKey = obj.Key
	pf.bronze = time.Since(t)
	pf.first, pf.last = first, last
	pf.recs = recs
	pf.quarantined = len(bad)
	pf.next = last + 1
	pf.tally = tallyArrivals(p, pf.from, rows, bad)

	// 2b. Quarantine.
	if len(bad) > 0 {
		t = time.Now()
		key := lake.QuarantineKey(in.Topic, in.Incarnation, p, first, last, recs[0].Time)
		if err := a.quarantine(ctx, in.Topic, in.Incarnation, p, key, bad); err != nil {
			return pf, err
		}
		pf.clean += time.Since(t)
		log.Warn("records quarantined", "count", len(bad), "first_offset", bad[0].Record.Offset,
			"key", key, "reason", bad[0].Reason)
	}

	pf.span.SetAttributes(
		attribute.String("pipeline.bronze.key", obj.Key),
		attribute.Bool("pipeline.bronze.reused", pf.reused),
		attribute.Int64("pipeline.offset.first", first), // a concurrent attempt's range may differ
		attribute.Int64("pipeline.offset.last", last),
		attribute.Int("pipeline.records", len(pf.recs)),
		attribute.Int("pipeline.quarantined", pf.quarantined))

	pf.rows = dedupe(rows)
	pf.span.SetAttributes(attribute.Int("pipeline.rows", len(pf.rows)))
	return pf, nil
}

// outOfRange handles a read at an offset the partition no longer holds:
// retention deleted records before the stream read them. It skips to the
// earliest retained offset, loudly; an offset beyond the end needs an
// operator. Either way it first makes sure that the topic was not deleted
// and created again (guard), which explains both better.
func (a *Stream) outOfRange(ctx context.Context, topic string, guard *topicGuard, p int32, next int64, pf partFlush, log *slog.Logger) (partFlush, error) {
	b, err := a.kafka.Bounds(ctx, topic, []int32{p})
	if err != nil {
		return pf, err
	}
	if err := guard.after(ctx, time.Now()); err != nil {
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
		return pf, offsetAhead(topic, guard, p, next, bd.Next)
	}
	return pf, fmt.Errorf("topic %s partition %d: offset %d out of range (bounds %d..%d)", topic, p, next, bd.First, bd.Next)
}

// offsetAhead is the error of a stored offset beyond the partition's end.
// With topic ids, the guard has ruled out a recreated topic: records the
// stream loaded are gone from Kafka. Without them, a recreated topic is the
// likely cause, and the operator's command is the same as for one caught by
// its id.
func offsetAhead(topic string, guard *topicGuard, p int32, next, end int64) error {
	msg := fmt.Sprintf("topic %s partition %d: next offset %d is beyond the end (%d)", topic, p, next, end)
	if guard != nil && guard.inc.TopicID != "" {
		msg += fmt.Sprintf(", though the topic is the one the stream streams (incarnation %d, topic id %s): records the stream loaded "+
			"are gone from Kafka (an unclean leader election, or records deleted by hand); an operator must look before the stream goes on",
			guard.inc.Number, guard.inc.TopicID)
	} else {
		msg += fmt.Sprintf("; the brokers report no topic id, so this is the sign of a topic deleted and created again. If it was, "+
			"start its new incarnation: `pipeline incarnation --topic %s --start-new %s`, then start the stream again (`pipeline provision BLUEPRINT`)",
			topic, NoTopicID)
	}
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeOffsetAhead, nil)
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
