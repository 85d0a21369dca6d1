package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// Silver follows gold. A flush's gold load is the stream's commit point
// (rows and offsets in one PostgreSQL transaction) and marks the load
// pending for silver; the rows that load inserted are then appended to the
// Iceberg table silver.events, a few loads per snapshot, and the load is
// recorded as in silver with the snapshot's id (warehouse/silver_ledger.go).
// Silver holds what gold holds, each event id once: readers trail gold by
// seconds, never by an event.
//
// The rows come from memory, kept since the flush (silverBuffer). A load
// whose writer died before appending it is swept by the next cycle of any
// shard: its rows are rebuilt from its bronze objects, cleaned again with
// the same rule, so both paths append the same rows.

// Defaults of StreamConfig's silver settings.
const (
	DefaultSilverEvery      = 5 * time.Second
	DefaultSilverBatchRows  = 50_000
	DefaultSilverSweepAfter = 30 * time.Second
)

// silverSync appends loads to silver.events.
type silverSync struct {
	table      silverTable
	ledger     silverLedger
	lake       objectStore
	every      time.Duration
	batchRows  int
	sweepAfter time.Duration
	m          *streamMetrics
}

// silverTable is silver.events as the stream appends to it.
type silverTable interface {
	Committed(ctx context.Context, loadIDs []int64) (map[int64]int64, error)
	Append(ctx context.Context, rows []event.Row, c silver.Commit) (silver.AppendResult, error)
}

// silverLedger is pipeline.loads' silver columns, and where a swept load's
// rows are.
type silverLedger interface {
	ClaimSilver(ctx context.Context, in warehouse.ClaimSilverInput) (*warehouse.SilverClaim, error)
	BronzeByKeys(ctx context.Context, keys []string) ([]warehouse.BronzeObject, error)
}

// silverBuffer holds the rows of one cycle's loads until they are appended.
// A cycle holds two, the rows gathering and those of the append in flight,
// each under twice StreamConfig.SilverBatchRows plus one flush.
type silverBuffer struct {
	loads map[int64][]event.Row
	rows  int
	since time.Time // when the oldest buffered load committed
}

func (b *silverBuffer) add(loadID int64, rows []event.Row, now time.Time) {
	if b.loads == nil {
		b.loads = map[int64][]event.Row{}
	}
	if len(b.loads) == 0 {
		b.since = now
	}
	b.loads[loadID] = rows
	b.rows += len(rows)
}

// due says whether the buffer should be appended now.
func (s *silverSync) due(b *silverBuffer, now time.Time) bool {
	return len(b.loads) > 0 && (b.rows >= s.batchRows || now.Sub(b.since) >= s.every)
}

// silverResult reports one append.
type silverResult struct {
	Loads    []int64
	Swept    int
	Rows     int
	Snapshot int64
	Found    int  // loads an earlier writer had appended already
	Busy     bool // a backfill held silver.events: nothing appended
}

// sync appends the buffered loads, and any load another writer left
// pending for longer than sweepAfter, in one snapshot; then it records them
// and empties the buffer. Loads another writer holds are skipped: that
// writer appends them.
func (s *silverSync) sync(ctx context.Context, b *silverBuffer, sweepAfter time.Duration, waitOverwrite bool, log *slog.Logger) (silverResult, error) {
	var res silverResult
	t0 := time.Now()
	ctx, span := tracer.Start(ctx, "stream.silver.append")
	var err error
	defer func() { endSpan(span, err) }()

	own := slices.Sorted(maps.Keys(b.loads))
	claim, err := s.ledger.ClaimSilver(ctx, warehouse.ClaimSilverInput{LoadIDs: own, SweepAfter: sweepAfter,
		WaitOverwrite: waitOverwrite})
	if errors.Is(err, warehouse.ErrSilverBusy) {
		// A backfill overwrites silver: keep the rows for the next try
		// (the end of the cycle waits for the overwrite).
		res.Busy = true
		span.SetAttributes(attribute.Bool("pipeline.silver.busy", true))
		err = nil
		return res, nil
	}
	if err != nil {
		return res, err
	}
	defer claim.Release(ctx) // a no-op after Done
	res, err = s.appendClaimed(ctx, claim, b)
	if err != nil {
		return res, fmt.Errorf("silver append of loads %v: %w", res.Loads, err)
	}
	clear(b.loads)
	b.rows = 0
	span.SetAttributes(attribute.Int64Slice("pipeline.loads", res.Loads), attribute.Int("pipeline.loads.swept", res.Swept),
		attribute.Int("pipeline.rows", res.Rows), attribute.Int64("iceberg.snapshot_id", res.Snapshot))
	if len(res.Loads) > 0 {
		log.Info("silver appended", "loads", res.Loads, "swept", res.Swept, "rows", res.Rows, "snapshot_id", res.Snapshot,
			"found_committed", res.Found)
		s.m.recordSilver(ctx, res, time.Since(t0))
	}
	return res, nil
}

// appendClaimed appends the rows of the claimed loads and records them.
func (s *silverSync) appendClaimed(ctx context.Context, claim *warehouse.SilverClaim, b *silverBuffer) (silverResult, error) {
	var res silverResult
	if len(claim.Loads) == 0 {
		return res, nil
	}
	ids := make([]int64, len(claim.Loads))
	for i, l := range claim.Loads {
		ids[i] = l.LoadID
	}
	res.Loads = ids
	snaps, err := s.table.Committed(ctx, ids)
	if err != nil {
		return res, err
	}
	res.Found = len(snaps)
	// The candidates are copied once into a slice of their size (a
	// flush's rows are tens of thousands of wide structs).
	var appendIDs []int64
	var parts [][]event.Row
	n := 0
	for _, l := range claim.Loads {
		if _, ok := snaps[l.LoadID]; ok {
			continue
		}
		appendIDs = append(appendIDs, l.LoadID)
		rows, ok := b.loads[l.LoadID]
		if !ok {
			res.Swept++
			if rows, err = s.rebuild(ctx, l); err != nil {
				return res, err
			}
		}
		parts = append(parts, rows)
		n += len(rows)
	}
	cand := make([]event.Row, 0, n)
	for _, p := range parts {
		cand = append(cand, p...)
	}
	byLoad, err := claim.GoldRows(ctx, cand)
	if err != nil {
		return res, err
	}
	n = 0
	for _, id := range appendIDs {
		n += len(byLoad[id])
	}
	rows := make([]event.Row, 0, n)
	for _, id := range appendIDs {
		rows = append(rows, byLoad[id]...)
	}
	res.Rows = len(rows)
	if len(appendIDs) > 0 && len(rows) > 0 {
		ar, err := s.table.Append(ctx, rows, silver.Commit{LoadIDs: appendIDs, Offsets: offsetRanges(rows)})
		if err != nil {
			return res, err
		}
		res.Snapshot = ar.SnapshotID
		for _, id := range appendIDs {
			if len(byLoad[id]) > 0 {
				snaps[id] = ar.SnapshotID
			}
		}
	}
	return res, claim.Done(ctx, snaps)
}

// rebuild cleans a swept load's bronze objects again. GoldRows then keeps
// the rows the load inserted.
func (s *silverSync) rebuild(ctx context.Context, l warehouse.PendingLoad) ([]event.Row, error) {
	objs, err := s.ledger.BronzeByKeys(ctx, l.BronzeKeys)
	if err != nil {
		return nil, fmt.Errorf("sweep load %d: %w", l.LoadID, err)
	}
	var rows []event.Row
	for _, o := range objs {
		recs, err := readBronze(ctx, s.lake, o)
		if err != nil {
			return nil, fmt.Errorf("sweep load %d: %w", l.LoadID, err)
		}
		cleaned, _ := clean(o.Topic, o.Incarnation, recs)
		rows = append(rows, dedupe(cleaned)...)
	}
	return rows, nil
}

// offsetRanges gives the offsets of rows, per partition.
func offsetRanges(rows []event.Row) silver.Offsets {
	out := silver.Offsets{}
	for i := range rows {
		out.Add(rows[i].Incarnation, rows[i].Partition, rows[i].Offset, rows[i].Offset)
	}
	return out
}
