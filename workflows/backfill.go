package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
)

// Names of the Backfill workflow's query and signals.
const (
	BackfillProgressQuery = "progress"
	BackfillPauseSignal   = "pause"
	BackfillResumeSignal  = "resume"
)

// Defaults and limits of a backfill.
const (
	DefaultBackfillMaxDays     = 31
	DefaultBackfillConcurrency = 2
	MaxBackfillConcurrency     = 16
	DefaultBackfillTopic       = "events"
)

// AllLayers are the layers a backfill rebuilds when none are named, in order.
var AllLayers = []string{activities.LayerSilver, activities.LayerGold, activities.LayerMarts}

// BackfillInput is what users start a backfill with, e.g. from the Temporal
// CLI: {"from":"2026-11-01","to":"2026-11-03","layers":["silver","gold","marts"]}.
// From and To are required; the rest is optional.
type BackfillInput struct {
	// From and To are the first and last day (YYYY-MM-DD, inclusive), by event
	// time in UTC.
	From string `json:"from"`
	To   string `json:"to"`
	// Layers to rebuild: silver, gold, marts. Default all three.
	Layers []string `json:"layers,omitempty"`
	// DryRun reports what would be rebuilt and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// MaxDays refuses a longer range. Default 31.
	MaxDays int `json:"max_days,omitempty"`
	// Concurrency is how many days are rebuilt at once. Default 2, at most 16.
	Concurrency int `json:"concurrency,omitempty"`
	// Topic whose bronze objects are read. Default "events".
	Topic string `json:"topic,omitempty"`
}

// BackfillProgress is the answer to the progress query.
type BackfillProgress struct {
	DaysTotal  int      `json:"days_total"`
	DaysDone   int      `json:"days_done"`
	CurrentDay string   `json:"current_day,omitempty"` // the latest day started and not done
	Running    []string `json:"running,omitempty"`     // every day in flight
	Rows       int64    `json:"rows"`                  // silver/gold rows of the days done
	Paused     bool     `json:"paused"`
	DryRun     bool     `json:"dry_run"`
	Failed     string   `json:"failed,omitempty"` // the day that failed, if any
}

// BackfillResult reports every day, in day order, and the totals.
type BackfillResult struct {
	From          string                         `json:"from"`
	To            string                         `json:"to"`
	Layers        []string                       `json:"layers"`
	DryRun        bool                           `json:"dry_run"`
	Days          []activities.BackfillDayResult `json:"days"`
	BronzeObjects int                            `json:"bronze_objects"`
	Records       int64                          `json:"records"`
	Rows          int64                          `json:"rows"`
	GoldInserted  int64                          `json:"gold_inserted"`
}

// backfillPlan is a validated BackfillInput.
type backfillPlan struct {
	days        []string
	layers      []string
	topic       string
	concurrency int
}

func invalidInput(field, format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(field+": "+fmt.Sprintf(format, args...), activities.ErrTypeBackfillInput, nil)
}

// planBackfill validates in; its errors name the field.
func planBackfill(in BackfillInput) (backfillPlan, error) {
	var p backfillPlan
	from, err := time.Parse(time.DateOnly, in.From)
	if err != nil {
		return p, invalidInput("from", "%q is not a day as YYYY-MM-DD", in.From)
	}
	to, err := time.Parse(time.DateOnly, in.To)
	if err != nil {
		return p, invalidInput("to", "%q is not a day as YYYY-MM-DD", in.To)
	}
	if from.After(to) {
		return p, invalidInput("from", "%s is after to %s", in.From, in.To)
	}
	maxDays := in.MaxDays
	if maxDays < 0 {
		return p, invalidInput("max_days", "%d must not be negative", maxDays)
	}
	if maxDays == 0 {
		maxDays = DefaultBackfillMaxDays
	}
	n := int(to.Sub(from)/(24*time.Hour)) + 1
	if n > maxDays {
		return p, invalidInput("to", "%s..%s is %d days, more than max_days %d", in.From, in.To, n, maxDays)
	}
	if len(in.Layers) == 0 {
		p.layers = slices.Clone(AllLayers)
	}
	for _, l := range in.Layers {
		if !slices.Contains(AllLayers, l) {
			return p, invalidInput("layers", "unknown layer %q (want %s)", l, strings.Join(AllLayers, ", "))
		}
		if !slices.Contains(p.layers, l) {
			p.layers = append(p.layers, l)
		}
	}
	p.concurrency = in.Concurrency
	if p.concurrency < 0 || p.concurrency > MaxBackfillConcurrency {
		return p, invalidInput("concurrency", "%d: want 1..%d", in.Concurrency, MaxBackfillConcurrency)
	}
	if p.concurrency == 0 {
		p.concurrency = DefaultBackfillConcurrency
	}
	p.topic = in.Topic
	if p.topic == "" {
		p.topic = DefaultBackfillTopic
	}
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		p.days = append(p.days, d.Format(time.DateOnly))
	}
	return p, nil
}

// Backfill rebuilds the days From..To (UTC, inclusive) layer by layer from
// bronze: one BackfillDay activity per day, at most Concurrency at once, in
// day order. Bad input fails at once, non-retryably, naming the field. The
// progress query reports days done; the pause signal stops starting days
// (days in flight finish), resume starts them again. Cancellation lets the
// days in flight finish and starts no other.
func Backfill(ctx workflow.Context, in BackfillInput) (BackfillResult, error) {
	plan, err := planBackfill(in)
	if err != nil {
		return BackfillResult{}, err
	}
	log := workflow.GetLogger(ctx)
	res := BackfillResult{From: in.From, To: in.To, Layers: plan.layers, DryRun: in.DryRun,
		Days: make([]activities.BackfillDayResult, len(plan.days))}
	prog := BackfillProgress{DaysTotal: len(plan.days), DryRun: in.DryRun}
	running := map[string]bool{}
	update := func() {
		prog.Running = prog.Running[:0]
		for _, d := range plan.days {
			if running[d] {
				prog.Running = append(prog.Running, d)
			}
		}
		prog.CurrentDay = ""
		if n := len(prog.Running); n > 0 {
			prog.CurrentDay = prog.Running[n-1]
		}
	}
	if err := workflow.SetQueryHandler(ctx, BackfillProgressQuery, func() (BackfillProgress, error) {
		out := prog
		out.Running = slices.Clone(prog.Running)
		return out, nil
	}); err != nil {
		return res, err
	}
	pauseCh := workflow.GetSignalChannel(ctx, BackfillPauseSignal)
	resumeCh := workflow.GetSignalChannel(ctx, BackfillResumeSignal)
	workflow.Go(ctx, func(gctx workflow.Context) {
		for {
			sel := workflow.NewSelector(gctx)
			sel.AddReceive(pauseCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(gctx, nil)
				if !prog.Paused {
					log.Info("backfill paused")
				}
				prog.Paused = true
			})
			sel.AddReceive(resumeCh, func(c workflow.ReceiveChannel, _ bool) {
				c.Receive(gctx, nil)
				if prog.Paused {
					log.Info("backfill resumed")
				}
				prog.Paused = false
			})
			sel.Select(gctx)
			if gctx.Err() != nil {
				return
			}
		}
	})

	// Days in flight run on a disconnected context: a cancellation lets them
	// finish (each replaces its day atomically) and starts no other.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	dctx = workflow.WithActivityOptions(dctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBackfillInput, activities.ErrTypeBackfill},
		},
	})
	var b *activities.Backfiller
	var failure error
	inFlight := 0
	var stopErr error
	for i, day := range plan.days {
		err := workflow.Await(ctx, func() bool { return failure != nil || (!prog.Paused && inFlight < plan.concurrency) })
		if err != nil {
			stopErr = err // cancelled
			break
		}
		if failure != nil {
			break
		}
		inFlight++
		running[day] = true
		update()
		f := workflow.ExecuteActivity(dctx, b.BackfillDay, activities.BackfillDayInput{
			Day: day, Topic: plan.topic, Layers: plan.layers, DryRun: in.DryRun})
		workflow.Go(dctx, func(gctx workflow.Context) {
			var dr activities.BackfillDayResult
			err := f.Get(gctx, &dr)
			inFlight--
			delete(running, day)
			if err != nil {
				if failure == nil {
					failure = fmt.Errorf("backfill of %s: %w", day, err)
					prog.Failed = day
				}
			} else {
				res.Days[i] = dr
				prog.DaysDone++
				prog.Rows += dr.Rows
			}
			update()
		})
	}
	_ = workflow.Await(dctx, func() bool { return inFlight == 0 })
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
		log.Info("backfill cancelled between days", "days_done", prog.DaysDone, "days_total", prog.DaysTotal)
		return res, stopErr
	}
	return res, nil
}

// Validate reports what Backfill would refuse at once; its error names the
// field.
func (in BackfillInput) Validate() error {
	_, err := planBackfill(in)
	return err
}
