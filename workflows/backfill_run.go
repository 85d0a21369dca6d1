package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/warehouse"
)

// Backfill rebuilds the days From..To (UTC, inclusive) layer by layer.
//
// First it leases the days (pipeline.backfill_leases): while another
// Backfill run that is still running holds one of them, it fails at once,
// naming that workflow, whoever started either (pipeline backfill, the
// Temporal CLI or UI). A dry run leases nothing.
//
// Then, at most BackfillDaysAtOnce days at once, in day order, each day is
// planned (its sources fixed), staged in units, resolved, written to silver
// per hour, replaced in gold and aggregated into marts, each step an
// activity; at most Concurrency units run at once over every batch worker.
// A day replaces only what came from the sources it planned, so events the
// live stream loads meanwhile stay exactly once.
//
// Bad input fails at once, non-retryably, naming the field. The progress
// query reports days and units done; the pause signal stops starting units
// (those in flight finish), resume starts them again. Cancellation lets the
// days in flight finish and starts no other.
func Backfill(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
	plan, err := planBackfill(in)
	if err != nil {
		return BackfillResult{}, err
	}
	r := &backfillRun{plan: plan, dry: in.DryRun, log: workflow.GetLogger(ctx),
		prog: BackfillProgress{DaysTotal: len(plan.days), DryRun: in.DryRun}}
	res := BackfillResult{From: in.From, To: in.To, Layers: plan.layers, DryRun: in.DryRun,
		Days: make([]BackfillDayResult, len(plan.days))}
	if err := workflow.SetQueryHandler(ctx, BackfillProgressQuery, func() (BackfillProgress, error) {
		out := r.prog
		out.Running = slices.Clone(r.prog.Running)
		return out, nil
	}); err != nil {
		return res, err
	}
	r.listenPauses(ctx)

	// Days in flight run on a disconnected context: a cancellation lets them
	// finish and starts no other.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var b *activities.Backfiller
	if !in.DryRun {
		lctx := workflow.WithActivityOptions(ctx, shortOptions)
		if err := workflow.ExecuteActivity(lctx, b.AcquireBackfillDays, activities.LeaseInput{Days: plan.days}).Get(lctx, nil); err != nil {
			return res, err
		}
		defer func() {
			rctx := workflow.WithActivityOptions(dctx, shortOptions)
			if err := workflow.ExecuteActivity(rctx, b.ReleaseBackfillDays).Get(rctx, nil); err != nil {
				r.log.Warn("backfill days not released; the next backfill of them takes them over", "error", err)
			}
		}()
	}

	var failure, stopErr error
	daysInFlight := 0
	for i, day := range plan.days {
		err := workflow.Await(ctx, func() bool {
			return failure != nil || (!r.prog.Paused && daysInFlight < BackfillDaysAtOnce)
		})
		if err != nil {
			stopErr = err // cancelled
			break
		}
		if failure != nil {
			break
		}
		daysInFlight++
		r.running(day, true)
		workflow.Go(dctx, func(gctx workflow.Context) {
			dr, err := r.day(gctx, day)
			daysInFlight--
			r.running(day, false)
			if err != nil {
				if failure == nil {
					failure = fmt.Errorf("backfill of %s: %w", day, err)
					r.prog.Failed = day
				}
				return
			}
			res.Days[i] = dr
			r.prog.DaysDone++
		})
	}
	_ = workflow.Await(dctx, func() bool { return daysInFlight == 0 })
	done := res.Days[:0]
	for _, d := range res.Days {
		if d.Day == "" {
			continue
		}
		done = append(done, d)
		res.BronzeObjects += d.BronzeObjects
		res.Records += d.Records
		res.Rows += d.Rows
		res.GoldInserted += d.GoldInserted
	}
	res.Days = done
	if failure != nil {
		return res, failure
	}
	if stopErr != nil {
		r.log.Info("backfill cancelled between days", "days_done", r.prog.DaysDone, "days_total", r.prog.DaysTotal)
		return res, stopErr
	}
	return res, nil
}

// Activity options of the backfill's steps.
var (
	shortOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 10, NonRetryableErrorTypes: backfillFatal},
	}
	stepOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		// The steps heartbeat every 10 s; a killed worker's step is retried
		// on another 30 s later.
		HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 2 * time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: backfillFatal},
	}
	backfillFatal = []string{activities.ErrTypeBackfillInput, activities.ErrTypeBackfill, activities.ErrTypeBackfillConflict,
		activities.ErrTypeBronzeCorrupt}
)

// backfillRun is the state of one Backfill execution shared by its
// goroutines (workflow goroutines run one at a time).
type backfillRun struct {
	plan     backfillPlan
	dry      bool
	log      log.Logger
	prog     BackfillProgress
	inFlight int // units running, over every day
	days     map[string]bool
}

func (r *backfillRun) running(day string, on bool) {
	if r.days == nil {
		r.days = map[string]bool{}
	}
	if on {
		r.days[day] = true
	} else {
		delete(r.days, day)
	}
	r.prog.Running = r.prog.Running[:0]
	for _, d := range r.plan.days {
		if r.days[d] {
			r.prog.Running = append(r.prog.Running, d)
		}
	}
	r.prog.CurrentDay = ""
	if n := len(r.prog.Running); n > 0 {
		r.prog.CurrentDay = r.prog.Running[n-1]
	}
}

// listenPauses applies the pause and resume signals.
func (r *backfillRun) listenPauses(ctx workflow.Context) {
	pauseCh := workflow.GetSignalChannel(ctx, BackfillPauseSignal)
	resumeCh := workflow.GetSignalChannel(ctx, BackfillResumeSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			sel := workflow.NewSelector(gctx)
			sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(gctx, nil)
				if !r.prog.Paused {
					r.log.Info("backfill paused")
				}
				r.prog.Paused = true
			})
			sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(gctx, nil)
				if r.prog.Paused {
					r.log.Info("backfill resumed")
				}
				r.prog.Paused = false
			})
			sel.Select(gctx)
			if gctx.Err() != nil {
				return
			}
		}
	})
}

// each runs n units through start, at most Concurrency at once over the
// whole backfill, each finished by done; after the first error it starts no
// other unit, waits for those in flight, and returns that error.
func (r *backfillRun) each(ctx workflow.Context, n int, start func(i int) workflow.Future, done func(ctx workflow.Context, i int, f workflow.Future) error) error {
	var first error
	pending := 0
	for i := range n {
		if err := workflow.Await(ctx, func() bool {
			return first != nil || (!r.prog.Paused && r.inFlight < r.plan.concurrency)
		}); err != nil {
			return err
		}
		if first != nil {
			break
		}
		r.inFlight++
		pending++
		f := start(i)
		workflow.Go(ctx, func(gctx workflow.Context) {
			err := done(gctx, i, f)
			r.inFlight--
			pending--
			r.prog.UnitsDone++
			if err != nil && first == nil {
				first = err
			}
		})
	}
	_ = workflow.Await(ctx, func() bool { return pending == 0 })
	return first
}

// one runs a single step as a unit.
func (r *backfillRun) one(ctx workflow.Context, activity any, arg any, out any) error {
	r.prog.UnitsTotal++
	return r.each(ctx, 1, func(int) workflow.Future {
		return workflow.ExecuteActivity(ctx, activity, arg)
	}, func(gctx workflow.Context, _ int, f workflow.Future) error { return f.Get(gctx, out) })
}

// day runs the steps of one day.
func (r *backfillRun) day(ctx workflow.Context, day string) (BackfillDayResult, error) {
	ctx = workflow.WithActivityOptions(ctx, stepOptions)
	var b *activities.Backfiller
	layer := func(l string) bool { return slices.Contains(r.plan.layers, l) }
	dr := BackfillDayResult{Day: day, DryRun: r.dry}
	var rb warehouse.Rebuild
	if err := r.one(ctx, b.PlanBackfillDay, activities.PlanDayInput{Day: day, Topic: r.plan.topic, Layers: r.plan.layers, DryRun: r.dry}, &rb); err != nil {
		return dr, err
	}
	dr.Rebuild, dr.Units = rb.ID, rb.Units
	dr.BronzeObjects = rb.Objects
	if rb.ID != 0 {
		// The staged rows go, whatever happens next.
		defer func() {
			fctx, _ := workflow.NewDisconnectedContext(ctx)
			fin := activities.FinishInput{Rebuild: rb.ID, Silver: layer(activities.LayerSilver) && !r.dry}
			if err := workflow.ExecuteActivity(workflow.WithActivityOptions(fctx, shortOptions), b.FinishBackfillDay, fin).Get(fctx, nil); err != nil {
				r.log.Warn("staged rows of the rebuild not dropped", "rebuild", rb.ID, "error", err)
			}
		}()
		resolved, err := r.stage(ctx, day, rb)
		if err != nil {
			return dr, err
		}
		dr.Records, dr.Quarantined, dr.OtherDays = resolved.Records, resolved.Quarantined, resolved.OtherDays
		dr.Duplicates, dr.Rows = resolved.Duplicates, resolved.Rows
		r.prog.Rows += resolved.Rows
		// Since silver is the Iceberg table silver.events, the day's
		// silver is overwritten after gold, with the rows gold's commit
		// inserted; before, silver Parquet files were written per hour
		// first.
		iceberg := workflow.GetVersion(ctx, "silver-iceberg", workflow.DefaultVersion, 1) >= 1
		if layer(activities.LayerSilver) && !r.dry && !iceberg {
			if err := r.legacySilverHours(ctx, rb, resolved.Hours); err != nil {
				return dr, err
			}
		}
		if layer(activities.LayerGold) && !r.dry {
			var g warehouse.GoldReplaced
			if err := r.one(ctx, b.CommitBackfillGold, rb.ID, &g); err != nil {
				return dr, err
			}
			dr.GoldBefore, dr.GoldDeleted, dr.GoldInserted, dr.GoldKept = g.Before, g.Deleted, g.Inserted, g.Kept
			dr.GoldLoad = g.LoadID
			dr.GoldPayments, dr.GoldAudit = g.Payments, g.Audit
		}
		// Gold rebuilt means silver rebuilt: they hold the same events.
		if (layer(activities.LayerSilver) || layer(activities.LayerGold)) && !r.dry && iceberg {
			in := activities.SilverDayInput{Rebuild: rb.ID, Topic: rb.Topic, Day: day, GoldLoad: dr.GoldLoad}
			var o activities.SilverDayResult
			if err := r.one(ctx, b.OverwriteBackfillSilver, in, &o); err != nil {
				return dr, err
			}
			dr.SilverRows, dr.SilverSnap = o.Rows, o.SnapshotID
		}
	}
	if layer(activities.LayerMarts) && !r.dry {
		if err := r.one(ctx, b.BuildBackfillMarts, activities.MartsDayInput{Day: day}, &dr.MartRows); err != nil {
			return dr, err
		}
	}
	r.log.Info("backfill day done", "day", day, "rebuild", rb.ID, "units", rb.Units, "rows", dr.Rows,
		"gold_inserted", dr.GoldInserted, "gold_kept", dr.GoldKept)
	return dr, nil
}

// stage stages every unit of the rebuild and resolves the winners; units that
// a database restart emptied are staged again.
func (r *backfillRun) stage(ctx workflow.Context, day string, rb warehouse.Rebuild) (warehouse.Resolved, error) {
	var b *activities.Backfiller
	units := make([]int, rb.Units)
	for i := range units {
		units[i] = i
	}
	for round := 0; ; round++ {
		r.prog.UnitsTotal += len(units)
		err := r.each(ctx, len(units), func(i int) workflow.Future {
			return workflow.ExecuteActivity(ctx, b.StageBackfillUnit, activities.UnitInput{Rebuild: rb.ID, Unit: units[i], Day: day,
				Topic: rb.Topic, Source: rb.Source})
		}, func(gctx workflow.Context, _ int, f workflow.Future) error { return f.Get(gctx, nil) })
		if err != nil {
			return warehouse.Resolved{}, err
		}
		var res warehouse.Resolved
		if err := r.one(ctx, b.ResolveBackfillDay, rb.ID, &res); err != nil {
			return res, err
		}
		if len(res.Missing) == 0 {
			return res, nil
		}
		if round == maxRestage {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("rebuild %d of %s: units %v lost their staged rows %d times (is PostgreSQL restarting?)",
				rb.ID, day, res.Missing, round+1), activities.ErrTypeBackfill, nil)
		}
		r.log.Warn("staged rows lost (database restarted?); staging the units again", "rebuild", rb.ID, "units", res.Missing)
		units = res.Missing
	}
}

// legacySilverHours is the silver step of runs from before version
// silver-iceberg: one WriteBackfillSilverHour activity per hour, which wrote
// Parquet files under silver/events/dt=…. The activity is gone, so such a
// run, if one is still going on after the upgrade, fails at this step
// before it touches gold (start the backfill again); its history still
// replays, as the same commands are issued.
func (r *backfillRun) legacySilverHours(ctx workflow.Context, rb warehouse.Rebuild, hours []time.Time) error {
	type hourInput struct {
		Rebuild int64     `json:"rebuild"`
		Topic   string    `json:"topic"`
		Hour    time.Time `json:"hour"`
	}
	r.prog.UnitsTotal += len(hours)
	return r.each(ctx, len(hours), func(i int) workflow.Future {
		return workflow.ExecuteActivity(ctx, "WriteBackfillSilverHour", hourInput{Rebuild: rb.ID, Topic: rb.Topic, Hour: hours[i]})
	}, func(gctx workflow.Context, i int, f workflow.Future) error { return f.Get(gctx, nil) })
}
