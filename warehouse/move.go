package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The moves from gold_stage into gold. ON CONFLICT DO NOTHING makes each of
// them idempotent; payment and audit rows are keyed like their event.
//
// One event id is one event: a payment or audit row goes in only with the
// gold.events row of the same load. When every staged event went in (the
// usual case), so do all staged payment and audit rows, and the plain moves
// do it. When some staged event_id was known (gold held it already), its
// payment or audit row must not go in: an id sent as order.created, then as
// payment.captured, is an order and no revenue. The known ids are then
// listed in gold_stage_known, with how their content compares with gold's
// (the conflicting duplicates, conflicts.go), and the moves skip them, as
// CommitRebuildGold moves only the events its insert returned. That costs
// one join of the staged rows with gold.events, and only when there are
// duplicates.
const (
	moveEventsSQL = `INSERT INTO gold.events (event_id, event_type, occurred_at, received_at, source, user_id,
  properties, kafka_partition, kafka_offset, kafka_incarnation, load_id)
SELECT event_id, event_type, occurred_at, received_at, NULLIF(source, ''), NULLIF(user_id, ''),
  properties, kafka_partition, kafka_offset, kafka_incarnation, $1
FROM gold_stage
ON CONFLICT (event_id) DO NOTHING`

	movePaymentsSQL = `INSERT INTO gold.payments (event_id, event_type, occurred_at, received_at, source, user_id,
  amount, currency, is_refund, load_id)
SELECT event_id, event_type, occurred_at, received_at, NULLIF(source, ''), NULLIF(user_id, ''),
  amount_micros * 0.000001, currency, event_type = 'payment.refunded', $1
FROM gold_stage_payments p`

	moveAuditSQL = `INSERT INTO gold.audit_log (event_id, occurred_at, event_type, actor, action, outcome, user_id,
  source, properties, received_at, load_id)
SELECT event_id, occurred_at, event_type, actor, action, COALESCE(NULLIF(outcome, ''), 'success'), NULLIF(user_id, ''),
  NULLIF(source, ''), properties, received_at, $1
FROM gold_stage_audit p`

	// knownSQL lists the staged events this load ($1) did not insert: their
	// gold.events row is another load's. fields names the content fields
	// in which the staged row differs from it: empty for a client's retry.
	// The filter on load_id comes before the join, so that a batch with few
	// known ids hashes only those (a LEFT JOIN hashing every row of the
	// load cost three times as much in tests/benchgold).
	knownSQL = `INSERT INTO gold_stage_known (event_id, kept_type, other_type, other_source, fields)
SELECT s.event_id, e.event_type, s.event_type, s.source,
  array_remove(ARRAY[
    CASE WHEN e.event_type <> s.event_type THEN 'event_type' END,
    CASE WHEN e.occurred_at <> s.occurred_at THEN 'occurred_at' END,
    CASE WHEN e.user_id IS DISTINCT FROM NULLIF(s.user_id, '') THEN 'user_id' END,
    CASE WHEN e.source IS DISTINCT FROM NULLIF(s.source, '') THEN 'source' END,
    CASE WHEN e.properties <> s.properties THEN 'properties' END], NULL)
FROM gold_stage s JOIN gold.events e ON e.event_id = s.event_id
WHERE e.load_id <> $1`

	// skipKnown restricts a payment or audit move to the events this load
	// inserted.
	skipKnown = `
WHERE NOT EXISTS (SELECT 1 FROM gold_stage_known k WHERE k.event_id = p.event_id)`

	onConflictNothing = `
ON CONFLICT (event_id) DO NOTHING`
)

// moveStaged moves the staged rows into gold. With hours non-nil it also
// counts the inserted gold.events rows per received_at hour (UTC). When some
// staged event_id was known, gold_stage_known lists them afterwards.
func moveStaged(ctx context.Context, tx pgx.Tx, loadID int64, events, payments, audit *int64, hours map[time.Time]int64) error {
	if hours != nil {
		n, err := moveCountingHours(ctx, tx, loadID, hours)
		if err != nil {
			return err
		}
		*events = n
	} else {
		tag, err := tx.Exec(ctx, moveEventsSQL, loadID)
		if err != nil {
			return fmt.Errorf("insert into gold.events: %w", err)
		}
		*events = tag.RowsAffected()
	}
	// gold_stage holds one row per event_id (the batch's losers are deleted):
	// as many inserted as staged means every staged event went in.
	var staged int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM gold_stage`).Scan(&staged); err != nil {
		return fmt.Errorf("count staged rows: %w", err)
	}
	where := ""
	if *events < staged {
		if _, err := tx.Exec(ctx, knownSQL, loadID); err != nil {
			return fmt.Errorf("find the staged event_ids gold knew: %w", err)
		}
		where = skipKnown
	}
	for _, m := range []struct {
		table, sql string
		n          *int64
	}{
		{"gold.payments", movePaymentsSQL, payments},
		{"gold.audit_log", moveAuditSQL, audit},
	} {
		tag, err := tx.Exec(ctx, m.sql+where+onConflictNothing, loadID)
		if err != nil {
			return fmt.Errorf("insert into %s: %w", m.table, err)
		}
		*m.n = tag.RowsAffected()
	}
	return nil
}
