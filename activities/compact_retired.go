package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"
)

// DefaultAllowedLateness keeps an event hour open this long after its end:
// the stream's and silver maintenance's notion of a closed hour.
const DefaultAllowedLateness = 10 * time.Minute

// CompactHoursInput and CompactHoursResult are the retired hour
// compaction's input and result, kept so that stream runs started before
// silver became the Iceberg table decode as they did.
type CompactHoursInput struct {
	Now             time.Time     `json:"now"`
	AllowedLateness time.Duration `json:"allowed_lateness,omitempty"`
}

// CompactHoursResult: see CompactHoursInput.
type CompactHoursResult struct {
	Hours   []struct{} `json:"hours"`
	Deleted int        `json:"deleted"`
	More    bool       `json:"more"`
}

// CompactHours is retired: silver is the Iceberg table silver.events, which
// the SilverMaintenance workflow compacts (schedule silver-maintenance). A
// StreamCompaction run started by an earlier version still schedules it
// every few minutes until its next continue-as-new; it does nothing and
// says so, so that run's history shows no failure.
func (a *Stream) CompactHours(ctx context.Context, in CompactHoursInput) (CompactHoursResult, error) {
	activity.GetLogger(ctx).Info("hour compaction is retired: silver.events is compacted by the SilverMaintenance workflow; " +
		"this stream run stops scheduling it at its next continue-as-new")
	return CompactHoursResult{Hours: []struct{}{}}, nil
}
