package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/config"
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
	DefaultBackfillConcurrency = 4
	MaxBackfillConcurrency     = 16
	DefaultBackfillTopic       = config.DefaultTopic
	// BackfillDaysAtOnce is how many days are in flight at once: the next
	// day's units start while the last steps of a day (gold, marts) run.
	BackfillDaysAtOnce = 2
	// maxRestage bounds the rounds of staging units again that a database
	// restart (which empties the unlogged staging tables) may need.
	maxRestage = 3
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
	// Concurrency is how many units of work (a share of a day's sources to
	// stage, or one silver hour to write) run at once, over every worker
	// polling batch-jobs. Default 4, at most 16.
	Concurrency int `json:"concurrency,omitempty"`
	// Topic whose bronze objects are read. Default "events".
	Topic string `json:"topic,omitempty"`
}

// BackfillProgress is the answer to the progress query. Units are the
// steps of the days planned so far (staging shares, silver hours, gold,
// marts): their total grows as days are planned.
type BackfillProgress struct {
	DaysTotal  int      `json:"days_total"`
	DaysDone   int      `json:"days_done"`
	UnitsTotal int      `json:"units_total"`
	UnitsDone  int      `json:"units_done"`
	CurrentDay string   `json:"current_day,omitempty"` // the latest day started and not done
	Running    []string `json:"running,omitempty"`     // every day in flight
	Rows       int64    `json:"rows"`                  // distinct events of the days resolved
	Paused     bool     `json:"paused"`
	DryRun     bool     `json:"dry_run"`
	Failed     string   `json:"failed,omitempty"` // the day that failed, if any
}

// BackfillDayResult reports what was (or, in a dry run, would be) rebuilt of
// one day.
type BackfillDayResult struct {
	Day           string `json:"day"`
	DryRun        bool   `json:"dry_run"`
	Rebuild       int64  `json:"rebuild,omitempty"` // pipeline.rebuilds.rebuild_id
	Units         int    `json:"units"`
	BronzeObjects int    `json:"bronze_objects"`            // bronze objects whose event hours touch the day
	Records       int64  `json:"records"`                   // records (or silver rows) in them
	Quarantined   int64  `json:"quarantined"`               // records that failed cleaning
	OtherDays     int64  `json:"other_days"`                // cleaned records of other days
	Duplicates    int64  `json:"duplicates"`                // rows of the day whose event_id was seen already
	Rows          int64  `json:"rows"`                      // distinct events of the day
	SilverRows    int64  `json:"silver_rows,omitempty"`     // rows the day's silver.events overwrite wrote
	SilverSnap    int64  `json:"silver_snapshot,omitempty"` // the silver.events snapshot of the overwrite
	GoldLoad      int64  `json:"gold_load,omitempty"`       // pipeline.loads.load_id of the day's gold commit
	GoldBefore    int64  `json:"gold_before"`               // gold.events rows of the day before
	GoldDeleted   int64  `json:"gold_deleted"`              // rows of the rebuild's offset ranges replaced
	GoldInserted  int64  `json:"gold_inserted"`
	GoldKept      int64  `json:"gold_kept"` // rows of the day from offsets the rebuild did not read, kept
	GoldPayments  int64  `json:"gold_payments"`
	GoldAudit     int64  `json:"gold_audit"`
	MartRows      int64  `json:"mart_rows"`
}

// BackfillResult reports every day, in day order, and the totals.
type BackfillResult struct {
	From          string              `json:"from"`
	To            string              `json:"to"`
	Layers        []string            `json:"layers"`
	DryRun        bool                `json:"dry_run"`
	Days          []BackfillDayResult `json:"days"`
	BronzeObjects int                 `json:"bronze_objects"`
	Records       int64               `json:"records"`
	Rows          int64               `json:"rows"`
	GoldInserted  int64               `json:"gold_inserted"`
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

// Validate reports what Backfill would refuse at once; its error names the
// field.
func (in BackfillInput) Validate() error {
	_, err := planBackfill(in)
	return err
}
