package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acme/pipeline/event"
)

const copyRebuildSQL = `COPY pipeline.rebuild_rows (rebuild_id, unit, event_id, event_type, occurred_at, received_at, source,
  user_id, properties, kafka_partition, kafka_offset, kafka_incarnation, amount_micros, currency, actor, action, outcome) FROM STDIN (FORMAT binary)`

// copyRebuildRows streams rows into pipeline.rebuild_rows in the binary COPY
// format, as the live load's staging does, and returns how many it sent.
func copyRebuildRows(ctx context.Context, conn *pgconn.PgConn, rebuild int64, unit int32, rows iter.Seq2[event.Row, error]) (int64, error) {
	var n int64
	var srcErr, rowErr error
	var sent [][16]byte // ids in COPY order, to name a refused row; bounded by the unit's size
	err := copyFrom(ctx, conn, copyRebuildSQL, func(emit func([]byte) ([]byte, error)) error {
		var buf []byte
		for r, err := range rows {
			if err != nil {
				srcErr = err
				return err
			}
			if r.OccurredAt < minTimestampMicros {
				rowErr = &InputError{Field: "Rows", Msg: fmt.Sprintf("event_id %s: occurred_at %d µs is before 4713 BC", uuid.UUID(r.EventID), r.OccurredAt)}
				return rowErr
			}
			buf = binary.BigEndian.AppendUint16(buf, 17)
			buf = appendInt8(buf, rebuild)
			buf = appendInt4(buf, unit)
			buf = appendUUID(buf, &r.EventID)
			buf = appendText(buf, r.Type)
			buf = appendTimestamptz(buf, r.OccurredAt)
			buf = appendReceivedAt(buf, r.ReceivedAt)
			buf = appendText(buf, r.Source)
			buf = appendText(buf, r.UserID)
			buf = appendJSONB(buf, r.Properties)
			buf = appendInt4(buf, r.Partition)
			buf = appendInt8(buf, r.Offset)
			buf = appendInt4(buf, incarnationOf(&r))
			buf = appendInt8(buf, r.AmountMicros)
			buf = appendText(buf, r.Currency)
			buf = appendText(buf, r.Actor)
			buf = appendText(buf, r.Action)
			buf = appendText(buf, r.Outcome)
			sent = append(sent, r.EventID)
			n++
			if len(buf) >= flushAt {
				if buf, err = emit(buf); err != nil {
					return err
				}
			}
		}
		_, err := emit(buf)
		return err
	})
	if srcErr != nil {
		return n, fmt.Errorf("read rows: %w", srcErr)
	}
	if rowErr != nil {
		return n, rowErr
	}
	if err != nil {
		return n, fmt.Errorf("copy rows to pipeline.rebuild_rows: %w", explainCopy(err, func(line int) ([16]byte, bool) {
			if line < 1 || line > len(sent) {
				return [16]byte{}, false
			}
			return sent[line-1], true
		}))
	}
	return n, nil
}

// coveredSQL is, per topic incarnation and partition, the offsets a
// rebuild's sources cover: a multirange, so that a gap between two sources (a
// range with no event of the day when planned) is not covered, and offsets
// of one incarnation never cover another's rows.
const coveredSQL = `SELECT incarnation, partition, range_agg(int8range(start_offset, end_offset, '[]')) AS r
  FROM pipeline.rebuild_sources WHERE rebuild_id = $1 GROUP BY incarnation, partition`

// GoldReplaced reports a rebuild's gold commit.
type GoldReplaced struct {
	LoadID     int64 `json:"load_id"`
	Before     int64 `json:"before"`     // gold.events rows of the day before
	Deleted    int64 `json:"deleted"`    // rows of the day from the rebuild's offset ranges, deleted
	Inserted   int64 `json:"inserted"`   // winners inserted into gold.events
	Duplicates int64 `json:"duplicates"` // winners gold already held (loaded by the stream from a later offset, or of another day)
	Payments   int64 `json:"payments"`
	Audit      int64 `json:"audit"`
	Kept       int64 `json:"kept"` // rows of the day outside the rebuild's ranges, left as they were
}

// CommitRebuildGold replaces, in one transaction, the gold rows of the
// rebuild's day that came from the rebuild's offset ranges by its winners.
// Rows of the day from other offsets (the live stream's loads after the plan)
// stand. Payment and audit rows go in only for events this load inserted into
// gold.events. The day's built marts are marked stale. Running it twice
// leaves the same rows.
func (s *Store) CommitRebuildGold(ctx context.Context, rebuild int64) (GoldReplaced, error) {
	var res GoldReplaced
	var r Rebuild
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var day string
		err := tx.QueryRow(ctx, `SELECT day::text, topic, source FROM pipeline.rebuilds WHERE rebuild_id = $1`, rebuild).Scan(&day, &r.Topic, &r.Source)
		if errors.Is(err, pgx.ErrNoRows) {
			return &InputError{Field: "rebuild", Msg: fmt.Sprintf("rebuild %d is not planned", rebuild)}
		}
		if err != nil {
			return err
		}
		if r.Day, err = ParseDay(day); err != nil {
			return err
		}
		start, end := r.Day.Bounds(time.UTC)
		if err := lockDays(ctx, tx, r.Day, 1); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT set_config('work_mem', $1, true)`, RebuildWorkMem); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM gold.events WHERE occurred_at >= $1 AND occurred_at < $2`, start, end).Scan(&res.Before); err != nil {
			return fmt.Errorf("count gold: %w", err)
		}
		err = tx.QueryRow(ctx, `INSERT INTO pipeline.loads (kind, topic, day_from, day_to, time_zone, rebuild_id)
			VALUES ('backfill', $1, $2::date, $2::date, 'UTC', $3) RETURNING load_id`, r.Topic, day, rebuild).Scan(&res.LoadID)
		if err != nil {
			return fmt.Errorf("record load: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE rebuild_deleted (event_id uuid) ON COMMIT DROP;
			CREATE TEMP TABLE rebuild_inserted (event_id uuid) ON COMMIT DROP`); err != nil {
			return err
		}
		// Only rows the topic's loads wrote (or loads of unknown topic, from
		// before loads recorded one) are in the rebuild's scope. While the
		// topic is the only one ever streamed or rebuilt, that is every row,
		// and the per-row check is skipped.
		var others bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pipeline.stream_offsets WHERE topic <> $1
			UNION ALL SELECT 1 FROM pipeline.rebuilds WHERE topic <> $1)`, r.Topic).Scan(&others); err != nil {
			return err
		}
		topicCheck := ""
		if others {
			topicCheck = ` AND EXISTS (SELECT 1 FROM pipeline.loads l WHERE l.load_id = e.load_id AND (l.topic = $4 OR l.topic IS NULL))`
		}
		tag, err := tx.Exec(ctx, `WITH cov AS (`+coveredSQL+`),
			d AS (DELETE FROM gold.events e USING cov c
				WHERE e.occurred_at >= $2 AND e.occurred_at < $3 AND e.kafka_incarnation = c.incarnation
				AND e.kafka_partition = c.partition AND c.r @> e.kafka_offset
				AND $4::text IS NOT NULL`+topicCheck+`
				RETURNING e.event_id)
			INSERT INTO rebuild_deleted SELECT event_id FROM d`, rebuild, start, end, r.Topic)
		if err != nil {
			return fmt.Errorf("delete the rebuild's ranges from gold.events: %w", err)
		}
		res.Deleted = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `ANALYZE rebuild_deleted`); err != nil {
			return err
		}
		for _, table := range []string{"gold.payments", "gold.audit_log"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` t USING rebuild_deleted d WHERE t.event_id = d.event_id`); err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
		}
		var winners int64
		if err := tx.QueryRow(ctx, rebuildEventsSQL, rebuild, res.LoadID).Scan(&res.Inserted); err != nil {
			return fmt.Errorf("insert into gold.events: %w", err)
		}
		if _, err := tx.Exec(ctx, `ANALYZE rebuild_inserted`); err != nil {
			return err
		}
		for _, m := range []struct {
			table, sql string
			n          *int64
		}{
			{"gold.payments", rebuildPaymentsSQL, &res.Payments},
			{"gold.audit_log", rebuildAuditSQL, &res.Audit},
		} {
			tag, err := tx.Exec(ctx, m.sql, rebuild, res.LoadID)
			if err != nil {
				return fmt.Errorf("insert into %s: %w", m.table, err)
			}
			*m.n = tag.RowsAffected()
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pipeline.rebuild_rows WHERE rebuild_id = $1`, rebuild).Scan(&winners); err != nil {
			return err
		}
		res.Duplicates = winners - res.Inserted
		res.Kept = res.Before - res.Deleted
		if err := markMartsStaleRange(ctx, tx, start, end); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE pipeline.loads SET rows_seen = $2, rows_inserted = $3, rows_duplicate = $4,
			rows_deleted = $5, finished_at = clock_timestamp() WHERE load_id = $1`,
			res.LoadID, winners, res.Inserted, res.Duplicates, res.Deleted)
		return err
	})
	if err != nil {
		return GoldReplaced{}, fmt.Errorf("replace gold of %s from rebuild %d: %w", r.Day, rebuild, err)
	}
	return res, nil
}

// The moves from a rebuild's winners into gold, as the live load's moves.
// The events insert notes the payment and audit events it inserted, so that
// only those get their payment or audit row (and without a look-up in
// gold.events per row).
const (
	rebuildEventsSQL = `WITH ins AS (
  INSERT INTO gold.events (event_id, event_type, occurred_at, received_at, source, user_id,
    properties, kafka_partition, kafka_offset, kafka_incarnation, load_id)
  SELECT event_id, event_type, occurred_at, received_at, NULLIF(source, ''), NULLIF(user_id, ''),
    properties, kafka_partition, kafka_offset, kafka_incarnation, $2
  FROM pipeline.rebuild_rows WHERE rebuild_id = $1
  ON CONFLICT (event_id) DO NOTHING
  RETURNING event_id, event_type),
noted AS (INSERT INTO rebuild_inserted SELECT event_id FROM ins
  WHERE starts_with(event_type, 'payment.') OR starts_with(event_type, 'audit.'))
SELECT count(*) FROM ins`

	rebuildPaymentsSQL = `INSERT INTO gold.payments (event_id, event_type, occurred_at, received_at, source, user_id,
  amount, currency, is_refund, load_id)
SELECT w.event_id, w.event_type, w.occurred_at, w.received_at, NULLIF(w.source, ''), NULLIF(w.user_id, ''),
  w.amount_micros * 0.000001, w.currency, w.event_type = 'payment.refunded', $2
FROM pipeline.rebuild_rows w JOIN rebuild_inserted i ON i.event_id = w.event_id
WHERE w.rebuild_id = $1 AND starts_with(w.event_type, 'payment.')
ON CONFLICT (event_id) DO NOTHING`

	rebuildAuditSQL = `INSERT INTO gold.audit_log (event_id, occurred_at, event_type, actor, action, outcome, user_id,
  source, properties, received_at, load_id)
SELECT w.event_id, w.occurred_at, w.event_type, w.actor, w.action, COALESCE(NULLIF(w.outcome, ''), 'success'), NULLIF(w.user_id, ''),
  NULLIF(w.source, ''), w.properties, w.received_at, $2
FROM pipeline.rebuild_rows w JOIN rebuild_inserted i ON i.event_id = w.event_id
WHERE w.rebuild_id = $1 AND starts_with(w.event_type, 'audit.')
ON CONFLICT (event_id) DO NOTHING`
)
