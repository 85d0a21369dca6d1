package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/event"
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

// PlanBackfillDay snapshots the day's sources: the bronze objects, the
// source of truth, whenever silver or gold is rebuilt (or in a dry run).
// Since silver is the Iceberg table silver.events, which a gold rebuild
// rewrites too, a rebuild no longer reads silver Parquet files. Only a
// marts-only rebuild reads no source and plans nothing (ID 0).
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
	case slices.Contains(in.Layers, LayerSilver) || slices.Contains(in.Layers, LayerGold) || in.DryRun:
		source = warehouse.RebuildFromBronze
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
	Source  string `json:"source"` // warehouse.RebuildFromBronze
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
	// The unit's rows of the day, object after object; StageRebuildUnit
	// counts what it stages.
	rows := func(yield func(event.Row, error) bool) {
		inDay := func(r event.Row, err error) bool {
			if err == nil && (r.OccurredAt < lo || r.OccurredAt >= hi) {
				tally.OtherDays++
				return true
			}
			return yield(r, err)
		}
		for i, src := range srcs {
			more, err := b.bronzeRows(ctx, in.Topic, src, &tally, inDay)
			if err != nil {
				yield(event.Row{}, err)
				return
			}
			if !more {
				return
			}
			hb.set(BackfillHeartbeat{Day: in.Day, Stage: "stage", Done: i + 1, Total: len(srcs), Rows: tally.Records})
		}
	}
	if err := b.wh.StageRebuildUnit(ctx, in.Rebuild, in.Unit, rows, &tally); err != nil {
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
	recs, err := readBronze(ctx, b.lake, warehouse.BronzeObject{Topic: topic, Incarnation: src.Incarnation, Key: src.Key,
		Partition: src.Partition, First: src.First, Last: src.Last, Records: int(src.Records)})
	if err != nil {
		return false, err
	}
	rows, bad := clean(topic, src.Incarnation, recs)
	tally.Records += int64(len(recs))
	tally.Quarantined += int64(len(bad))
	for _, r := range rows {
		if !yield(r, nil) {
			return false, nil
		}
	}
	return true, nil
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
