package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// The steps of one day's rebuild, each an activity so that several workers
// share a day (see warehouse.PlanRebuild): plan, stage every unit, resolve,
// write silver per hour, replace gold, build the marts, finish. Each step is
// idempotent: a retry redoes it and ends in the same state.

// PlanDayInput plans the rebuild of one UTC day.
type PlanDayInput struct {
	Day    string   `json:"day"`    // YYYY-MM-DD, by event time (UTC)
	Topic  string   `json:"topic"`  // the sources' topic
	Layers []string `json:"layers"` // any of silver, gold, marts
	DryRun bool     `json:"dry_run"`
}

// PlanBackfillDay snapshots the day's sources: bronze objects when silver is
// rebuilt (or in a dry run), else the live silver files. Only a marts-only
// rebuild reads no source and plans nothing (ID 0).
func (b *Backfiller) PlanBackfillDay(ctx context.Context, in PlanDayInput) (warehouse.Rebuild, error) {
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return warehouse.Rebuild{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("day: %q: %v", in.Day, err), ErrTypeBackfillInput, err)
	}
	if in.Topic == "" {
		return warehouse.Rebuild{}, temporal.NewNonRetryableApplicationError("topic: required", ErrTypeBackfillInput, nil)
	}
	source := ""
	switch {
	case slices.Contains(in.Layers, LayerSilver) || in.DryRun:
		source = warehouse.RebuildFromBronze
	case slices.Contains(in.Layers, LayerGold):
		source = warehouse.RebuildFromSilver
	default:
		return warehouse.Rebuild{Day: day, Topic: in.Topic}, nil
	}
	info := activity.GetInfo(ctx)
	r, err := b.wh.PlanRebuild(ctx, warehouse.RebuildPlanInput{WorkflowID: info.WorkflowExecution.ID, RunID: info.WorkflowExecution.RunID,
		Day: day, Topic: in.Topic, Source: source, DryRun: in.DryRun, UnitRecords: b.unit})
	if err != nil {
		return r, permanentOr(err, "plan of "+in.Day)
	}
	activity.GetLogger(ctx).Info("backfill day planned", "day", in.Day, "rebuild", r.ID, "source", r.Source,
		"objects", r.Objects, "records", r.Records, "units", r.Units)
	return r, nil
}

// UnitInput names one unit of a rebuild.
type UnitInput struct {
	Rebuild int64  `json:"rebuild"`
	Unit    int    `json:"unit"`
	Day     string `json:"day"`
	Topic   string `json:"topic"`
	Source  string `json:"source"` // warehouse.RebuildFromBronze or RebuildFromSilver
}

// StageBackfillUnit reads the unit's objects one at a time, cleans bronze
// records with the stream's rule (clean), keeps the rows of the day and
// streams them into the rebuild's staging table. Memory holds one object.
func (b *Backfiller) StageBackfillUnit(ctx context.Context, in UnitInput) (warehouse.UnitTally, error) {
	began := time.Now()
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return warehouse.UnitTally{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("day: %q: %v", in.Day, err), ErrTypeBackfillInput, err)
	}
	start, end := day.Bounds(time.UTC)
	lo, hi := start.UnixMicro(), end.UnixMicro()
	srcs, err := b.wh.RebuildSources(ctx, in.Rebuild, in.Unit)
	if err != nil {
		return warehouse.UnitTally{}, err
	}
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	var tally warehouse.UnitTally
	rows := func(yield func(event.Row, error) bool) {
		for i, src := range srcs {
			var more bool
			var err error
			if in.Source == warehouse.RebuildFromSilver {
				more, err = b.silverRows(ctx, src, &tally, yield)
			} else {
				more, err = b.bronzeRows(ctx, in.Topic, src, &tally, yield)
			}
			if err != nil {
				yield(event.Row{}, err)
				return
			}
			if !more {
				return
			}
			hb.set(BackfillHeartbeat{Day: in.Day, Stage: "stage", Done: i + 1, Total: len(srcs), Rows: tally.Staged})
		}
	}
	inDay := func(yield func(event.Row, error) bool) {
		for r, err := range rows {
			if err == nil && (r.OccurredAt < lo || r.OccurredAt >= hi) {
				tally.OtherDays++
				continue
			}
			if err == nil {
				tally.Staged++
			}
			if !yield(r, err) {
				return
			}
		}
	}
	if err := b.wh.StageRebuildUnit(ctx, in.Rebuild, in.Unit, inDay, &tally); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			return tally, err
		}
		return tally, permanentOr(err, fmt.Sprintf("unit %d of %s", in.Unit, in.Day))
	}
	b.m.step(ctx, "stage", began, "", 0, 0)
	return tally, nil
}

// bronzeRows yields the cleaned rows of one bronze object; it reports false
// when yield asked to stop.
func (b *Backfiller) bronzeRows(ctx context.Context, topic string, src warehouse.RebuildSource, tally *warehouse.UnitTally, yield func(event.Row, error) bool) (bool, error) {
	recs, err := readBronze(ctx, b.lake, warehouse.BronzeObject{Topic: topic, Key: src.Key, Partition: src.Partition,
		First: src.First, Last: src.Last, Records: int(src.Records)})
	if err != nil {
		return false, err
	}
	rows, bad := clean(topic, recs)
	tally.Records += int64(len(recs))
	tally.Quarantined += int64(len(bad))
	for _, r := range rows {
		if !yield(r, nil) {
			return false, nil
		}
	}
	return true, nil
}

// silverRows yields the rows of one silver file, read in batches from a
// temporary copy.
func (b *Backfiller) silverRows(ctx context.Context, src warehouse.RebuildSource, tally *warehouse.UnitTally, yield func(event.Row, error) bool) (bool, error) {
	f, err := b.lake.GetFile(ctx, src.Key, b.tmp)
	if errors.Is(err, lake.ErrNotFound) {
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("silver file %s (partition %d offsets %d..%d) is live in pipeline.silver_objects but missing from the bucket",
			src.Key, src.Partition, src.First, src.Last), ErrTypeSilverMissing, err)
	}
	if err != nil {
		return false, fmt.Errorf("read silver %s: %w", src.Key, err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	rr, err := lake.NewRowReader(f, st.Size())
	if err != nil {
		return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("silver file %s is corrupt: %v", src.Key, err), ErrTypeBackfill, err)
	}
	defer rr.Close()
	buf := make([]event.Row, 4096)
	for {
		n, rerr := rr.Read(buf)
		tally.Records += int64(n)
		for _, r := range buf[:n] {
			if !yield(r, nil) {
				return false, nil
			}
		}
		if errors.Is(rerr, io.EOF) {
			return true, nil
		}
		if rerr != nil {
			return false, temporal.NewNonRetryableApplicationError(fmt.Sprintf("silver file %s is corrupt: %v", src.Key, rerr), ErrTypeBackfill, rerr)
		}
	}
}

// ResolveBackfillDay keeps one row per event_id of the staged rows (in SQL).
// Units not staged come back in Missing, for the workflow to stage again.
func (b *Backfiller) ResolveBackfillDay(ctx context.Context, rebuild int64) (warehouse.Resolved, error) {
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	res, err := b.wh.ResolveRebuild(ctx, rebuild)
	if err != nil {
		return res, permanentOr(err, fmt.Sprintf("rebuild %d", rebuild))
	}
	return res, nil
}

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
// database, as one Parquet file per partition (named by the rebuild, so no
// key is ever reused) and swaps them in for the live files of the offsets
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
		if cur != nil && cur.partition != r.Partition {
			if err := cur.write(batch); err != nil {
				return res, err
			}
			batch = batch[:0]
			if err := finish(); err != nil {
				return res, err
			}
		}
		if cur == nil {
			if cur, err = newHourFile(b.tmp, r.Partition, r.Offset, b.rg); err != nil {
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

// hourFile is one partition's silver file of an hour, being written to a
// temporary file.
type hourFile struct {
	partition   int32
	first, last int64
	f           *os.File
	w           *lake.RowWriter
}

func newHourFile(dir string, p int32, first int64, rg int64) (*hourFile, error) {
	f, err := os.CreateTemp(dir, "backfill-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("silver temp file: %w", err)
	}
	return &hourFile{partition: p, first: first, last: first, f: f, w: lake.NewRowWriter(f, rg)}, nil
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
	key := lake.RebuildSilverKey(hour, h.partition, h.first, h.last, rebuild)
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
	return warehouse.SilverObject{Key: key, Hour: hour, Topic: topic, Partition: h.partition, First: h.first, Last: h.last,
		Rows: h.w.Rows(), Bytes: st.Size(), Compacted: true}, nil
}

// CommitBackfillGold replaces the gold rows of the rebuild's offset ranges,
// in one transaction.
func (b *Backfiller) CommitBackfillGold(ctx context.Context, rebuild int64) (warehouse.GoldReplaced, error) {
	began := time.Now()
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	res, err := b.wh.CommitRebuildGold(ctx, rebuild)
	if err != nil {
		return res, permanentOr(err, fmt.Sprintf("gold of rebuild %d", rebuild))
	}
	b.m.step(ctx, LayerGold, began, "inserted", res.Inserted, 1)
	activity.GetLogger(ctx).Info("backfill gold replaced", "rebuild", rebuild, "before", res.Before, "deleted", res.Deleted,
		"inserted", res.Inserted, "duplicates", res.Duplicates, "kept", res.Kept)
	return res, nil
}

// MartsDayInput names the UTC day whose marts are rebuilt.
type MartsDayInput struct {
	Day string `json:"day"`
}

// BuildBackfillMarts rebuilds the marts of every day, in the configured mart
// zone, that overlaps the UTC day.
func (b *Backfiller) BuildBackfillMarts(ctx context.Context, in MartsDayInput) (int64, error) {
	began := time.Now()
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return 0, temporal.NewNonRetryableApplicationError(fmt.Sprintf("day: %q: %v", in.Day, err), ErrTypeBackfillInput, err)
	}
	hb := newHeartbeater(ctx, 10*time.Second)
	defer hb.stop()
	start, end := day.Bounds(time.UTC)
	built, err := b.wh.BuildMartsOverlapping(ctx, start, end)
	if err != nil {
		return 0, permanentOr(err, "marts of "+in.Day)
	}
	var rows int64
	for _, m := range built {
		rows += m.ProductMetrics + m.Revenue + m.AuditSummary
	}
	b.m.step(ctx, LayerMarts, began, "", 0, 1)
	return rows, nil
}

// FinishInput ends a rebuild.
type FinishInput struct {
	Rebuild int64 `json:"rebuild"`
	Silver  bool  `json:"silver"` // silver was rewritten (counted as a day of silver)
}

// FinishBackfillDay drops the rebuild's staged rows.
func (b *Backfiller) FinishBackfillDay(ctx context.Context, in FinishInput) error {
	if err := b.wh.FinishRebuild(ctx, in.Rebuild); err != nil {
		return err
	}
	if in.Silver {
		b.m.step(ctx, LayerSilver, time.Now(), "", 0, 1)
	}
	return nil
}

// permanentOr makes an error no retry can fix (warehouse.IsPermanent)
// non-retryable, naming what; it wraps others for a retry.
func permanentOr(err error, what string) error {
	if warehouse.IsPermanent(err) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), ErrTypeBackfill, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
