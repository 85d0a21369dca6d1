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
	Zone           string // the IANA zone the day was cut in
	ProductMetrics int64  // rows of gold.daily_product_metrics (event types seen)
	Revenue        int64  // rows of gold.daily_revenue (currencies seen)
	AuditSummary   int64  // rows of gold.daily_audit_summary
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
// taken in loc (nil means UTC): each mart's rows for that day are deleted and
// rebuilt from gold in one REPEATABLE READ transaction, so the three marts
// are computed from one snapshot and agree with each other, a reader sees
// the old figures or the new ones, and running it twice gives the same rows.
//
// It holds the day's advisory lock (the one ReplaceDays takes) from before
// the snapshot to the end, so builds of a day never overlap and a build
// waits for a ReplaceDays of that day to commit. Before the snapshot it
// claims the day in pipeline.mart_days (see mart_state.go): gold written
// after the claim leaves the day pending, and the refresher rebuilds it.
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
	res, err := s.buildMarts(ctx, day, loc)
	if err != nil {
		return MartResult{}, fmt.Errorf("build marts for %s (%s): %w", day, loc, err)
	}
	return res, nil
}

func (s *Store) buildMarts(ctx context.Context, day Day, loc *time.Location) (MartResult, error) {
	start, end := day.Bounds(loc)
	res := MartResult{Day: day, Zone: loc.String()}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Release()
	// A session lock, taken outside the transaction: under REPEATABLE READ
	// the snapshot is taken by the first statement, which must come after
	// the lock (and the claim), not before.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, $2)`, lockClassDay, day.epochDay()); err != nil {
		return res, fmt.Errorf("lock day: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, $2)`, lockClassDay, day.epochDay()); err != nil {
			// The session lock dies with the connection: close it.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	claimed, err := claimMartDay(ctx, conn.Conn(), day, loc, start, end)
	if err != nil {
		return res, err
	}
	var built time.Time
	err = pgx.BeginTxFunc(ctx, conn.Conn(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		// The first statement takes the snapshot; now() is the
		// transaction's start, recorded as built_at.
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&built); err != nil {
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
		return res, err
	}
	if err := recordMartBuild(ctx, conn.Conn(), day, claimed, built); err != nil {
		return res, err
	}
	return res, nil
}

// MaxOverlapDays bounds the days one BuildMartsOverlapping call rebuilds.
const MaxOverlapDays = 2 * MaxReplaceDays

// BuildMartsOverlapping rebuilds, in the marts' zone (MartZone), the marts
// of every day that overlaps [from, to): after a backfill has replaced a
// UTC day of gold, the one or two days of the zone that hold its instants.
// Days are built one after the other, each as BuildMarts does.
func (s *Store) BuildMartsOverlapping(ctx context.Context, from, to time.Time) ([]MartResult, error) {
	if !from.Before(to) {
		return nil, &InputError{Field: "to", Msg: fmt.Sprintf("%s is not after from %s", to.Format(time.RFC3339), from.Format(time.RFC3339))}
	}
	loc, err := s.MartZone(ctx)
	if err != nil {
		return nil, err
	}
	first, last := DayOf(from.In(loc)), DayOf(to.Add(-time.Nanosecond).In(loc))
	n := int(last.epochDay()-first.epochDay()) + 1
	if n > MaxOverlapDays {
		return nil, &InputError{Field: "to", Msg: fmt.Sprintf("%s..%s is %d days in %s; at most %d per call", first, last, n, loc, MaxOverlapDays)}
	}
	out := make([]MartResult, 0, n)
	for d := first; d.Compare(last) <= 0; d = d.AddDays(1) {
		r, err := s.BuildMarts(ctx, d, loc)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}
