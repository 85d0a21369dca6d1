package activities

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// SilverHourInput names one hour of a rebuild.
type SilverHourInput struct {
	Rebuild int64     `json:"rebuild"`
	Topic   string    `json:"topic"`
	Hour    time.Time `json:"hour"`
}

// SilverHourResult reports one hour's silver.
type SilverHourResult struct {
	Files   int   `json:"files"`
	Rows    int64 `json:"rows"`
	Retired int   `json:"retired"` // live files the new ones replace
	Kept    int   `json:"kept"`    // live files of later offsets, kept
}

// WriteBackfillSilverHour writes the hour's winners, streamed from the
// database, as one Parquet file per topic incarnation and partition (named
// by the rebuild, so no key is ever reused) and swaps them in for the live files of the offsets
// the rebuild read.
func (b *Backfiller) WriteBackfillSilverHour(ctx context.Context, in SilverHourInput) (SilverHourResult, error) {
	began := time.Now()
	hour := in.Hour.UTC()
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	var res SilverHourResult
	var outputs []warehouse.SilverObject
	var cur *hourFile
	defer func() {
		if cur != nil {
			cur.discard()
		}
	}()
	finish := func() error {
		o, err := cur.upload(ctx, b.lake, hour, in.Topic, in.Rebuild)
		cur = nil
		if err != nil {
			return err
		}
		outputs = append(outputs, o)
		res.Files++
		hb.set(res)
		return nil
	}
	batch := make([]event.Row, 0, 4096)
	for r, err := range b.wh.WinnersOfHour(ctx, in.Rebuild, hour) {
		if err != nil {
			return res, err
		}
		if cur != nil && (cur.partition != r.Partition || cur.incarnation != r.Incarnation) {
			if err := cur.write(batch); err != nil {
				return res, err
			}
			batch = batch[:0]
			if err := finish(); err != nil {
				return res, err
			}
		}
		if cur == nil {
			if cur, err = newHourFile(b.tmp, r.Incarnation, r.Partition, r.Offset, b.rg); err != nil {
				return res, err
			}
		}
		cur.last = r.Offset
		batch = append(batch, r)
		res.Rows++
		if len(batch) == cap(batch) {
			if err := cur.write(batch); err != nil {
				return res, err
			}
			batch = batch[:0]
		}
	}
	if cur != nil {
		if err := cur.write(batch); err != nil {
			return res, err
		}
		if err := finish(); err != nil {
			return res, err
		}
	}
	swap, err := b.wh.CommitRebuildSilverHour(ctx, in.Rebuild, in.Topic, hour, outputs)
	if errors.Is(err, warehouse.ErrSilverChanged) {
		return res, temporal.NewNonRetryableApplicationError(err.Error()+"; run the backfill of this day again", ErrTypeBackfill, err)
	}
	if err != nil {
		return res, permanentOr(err, "silver hour "+hour.Format("2006-01-02T15Z"))
	}
	res.Retired, res.Kept = len(swap.Retired), swap.Kept
	// The hour is whole again: compaction may take it up if it set it aside.
	if err := b.wh.ClearSetAsideHours(ctx, in.Topic, hour, hour.Add(time.Hour)); err != nil {
		return res, err
	}
	b.m.step(ctx, LayerSilver, began, "written", res.Rows, 0)
	activity.GetLogger(ctx).Info("backfill silver hour written", "rebuild", in.Rebuild, "hour", hour.Format("2006-01-02T15Z"),
		"files", res.Files, "rows", res.Rows, "retired", res.Retired, "kept", res.Kept)
	return res, nil
}

// hourFile is one partition's silver file of an hour (of one incarnation of
// the topic), being written to a temporary file.
type hourFile struct {
	incarnation int32
	partition   int32
	first, last int64
	f           *os.File
	w           *lake.RowWriter
}

func newHourFile(dir string, inc, p int32, first int64, rg int64) (*hourFile, error) {
	f, err := os.CreateTemp(dir, "backfill-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("silver temp file: %w", err)
	}
	return &hourFile{incarnation: inc, partition: p, first: first, last: first, f: f, w: lake.NewRowWriter(f, rg)}, nil
}

func (h *hourFile) write(rows []event.Row) error {
	if len(rows) == 0 {
		return nil
	}
	return h.w.Write(rows)
}

func (h *hourFile) discard() {
	h.f.Close()
	os.Remove(h.f.Name())
}

func (h *hourFile) upload(ctx context.Context, lk *lake.Store, hour time.Time, topic string, rebuild int64) (warehouse.SilverObject, error) {
	defer h.discard()
	inc := max(int(h.incarnation), 1)
	key := lake.RebuildSilverKey(hour, inc, h.partition, h.first, h.last, rebuild)
	if err := h.w.Close(); err != nil {
		return warehouse.SilverObject{}, fmt.Errorf("silver %s: %w", key, err)
	}
	if err := lk.PutFile(ctx, key, h.f, lake.ParquetContentType); err != nil {
		return warehouse.SilverObject{}, fmt.Errorf("silver %s: %w", key, err)
	}
	st, err := h.f.Stat()
	if err != nil {
		return warehouse.SilverObject{}, err
	}
	return warehouse.SilverObject{Key: key, Hour: hour, Topic: topic, Incarnation: inc, Partition: h.partition, First: h.first, Last: h.last,
		Rows: h.w.Rows(), Bytes: st.Size(), Compacted: true}, nil
}

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
