package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The direct path of LoadLive: when none of a batch's event_ids is in gold
// yet (the common case of a stream that is not replaying), COPY its rows
// straight into gold.events, gold.payments and gold.audit_log. That skips the
// staging tables and the row-by-row INSERT ... ON CONFLICT, which cost about
// as much again as the COPY itself. If any event_id is already there, the
// COPY fails with a unique violation; the load rolls back to a savepoint and
// probes gold for the batch's ids (probe.go), then COPYs the rest: the result
// the staged path gives, which skips the known ids in all three tables
// (move.go). The staged path remains for a COPY that fails even so (a
// concurrent load of the same new id) and for times gold cannot hold.
//
// After a conflict the Store probes first for the next directCooldown
// loads, so that a stream full of retries does not pay for a failed COPY
// every time.
const directCooldown = 16

// loadMode selects LoadLive's path; tests pin it.
type loadMode int32

const (
	modeAuto   loadMode = iota // direct, then probed direct on a conflict; probed first for a while after one
	modeStaged                 // always staged
	modeDirect                 // always try direct first, whatever happened before
	modeProbe                  // always probe first
)

const (
	copyEventsSQL = `COPY gold.events (event_id, event_type, occurred_at, received_at, source, user_id, properties,
  kafka_partition, kafka_offset, kafka_incarnation, load_id) FROM STDIN (FORMAT binary)`
	copyPaymentsSQL = `COPY gold.payments (event_id, event_type, occurred_at, received_at, source, user_id, amount,
  currency, is_refund, load_id) FROM STDIN (FORMAT binary)`
	copyAuditSQL = `COPY gold.audit_log (event_id, occurred_at, event_type, actor, action, outcome, user_id, source,
  properties, received_at, load_id) FROM STDIN (FORMAT binary)`
)

// directPath says whether this load tries the direct path (not staged),
// and whether it probes gold for its ids first.
func (s *Store) directPath() (direct, probe bool) {
	switch loadMode(s.mode.Load()) {
	case modeStaged:
		return false, false
	case modeDirect:
		return true, false
	case modeProbe:
		return true, true
	}
	for {
		n := s.directSkip.Load()
		if n <= 0 {
			return true, false
		}
		if s.directSkip.CompareAndSwap(n, n-1) {
			return true, true
		}
	}
}

// dedup is the outcome of deduplicating a batch by event_id.
type dedup struct {
	lost   []bool           // rows that lost to another row with the same event_id
	winner map[[16]byte]int // index of each event_id's winning row
	n      int              // rows lost
}

// loseDuplicates marks, for every event_id repeated in rows, all rows but the
// first by (ReceivedAt, Partition, Offset).
func loseDuplicates(rows []event.Row) dedup {
	d := dedup{lost: make([]bool, len(rows)), winner: make(map[[16]byte]int, len(rows))}
	for i := range rows {
		r := &rows[i]
		j, dup := d.winner[r.EventID]
		if !dup {
			d.winner[r.EventID] = i
			continue
		}
		d.n++
		p := &rows[j]
		w := winner{partition: r.Partition, receivedAt: r.ReceivedAt, offset: r.Offset}
		if w.beats(winner{partition: p.Partition, receivedAt: p.ReceivedAt, offset: p.Offset}) {
			d.lost[j], d.winner[r.EventID] = true, i
		} else {
			d.lost[i] = true
		}
	}
	return d
}

// loadDirect tries the direct path in tx. ok is false when an event_id was
// already in gold: tx is then back where it was, for the staged path. A row
// that lost within the batch goes into none of the three tables, so a
// payment that lost to an order is no payment; the conflicting ones among
// them come back in cs. The comparison runs only over the losers: a batch
// without repeated ids pays nothing for it.
//
// With probe, the ids gold holds already are asked for first (probe.go) and
// left out, so that the COPY meets no known id.
func (s *Store) loadDirect(ctx context.Context, tx pgx.Tx, rows []event.Row, loadID int64, res *LoadResult, insertedHours map[time.Time]int64, probe bool) (ok bool, cs []conflict, err error) {
	for i := range rows {
		if rows[i].OccurredAt < minTimestampMicros {
			return false, nil, nil // the staged path reports it
		}
	}
	d := loseDuplicates(rows)
	batchCs := batchConflicts(rows, d) // before the probe marks winners lost to gold
	known := 0
	if probe {
		s.probes.Add(1)
		var goldCs []conflict
		if known, goldCs, err = probeGold(ctx, tx, rows, &d); err != nil {
			return false, nil, err
		}
		batchCs = append(batchCs, goldCs...)
	}
	lost := d.lost
	if _, err := tx.Exec(ctx, "SAVEPOINT gold_direct"); err != nil {
		return false, nil, err
	}
	conn := tx.Conn().PgConn()
	var counts [3]int64
	for i, c := range []struct {
		sql    string
		want   func(*event.Row) bool
		encode func([]byte, *event.Row, int64) []byte
	}{
		{copyEventsSQL, func(*event.Row) bool { return true }, appendGoldEvent},
		{copyPaymentsSQL, func(r *event.Row) bool { return strings.HasPrefix(r.Type, "payment.") }, appendGoldPayment},
		{copyAuditSQL, func(r *event.Row) bool { return strings.HasPrefix(r.Type, "audit.") }, appendGoldAudit},
	} {
		err := copyFrom(ctx, conn, c.sql, func(emit func([]byte) ([]byte, error)) error {
			var buf []byte
			var err error
			for j := range rows {
				if lost[j] || !c.want(&rows[j]) {
					continue
				}
				buf = c.encode(buf, &rows[j], loadID)
				counts[i]++
				if len(buf) >= flushAt {
					if buf, err = emit(buf); err != nil {
						return err
					}
				}
			}
			_, err = emit(buf)
			return err
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" { // unique_violation: an event_id is in gold already
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT gold_direct"); err != nil {
				return false, nil, err
			}
			return false, nil, nil
		}
		if err != nil {
			return false, nil, fmt.Errorf("copy rows into gold: %w", explainCopy(err, func(line int) ([16]byte, bool) {
				for j := range rows {
					if !lost[j] && c.want(&rows[j]) {
						if line--; line == 0 {
							return rows[j].EventID, true
						}
					}
				}
				return [16]byte{}, false
			}))
		}
	}
	if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT gold_direct"); err != nil {
		return false, nil, err
	}
	res.Inserted, res.Payments, res.Audit = counts[0], counts[1], counts[2]
	res.Duplicates = int64(d.n + known)
	if insertedHours != nil {
		for j := range rows {
			if !lost[j] && rows[j].ReceivedAt != 0 {
				insertedHours[hourOfMicros(rows[j].ReceivedAt)]++
			}
		}
	}
	return true, batchCs, nil
}

// Encoders for the gold tables' own columns, as the staged path's INSERTs
// compute them: empty source and user_id are NULL, the amount is
// numeric(18,6), a missing outcome is success.

func appendGoldEvent(b []byte, r *event.Row, loadID int64) []byte {
	b = binary.BigEndian.AppendUint16(b, 11)
	b = appendUUID(b, &r.EventID)
	b = appendText(b, r.Type)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendReceivedAt(b, r.ReceivedAt)
	b = appendTextOrNull(b, r.Source)
	b = appendTextOrNull(b, r.UserID)
	b = appendJSONB(b, r.Properties)
	b = appendInt4(b, r.Partition)
	b = appendInt8(b, r.Offset)
	b = appendInt4(b, incarnationOf(r))
	return appendInt8(b, loadID)
}

func appendGoldPayment(b []byte, r *event.Row, loadID int64) []byte {
	b = binary.BigEndian.AppendUint16(b, 10)
	b = appendUUID(b, &r.EventID)
	b = appendText(b, r.Type)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendReceivedAt(b, r.ReceivedAt)
	b = appendTextOrNull(b, r.Source)
	b = appendTextOrNull(b, r.UserID)
	b = appendNumericMicros(b, r.AmountMicros)
	b = appendText(b, r.Currency)
	b = append(b, 0, 0, 0, 1, boolByte(r.Type == "payment.refunded"))
	return appendInt8(b, loadID)
}

func appendGoldAudit(b []byte, r *event.Row, loadID int64) []byte {
	b = binary.BigEndian.AppendUint16(b, 11)
	b = appendUUID(b, &r.EventID)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendText(b, r.Type)
	b = appendText(b, r.Actor)
	b = appendText(b, r.Action)
	outcome := r.Outcome
	if outcome == "" {
		outcome = "success"
	}
	b = appendText(b, outcome)
	b = appendTextOrNull(b, r.UserID)
	b = appendTextOrNull(b, r.Source)
	b = appendJSONB(b, r.Properties)
	b = appendReceivedAt(b, r.ReceivedAt)
	return appendInt8(b, loadID)
}

func appendTextOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, 0xff, 0xff, 0xff, 0xff)
	}
	return appendText(b, s)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// appendNumericMicros writes micro-units as PostgreSQL's binary numeric with
// six decimals: base-10000 digits, the integer part's groups then two
// fractional groups (12.5 → 12 . 5000 0000). The server normalises leading and
// trailing zero groups and checks the column's precision.
func appendNumericMicros(b []byte, micros int64) []byte {
	var sign uint16
	u := uint64(micros)
	if micros < 0 {
		sign, u = 0x4000, uint64(-(micros+1))+1 // also for math.MinInt64
	}
	whole, frac := u/1_000_000, (u%1_000_000)*100
	var groups [5]uint16 // whole < 2^64/10^6 < 10^14: at most 4 groups
	n := 0
	for x := whole; x > 0; x /= 10_000 {
		n++
		groups[len(groups)-n] = uint16(x % 10_000)
	}
	ndigits := n + 2
	b = binary.BigEndian.AppendUint32(b, uint32(8+2*ndigits))
	b = binary.BigEndian.AppendUint16(b, uint16(ndigits))
	b = binary.BigEndian.AppendUint16(b, uint16(int16(n-1))) // weight of the first group
	b = binary.BigEndian.AppendUint16(b, sign)
	b = binary.BigEndian.AppendUint16(b, 6) // display scale
	for _, g := range groups[len(groups)-n:] {
		b = binary.BigEndian.AppendUint16(b, g)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(frac/10_000))
	return binary.BigEndian.AppendUint16(b, uint16(frac%10_000))
}
