package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// MartResult reports the rows written for one day.
type MartResult struct {
	Day            Day
	ProductMetrics int64 // rows of gold.daily_product_metrics (event types seen)
	Revenue        int64 // rows of gold.daily_revenue (currencies seen)
	AuditSummary   int64 // rows of gold.daily_audit_summary
}

// The marts, computed from the facts of one day: $1 the day, [$2, $3) its
// instants in the aggregation zone.
const (
	productMetricsSQL = `INSERT INTO gold.daily_product_metrics (day, event_type, events, unique_users)
SELECT $1::date, event_type, count(*), count(DISTINCT user_id)
FROM gold.events
WHERE occurred_at >= $2 AND occurred_at < $3
GROUP BY event_type`

	revenueSQL = `INSERT INTO gold.daily_revenue (day, currency, payments, gross, refunds, net, refund_count)
SELECT $1::date, currency, payments, gross, refunds, gross - refunds, refund_count
FROM (
  SELECT currency,
    count(*) FILTER (WHERE NOT is_refund)                  AS payments,
    COALESCE(sum(amount) FILTER (WHERE NOT is_refund), 0)  AS gross,
    COALESCE(sum(amount) FILTER (WHERE is_refund), 0)      AS refunds,
    count(*) FILTER (WHERE is_refund)                      AS refund_count
  FROM gold.payments
  WHERE occurred_at >= $2 AND occurred_at < $3
  GROUP BY currency
) AS r`

	auditSummarySQL = `INSERT INTO gold.daily_audit_summary (day, actor, action, outcome, events)
SELECT $1::date, actor, action, COALESCE(NULLIF(outcome, ''), 'success'), count(*)
FROM gold.audit_log
WHERE occurred_at >= $2 AND occurred_at < $3
GROUP BY 2, 3, 4`
)

// BuildMarts recomputes the three daily marts for day, the day's instants
// taken in loc (nil means UTC), in one transaction: each mart's rows for that
// day are deleted and rebuilt from gold, so a reader sees the old figures or
// the new ones, and running it twice gives the same rows. It waits for a
// ReplaceDays of that day to commit first.
//
// daily_revenue counts payment.refunded as refunds and every other payment.*
// as a payment, per currency, in exact decimals: net = gross - refunds.
// daily_audit_summary takes the outcome of each audit event, success when
// none was given.
func (s *Store) BuildMarts(ctx context.Context, day Day, loc *time.Location) (MartResult, error) {
	if day.IsZero() {
		return MartResult{}, &InputError{Field: "day", Msg: "required"}
	}
	if loc == nil {
		loc = time.UTC
	}
	day = day.normal()
	start, end := day.Bounds(loc)
	res := MartResult{Day: day}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockDays(ctx, tx, day, 1); err != nil {
			return err
		}
		for _, m := range []struct {
			table, build string
			n            *int64
		}{
			{"gold.daily_product_metrics", productMetricsSQL, &res.ProductMetrics},
			{"gold.daily_revenue", revenueSQL, &res.Revenue},
			{"gold.daily_audit_summary", auditSummarySQL, &res.AuditSummary},
		} {
			if _, err := tx.Exec(ctx, "DELETE FROM "+m.table+" WHERE day = $1::date", day.String()); err != nil {
				return fmt.Errorf("clear %s: %w", m.table, err)
			}
			tag, err := tx.Exec(ctx, m.build, day.String(), start, end)
			if err != nil {
				return fmt.Errorf("build %s: %w", m.table, err)
			}
			*m.n = tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return MartResult{}, fmt.Errorf("build marts for %s (%s): %w", day, loc, err)
	}
	return res, nil
}
