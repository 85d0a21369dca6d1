package status

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/acme/pipeline/warehouse"
)

// SLOValue formats an SLO's value or objective in its unit.
func SLOValue(slo string, v float64) string {
	switch slo {
	case "freshness":
		return fmt.Sprintf("%.1fs", v)
	case "error_rate":
		return fmt.Sprintf("%.2f%%", v*100)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// monitoring reads the SLOs, alerts and arrival hours, when the database has the
// monitor's tables (a worker of this version migrated it).
func (s Source) monitoring(ctx context.Context, snap *Snapshot) error {
	return s.withTable(ctx, "pipeline.alerts", "monitoring tables", func(store *warehouse.Store) (err error) {
		if snap.SLOs, err = store.LatestMeasurements(ctx, snap.Taken); err != nil {
			return err
		}
		open, err := store.OpenAlerts(ctx)
		if err != nil {
			return err
		}
		resolved, err := store.ResolvedAlerts(ctx, 5)
		if err != nil {
			return err
		}
		slices.Reverse(open) // newest first, like the resolved ones
		snap.OpenAlerts = len(open)
		snap.Alerts = append(open, resolved...)

		// Each recent arrival hour through the layers; gold is counted by
		// the SLO monitor, not here (goldFrom = goldTo: no hour).
		newest := snap.Taken.Truncate(time.Hour)
		oldest := newest.Add(-time.Duration(s.Hours-1) * time.Hour)
		end := newest.Add(time.Hour)
		snap.Arrivals, err = store.Accounting(ctx, s.Topic, oldest, end, end, end)
		return err
	})
}
