package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// Layers a backfill rebuilds.
const (
	LayerSilver = "silver"
	LayerGold   = "gold"
	LayerMarts  = "marts"
)

// BackfillerConfig holds what a Backfiller needs. Lake and Store are required.
type BackfillerConfig struct {
	Lake  *lake.Store
	Store *warehouse.Store
	// UnitRecords is how many records one unit of work stages (see
	// warehouse.RebuildPlanInput). Default 100,000.
	UnitRecords int64
	// Running tells whether the Backfill run holding a day is still running,
	// so that a lease of a terminated run is taken over. Without it, a day
	// held by another run is always a conflict. WorkflowRunning adapts a
	// Temporal client.
	Running warehouse.Running
	// Silver is the Iceberg catalog of silver.events, which a backfill
	// overwrites day by day. Bucket defaults to Lake's. Required:
	// DatabaseURL.
	Silver silver.Config
}

// Validate reports a missing field.
func (c BackfillerConfig) Validate() error {
	if c.Lake == nil {
		return errors.New("backfiller: Lake is required")
	}
	if c.Store == nil {
		return errors.New("backfiller: Store is required")
	}
	return nil
}

// Backfiller holds the clients of the Backfill workflow's activities.
type Backfiller struct {
	lake    *lake.Store
	wh      *warehouse.Store
	unit    int64
	running warehouse.Running
	m       *backfillMetrics
	silver  *silver.Catalog
}

// backfillMetrics are the backfill's progress instruments (Prometheus names
// in parentheses). Dry runs record nothing.
//
//   - pipeline.backfill.rows{layer,outcome} (pipeline_backfill_rows_total):
//     layer silver, outcome written: distinct events written as silver rows;
//     layer gold, outcome inserted: rows inserted into gold.events.
//   - pipeline.backfill.days{layer} (pipeline_backfill_days_total): days
//     whose layer (silver, gold, marts) was rebuilt.
//   - pipeline.backfill.day.duration{layer} (pipeline_backfill_day_duration_seconds):
//     time of one step of a day: layer stage (one unit read and staged),
//     silver (one hour written), gold (the day's replacement), marts.
//
// A retried attempt counts again what it rewrites.
type backfillMetrics struct {
	rows, days metric.Int64Counter
	duration   metric.Float64Histogram
}

func newBackfillMetrics() (*backfillMetrics, error) {
	m := otel.Meter(instrumentationName)
	bm := &backfillMetrics{}
	var err error
	if bm.rows, err = m.Int64Counter("pipeline.backfill.rows",
		metric.WithDescription("Rows a backfill wrote, by layer and outcome (silver written, gold inserted)."),
		metric.WithUnit("{row}")); err != nil {
		return nil, err
	}
	if bm.days, err = m.Int64Counter("pipeline.backfill.days",
		metric.WithDescription("Days whose layer a backfill rebuilt, by layer."),
		metric.WithUnit("{day}")); err != nil {
		return nil, err
	}
	if bm.duration, err = m.Float64Histogram("pipeline.backfill.day.duration",
		metric.WithDescription("Time of one step of a day's rebuild, by layer (stage, silver, gold, marts)."),
		metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)); err != nil {
		return nil, err
	}
	return bm, nil
}

// step records one step of layer done in time since began, its rows under
// outcome (unless outcome is empty), and days completed. A nil receiver (a
// Backfiller not built by NewBackfiller) records nothing.
func (bm *backfillMetrics) step(ctx context.Context, layer string, began time.Time, outcome string, rows, days int64) {
	if bm == nil {
		return
	}
	l := attribute.String("layer", layer)
	if outcome != "" {
		bm.rows.Add(ctx, rows, metric.WithAttributes(l, attribute.String("outcome", outcome)))
	}
	if days > 0 {
		bm.days.Add(ctx, days, metric.WithAttributes(l))
	}
	bm.duration.Record(ctx, time.Since(began).Seconds(), metric.WithAttributes(l))
}

// NewBackfiller builds the backfill activities.
func NewBackfiller(cfg BackfillerConfig) (*Backfiller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m, err := newBackfillMetrics()
	if err != nil {
		return nil, err
	}
	if cfg.Silver.Bucket == "" {
		cfg.Silver.Bucket = cfg.Lake.Bucket()
	}
	cfg.Silver.CreateCatalogTables = false // provisioning's
	cat, err := silver.Open(cfg.Silver)
	if err != nil {
		return nil, fmt.Errorf("backfiller: %w", err)
	}
	return &Backfiller{lake: cfg.Lake, wh: cfg.Store, unit: cfg.UnitRecords,
		running: cfg.Running, m: m, silver: cat}, nil
}

// LeaseInput names the days a Backfill run rebuilds.
type LeaseInput struct {
	Days []string `json:"days"` // YYYY-MM-DD
}

// AcquireBackfillDays takes the days for the calling workflow run, all or
// none (pipeline.backfill_leases). A day held by another run that is still
// running fails it, non-retryably, naming that workflow; a day held by a run
// that ended is taken over.
func (b *Backfiller) AcquireBackfillDays(ctx context.Context, in LeaseInput) error {
	info := activity.GetInfo(ctx)
	days := make([]warehouse.Day, len(in.Days))
	for i, s := range in.Days {
		d, err := warehouse.ParseDay(s)
		if err != nil {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("days: %q: %v", s, err), ErrTypeBackfillInput, err)
		}
		days[i] = d
	}
	held, err := b.wh.AcquireLeases(ctx, info.WorkflowExecution.ID, info.WorkflowExecution.RunID, days, b.running)
	if err != nil {
		return err
	}
	if len(held) > 0 {
		var parts []string
		for _, l := range held {
			parts = append(parts, fmt.Sprintf("%s by workflow %s (run %s, since %s)", l.Day, l.WorkflowID, l.RunID, l.AcquiredAt.UTC().Format(time.RFC3339)))
		}
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("another backfill is rebuilding %s; wait for it or cancel it (temporal workflow cancel -w %s), then start this one again",
				strings.Join(parts, "; "), held[0].WorkflowID), ErrTypeBackfillConflict, nil)
	}
	activity.GetLogger(ctx).Info("backfill days leased", "days", in.Days)
	return nil
}

// ReleaseBackfillDays gives back the days of the calling workflow run.
func (b *Backfiller) ReleaseBackfillDays(ctx context.Context) (int64, error) {
	return b.wh.ReleaseLeases(ctx, activity.GetInfo(ctx).WorkflowExecution.RunID)
}

// WorkflowDescriber is the part of a Temporal client that WorkflowRunning
// needs.
type WorkflowDescriber interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

// WorkflowRunning reports through c whether a workflow run is still running;
// a run the server no longer knows is not.
func WorkflowRunning(c WorkflowDescriber) warehouse.Running {
	return func(ctx context.Context, workflowID, runID string) (bool, error) {
		d, err := c.DescribeWorkflowExecution(ctx, workflowID, runID)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return d.GetWorkflowExecutionInfo().GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
	}
}

// BackfillHeartbeat is the progress a long step reports.
type BackfillHeartbeat struct {
	Day   string `json:"day"`
	Stage string `json:"stage"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Rows  int64  `json:"rows"`
}
