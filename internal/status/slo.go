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

// Arrival is one arrival hour through the layers (pipeline.api_accepted and
// the stream's tally in pipeline.stream_arrivals).
type Arrival struct {
	Hour        time.Time `json:"hour"`
	Accepted    int64     `json:"accepted"` // -1: no API process recorded this hour
	Records     int64     `json:"records"`  // consumed from Kafka into bronze
	Quarantined int64     `json:"quarantined"`
	Cleaned     int64     `json:"cleaned"`
	Inserted    int64     `json:"inserted"` // new gold rows
}

// Waiting is what the API accepted that the stream has not consumed yet
// (0 when unknown or none).
func (a Arrival) Waiting() int64 {
	if a.Accepted < 0 {
		return 0
	}
	return max(0, a.Accepted-a.Records)
}

// Duplicates are cleaned records whose event_id gold had already.
func (a Arrival) Duplicates() int64 { return a.Cleaned - a.Inserted }

// monitoring reads the SLOs, alerts and arrivals, when the database has the
// monitor's tables (a worker of this version migrated it).
func (s Source) monitoring(ctx context.Context, snap *Snapshot) error {
	var ok bool
	if err := s.DB.QueryRow(ctx, `SELECT to_regclass('pipeline.alerts') IS NOT NULL`).Scan(&ok); err != nil {
		return fmt.Errorf("status: monitoring tables: %w", err)
	}
	if !ok {
		return nil
	}
	store := warehouse.FromPool(s.DB)
	var err error
	if snap.SLOs, err = store.LatestMeasurements(ctx, snap.Taken); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	open, err := store.OpenAlerts(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	resolved, err := store.ResolvedAlerts(ctx, 5)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	slices.Reverse(open) // newest first, like the resolved ones
	snap.OpenAlerts = len(open)
	snap.Alerts = append(open, resolved...)

	newest := snap.Taken.Truncate(time.Hour)
	oldest := newest.Add(-time.Duration(s.Hours-1) * time.Hour)
	idx := map[time.Time]*Arrival{}
	snap.Arrivals = make([]Arrival, s.Hours)
	for i := range snap.Arrivals {
		snap.Arrivals[i] = Arrival{Hour: newest.Add(-time.Duration(i) * time.Hour), Accepted: -1}
		idx[snap.Arrivals[i].Hour] = &snap.Arrivals[i]
	}
	rows, err := s.DB.Query(ctx, `SELECT coalesce(a.hour, s.hour), a.accepted, coalesce(s.records, 0), coalesce(s.quarantined, 0),
			coalesce(s.cleaned, 0), coalesce(s.inserted, 0)
		FROM (SELECT hour, sum(accepted)::bigint AS accepted FROM pipeline.api_accepted WHERE hour >= $1 GROUP BY hour) a
		FULL JOIN (SELECT * FROM pipeline.stream_arrivals WHERE topic = $2 AND hour >= $1) s ON s.hour = a.hour`, oldest, s.Topic)
	if err != nil {
		return fmt.Errorf("status: arrivals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var h time.Time
		var acc *int64
		var a Arrival
		if err := rows.Scan(&h, &acc, &a.Records, &a.Quarantined, &a.Cleaned, &a.Inserted); err != nil {
			return fmt.Errorf("status: arrivals: %w", err)
		}
		if p := idx[h.UTC()]; p != nil {
			a.Hour, a.Accepted = p.Hour, -1
			if acc != nil {
				a.Accepted = *acc
			}
			*p = a
		}
	}
	return rows.Err()
}
