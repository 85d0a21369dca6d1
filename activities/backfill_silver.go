package activities

import (
	"context"
	"fmt"
	"iter"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// SilverDayInput names the day of a rebuild whose silver.events rows are
// replaced.
type SilverDayInput struct {
	Rebuild int64  `json:"rebuild"`
	Topic   string `json:"topic"`
	Day     string `json:"day"` // YYYY-MM-DD, UTC
	// GoldLoad is the load of the rebuild's gold commit: silver gets
	// exactly the rows it inserted. 0 (silver rebuilt without gold): every
	// winner.
	GoldLoad int64 `json:"gold_load"`
}

// SilverDayResult reports a day's overwrite of silver.events.
type SilverDayResult struct {
	SnapshotID int64 `json:"snapshot_id"`
	Rows       int64 `json:"rows"`   // rows written
	Ranges     int   `json:"ranges"` // offset ranges replaced
	Attempts   int   `json:"attempts"`
	Found      bool  `json:"found,omitempty"` // an earlier attempt had committed it
}

// OverwriteBackfillSilver replaces, in one snapshot of silver.events, the
// day's rows from the rebuild's offset ranges by the rows its gold commit
// inserted: silver's day then holds what gold's does. The stream's rows of
// later offsets are outside the filter and stay. It first waits for stream
// appends in flight that read gold before the gold commit
// (warehouse.LockSilverExclusive), and keeps new ones out until it commits. A retry finds the snapshot of an attempt
// that committed.
func (b *Backfiller) OverwriteBackfillSilver(ctx context.Context, in SilverDayInput) (SilverDayResult, error) {
	began := time.Now()
	var res SilverDayResult
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("silver overwrite: day %q: %v", in.Day, err), ErrTypeInvalidInput, err)
	}
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	ranges, err := b.wh.RebuildCoverage(ctx, in.Rebuild)
	if err != nil {
		return res, err
	}
	res.Ranges = len(ranges)
	unlock, err := b.wh.LockSilverExclusive(ctx)
	if err != nil {
		return res, err
	}
	defer unlock()
	sr := make([]silver.Range, len(ranges))
	offsets := silver.Offsets{}
	for i, r := range ranges {
		sr[i] = silver.Range{Incarnation: r.Incarnation, Partition: r.Partition, First: r.First, Last: r.Last}
		offsets.Add(r.Incarnation, r.Partition, r.First, r.Last)
	}
	start, end := day.Bounds(time.UTC)
	// The snapshot carries the gold load, else (silver only) a key of the
	// rebuild that no load id can take.
	id := in.GoldLoad
	if id == 0 {
		id = -in.Rebuild
	}
	var rows int64
	winners := func() iter.Seq2[event.Row, error] {
		rows = 0
		return func(yield func(event.Row, error) bool) {
			for r, err := range b.wh.WinnersInGold(ctx, in.Rebuild, in.GoldLoad) {
				if err == nil {
					rows++
					if rows%100_000 == 0 {
						hb.set(map[string]int64{"rows": rows})
					}
				}
				if !yield(r, err) {
					return
				}
			}
		}
	}
	ar, err := b.silver.Overwrite(ctx, winners, silver.DayLineage(start, end, sr), silver.Commit{LoadIDs: []int64{id}, Offsets: offsets})
	res.Attempts = ar.Attempts
	if err != nil {
		return res, fmt.Errorf("silver overwrite of %s (rebuild %d, %d ranges): %w", in.Day, in.Rebuild, len(ranges), err)
	}
	res.SnapshotID, res.Found, res.Rows = ar.SnapshotID, !ar.Appended, rows
	if in.GoldLoad != 0 {
		if err := b.wh.RecordSilverSnapshot(ctx, in.GoldLoad, ar.SnapshotID); err != nil {
			return res, err
		}
	}
	b.m.step(ctx, LayerSilver, began, "written", res.Rows, 1)
	activity.GetLogger(ctx).Info("backfill silver day overwritten", "rebuild", in.Rebuild, "day", in.Day, "gold_load", in.GoldLoad,
		"ranges", len(ranges), "rows", res.Rows, "snapshot_id", res.SnapshotID, "attempts", res.Attempts, "found_committed", res.Found)
	return res, nil
}
