package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/warehouse"
)

// Marts holds the clients of the mart-building activities (NightlyAggregation).
type Marts struct {
	Store *warehouse.Store
}

// BuildMartsInput names one day. All fields are required except Zone.
type BuildMartsInput struct {
	Day  string `json:"day"`  // YYYY-MM-DD
	Zone string `json:"zone"` // IANA zone the day is cut in; default UTC
}

// BuildMartsResult counts the mart rows written for the day.
type BuildMartsResult struct {
	Day            string `json:"day"`
	ProductMetrics int64  `json:"product_metrics"`
	Revenue        int64  `json:"revenue"`
	AuditSummary   int64  `json:"audit_summary"`
}

// BuildMarts replaces the three marts for one day, each in one transaction,
// so it can be retried or rerun at will.
func (m *Marts) BuildMarts(ctx context.Context, in BuildMartsInput) (BuildMartsResult, error) {
	day, err := warehouse.ParseDay(in.Day)
	if err != nil {
		return BuildMartsResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("day %q: %v", in.Day, err), "InvalidInput", err)
	}
	loc := time.UTC
	if in.Zone != "" {
		if loc, err = time.LoadLocation(in.Zone); err != nil {
			return BuildMartsResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("zone %q: %v", in.Zone, err), "InvalidInput", err)
		}
	}
	res, err := m.Store.BuildMarts(ctx, day, loc)
	if err != nil {
		if warehouse.IsPermanent(err) {
			return BuildMartsResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("build marts for %s: %v", in.Day, err), "MartFailed", err)
		}
		return BuildMartsResult{}, fmt.Errorf("build marts for %s: %w", in.Day, err)
	}
	activity.GetLogger(ctx).Info("marts built", "day", in.Day, "zone", loc.String(),
		"product_metrics", res.ProductMetrics, "revenue", res.Revenue, "audit_summary", res.AuditSummary)
	return BuildMartsResult{Day: in.Day, ProductMetrics: res.ProductMetrics, Revenue: res.Revenue, AuditSummary: res.AuditSummary}, nil
}
