package activities

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/warehouse"
)

// Marts holds the clients of the mart activities (NightlyAggregation,
// RefreshMarts). Provision records the zone (Provisioner.RecordMartZone).
type Marts struct {
	Store *warehouse.Store
}

// BuildMartsInput names one day. All fields are required except Zone.
type BuildMartsInput struct {
	Day string `json:"day"` // YYYY-MM-DD
	// Zone is the IANA zone the day is cut in. Default: the marts' zone
	// recorded by provisioning (warehouse.Store.MartZone), UTC when none.
	Zone string `json:"zone"`
}

// BuildMartsResult counts the mart rows written for the day.
type BuildMartsResult struct {
	Day            string `json:"day"`
	Zone           string `json:"zone,omitempty"` // the zone the day was cut in
	ProductMetrics int64  `json:"product_metrics"`
	Revenue        int64  `json:"revenue"`
	AuditSummary   int64  `json:"audit_summary"`
}

// heartbeatEvery is how often the mart activities report that they are alive
// while PostgreSQL works (a day of 500M events, or a wait for a backfill of
// the day to commit).
const heartbeatEvery = 10 * time.Second

// BuildMarts replaces the three marts for one day from one snapshot of gold,
// so it can be retried or rerun at will. It heartbeats while it waits and
// builds.
func (m *Marts) BuildMarts(ctx context.Context, in BuildMartsInput) (BuildMartsResult, error) {
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return BuildMartsResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("day %q: %v", in.Day, err), ErrTypeInvalidInput, err)
	}
	var loc *time.Location
	if in.Zone != "" {
		if loc, err = time.LoadLocation(in.Zone); err != nil {
			return BuildMartsResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("zone %q: %v", in.Zone, err), ErrTypeInvalidInput, err)
		}
	} else if loc, err = m.Store.MartZone(ctx); err != nil {
		return BuildMartsResult{}, martError("build marts for "+in.Day, err)
	}
	stop := keepBeating(ctx, in.Day)
	res, err := m.Store.BuildMarts(ctx, day, loc)
	stop()
	if err != nil {
		return BuildMartsResult{}, martError("build marts for "+in.Day, err)
	}
	activity.GetLogger(ctx).Info("marts built", "day", in.Day, "zone", res.Zone,
		"product_metrics", res.ProductMetrics, "revenue", res.Revenue, "audit_summary", res.AuditSummary)
	return BuildMartsResult{Day: in.Day, Zone: res.Zone, ProductMetrics: res.ProductMetrics, Revenue: res.Revenue, AuditSummary: res.AuditSummary}, nil
}

// PendingMartDaysInput bounds the listing. Limit is required.
type PendingMartDaysInput struct {
	Limit int `json:"limit"` // at most this many days, longest pending first
}

// PendingMartDay is a day whose marts wait for a rebuild.
type PendingMartDay struct {
	Day   string    `json:"day"`   // YYYY-MM-DD
	Zone  string    `json:"zone"`  // the zone of its latest build
	State string    `json:"state"` // dirty, rebuilding or zone (see warehouse.MartDay)
	Since time.Time `json:"since"`
}

// PendingMartDaysResult lists pending days and counts them all.
type PendingMartDaysResult struct {
	Days  []PendingMartDay `json:"days"`
	Total int64            `json:"total"`
}

// PendingMartDays lists the days whose gold changed after their marts were
// built (or whose rebuild died, or that were built in another zone).
func (m *Marts) PendingMartDays(ctx context.Context, in PendingMartDaysInput) (PendingMartDaysResult, error) {
	days, total, err := m.Store.PendingMartDays(ctx, in.Limit)
	if err != nil {
		return PendingMartDaysResult{}, martError("pending mart days", err)
	}
	res := PendingMartDaysResult{Days: make([]PendingMartDay, len(days)), Total: total}
	for i, d := range days {
		res.Days[i] = PendingMartDay{Day: d.Day.String(), Zone: d.Zone, State: d.State, Since: d.Since}
	}
	return res, nil
}

// MartZoneResult is the zone in force.
type MartZoneResult struct {
	Zone string `json:"zone"` // IANA name, "UTC" by default
}

// MartZone returns the zone the marts' days are cut in (UTC when none was
// recorded), for workflows that must know "yesterday" before building.
func (m *Marts) MartZone(ctx context.Context) (MartZoneResult, error) {
	loc, err := m.Store.MartZone(ctx)
	if err != nil {
		return MartZoneResult{}, martError("read the mart zone", err)
	}
	return MartZoneResult{Zone: loc.String()}, nil
}

// martError wraps err, non-retryable when no retry can fix it.
func martError(what string, err error) error {
	if warehouse.IsPermanent(err) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", what, err), "MartFailed", err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// keepBeating heartbeats every heartbeatEvery until stop is called, so
// that a worker that died is noticed within the heartbeat timeout rather
// than the 30-minute start-to-close.
func keepBeating(ctx context.Context, detail string) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, detail)
			}
		}
	}()
	return func() { close(done) }
}

var martMetricsOnce sync.Once

// RegisterMartMetrics registers the gauge pipeline.marts.pending (Prometheus
// pipeline_marts_pending): the days whose marts wait for a rebuild, read
// from the warehouse at each collection like the SLO gauges, so that every
// worker reports the same number. Only the first call in a process
// registers (its store is the one read).
func RegisterMartMetrics(store *warehouse.Store) error {
	var err error
	martMetricsOnce.Do(func() {
		m := otel.Meter(instrumentationName)
		var pending metric.Int64ObservableGauge
		pending, err = m.Int64ObservableGauge("pipeline.marts.pending",
			metric.WithDescription("Days whose daily marts wait for a rebuild: gold changed after they were built, a rebuild died, or they were built in another zone. The marts-refresh schedule rebuilds them."))
		if err != nil {
			return
		}
		_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			// A failed read leaves the series out of this scrape.
			if _, total, err := store.PendingMartDays(ctx, 1); err == nil {
				o.ObserveInt64(pending, total)
			}
			return nil
		}, pending)
	})
	return err
}
