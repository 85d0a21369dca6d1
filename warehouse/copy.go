package warehouse

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/acme/pipeline/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// The staging tables: temporary, created by the first load on a connection
// and emptied at every commit (ON COMMIT DELETE ROWS), so that a load pays no
// catalog work. Temporary tables skip the write-ahead log, and COPY into one
// without an index is as cheap as PostgreSQL ingestion gets. gold_stage holds
// every row; gold_stage_payments and gold_stage_audit only the payment and
// audit rows, so that their moves into gold do not scan every event again;
// gold_stage_known the staged event_ids that gold held already (move.go).
// Amounts travel as int8 micro-units and become numeric(18,6) in SQL
// (amount_micros * 0.000001, exact): no client-side decimal encoding.
const createStageSQL = `CREATE TEMP TABLE IF NOT EXISTS gold_stage (
  seq             int4,
  event_id        uuid,
  event_type      text,
  occurred_at     timestamptz,
  received_at     timestamptz,
  source          text,
  user_id         text,
  properties      jsonb,
  kafka_partition int4,
  kafka_offset    int8,
  kafka_incarnation int4
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS gold_stage_payments (
  event_id      uuid,
  event_type    text,
  occurred_at   timestamptz,
  received_at   timestamptz,
  source        text,
  user_id       text,
  amount_micros int8,
  currency      text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS gold_stage_audit (
  event_id    uuid,
  occurred_at timestamptz,
  event_type  text,
  actor       text,
  action      text,
  outcome     text,
  user_id     text,
  source      text,
  properties  jsonb,
  received_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS gold_stage_known (
  event_id     uuid,
  kept_type    text,
  other_type   text,
  other_source text,
  fields       text[]
) ON COMMIT DELETE ROWS`

const (
	copyStageSQL = `COPY gold_stage (seq, event_id, event_type, occurred_at, received_at, source, user_id,
  properties, kafka_partition, kafka_offset, kafka_incarnation) FROM STDIN (FORMAT binary)`
	copyStagePaymentsSQL = `COPY gold_stage_payments (event_id, event_type, occurred_at, received_at, source, user_id,
  amount_micros, currency) FROM STDIN (FORMAT binary)`
	copyStageAuditSQL = `COPY gold_stage_audit (event_id, occurred_at, event_type, actor, action, outcome, user_id,
  source, properties, received_at) FROM STDIN (FORMAT binary)`

	// pgEpochMicros is 2000-01-01T00:00:00Z in µs since the Unix epoch:
	// PostgreSQL's binary timestamps count from there.
	pgEpochMicros = 946_684_800_000_000
	// minTimestampMicros is PostgreSQL's earliest timestamp (4713 BC) in µs
	// since the Unix epoch. Below it, the conversion to PostgreSQL's epoch
	// could overflow; every int64 above it is in range.
	minTimestampMicros = -210_866_803_200_000_000

	// flushAt is the buffer size at which the encoder hands a chunk to the
	// connection; pgconn sends COPY data in messages of up to 64 KiB.
	flushAt = 60 << 10
)

// copyHeader starts every binary COPY stream: signature, flags, extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// The row encoders append one tuple of PostgreSQL's binary COPY format for
// their staging table. No allocation, no reflection: fields are written in
// their binary representations (uuid: 16 bytes; timestamptz: int8 µs since
// 2000; jsonb: version byte 1, then the text; NULL: length -1).

func appendStageRow(b []byte, seq int32, r *event.Row) []byte {
	b = binary.BigEndian.AppendUint16(b, 11)
	b = appendInt4(b, seq)
	b = appendUUID(b, &r.EventID)
	b = appendText(b, r.Type)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendReceivedAt(b, r.ReceivedAt)
	b = appendText(b, r.Source)
	b = appendText(b, r.UserID)
	b = appendJSONB(b, r.Properties)
	b = appendInt4(b, r.Partition)
	b = appendInt8(b, r.Offset)
	return appendInt4(b, incarnationOf(r))
}

// incarnationOf is the row's topic incarnation for gold's lineage: 0 (not
// set) is the first.
func incarnationOf(r *event.Row) int32 { return max(r.Incarnation, 1) }

func appendStagePayment(b []byte, r *event.Row) []byte {
	b = binary.BigEndian.AppendUint16(b, 8)
	b = appendUUID(b, &r.EventID)
	b = appendText(b, r.Type)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendReceivedAt(b, r.ReceivedAt)
	b = appendText(b, r.Source)
	b = appendText(b, r.UserID)
	b = appendInt8(b, r.AmountMicros)
	return appendText(b, r.Currency)
}

func appendStageAudit(b []byte, r *event.Row) []byte {
	b = binary.BigEndian.AppendUint16(b, 10)
	b = appendUUID(b, &r.EventID)
	b = appendTimestamptz(b, r.OccurredAt)
	b = appendText(b, r.Type)
	b = appendText(b, r.Actor)
	b = appendText(b, r.Action)
	b = appendText(b, r.Outcome)
	b = appendText(b, r.UserID)
	b = appendText(b, r.Source)
	b = appendJSONB(b, r.Properties)
	return appendReceivedAt(b, r.ReceivedAt)
}

func appendUUID(b []byte, id *[16]byte) []byte {
	b = append(b, 0, 0, 0, 16)
	return append(b, id[:]...)
}

// appendReceivedAt writes NULL (unknown) for a missing receive time (zero, or
// before 1970 as time.Time{} is).
func appendReceivedAt(b []byte, unixMicros int64) []byte {
	if unixMicros <= 0 {
		return append(b, 0xff, 0xff, 0xff, 0xff)
	}
	return appendTimestamptz(b, unixMicros)
}

func appendJSONB(b []byte, s string) []byte {
	if s == "" {
		s = "{}"
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)+1))
	b = append(b, 1)
	return append(b, s...)
}

func appendInt4(b []byte, v int32) []byte {
	b = append(b, 0, 0, 0, 4)
	return binary.BigEndian.AppendUint32(b, uint32(v))
}

func appendInt8(b []byte, v int64) []byte {
	b = append(b, 0, 0, 0, 8)
	return binary.BigEndian.AppendUint64(b, uint64(v))
}

func appendTimestamptz(b []byte, unixMicros int64) []byte {
	return appendInt8(b, unixMicros-pgEpochMicros)
}

func appendText(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// winner is the row kept so far for one event_id within a load.
type winner struct {
	seq        int32
	partition  int32
	receivedAt int64
	offset     int64
}

// beats reports whether a row with these coordinates wins over w: the first by
// (received_at, partition, offset) wins; on a tie, the earlier row.
func (w winner) beats(o winner) bool {
	if w.receivedAt != o.receivedAt {
		return w.receivedAt < o.receivedAt
	}
	if w.partition != o.partition {
		return w.partition < o.partition
	}
	return w.offset < o.offset
}

// copyStats describes what copyStage sent.
type copyStats struct {
	Seen       int64   // rows the source produced
	OutOfRange int64   // rows keep refused
	Sent       int64   // rows copied into gold_stage
	Losers     []int32 // seq of copied rows that lost to another row with the same event_id
	winners    map[[16]byte]winner
}

// copyStage streams rows into the staging tables (which must exist) over
// conn: every row kept into gold_stage, and the payment and audit rows among
// them, minus those that lost to another row with the same event_id, into
// gold_stage_payments and gold_stage_audit. The losers' seq come back in
// Losers, to be deleted from gold_stage.
func copyStage(ctx context.Context, conn *pgconn.PgConn, rows iter.Seq2[event.Row, error], keep func(*event.Row) bool) (*copyStats, error) {
	st := &copyStats{winners: make(map[[16]byte]winner)}
	var payments, audits []stagedRow
	var srcErr, rowErr error
	err := copyFrom(ctx, conn, copyStageSQL, func(emit func([]byte) ([]byte, error)) error {
		var buf []byte
		var seq int32
		for r, err := range rows {
			if err != nil {
				srcErr = err
				return err
			}
			st.Seen++
			if keep != nil && !keep(&r) {
				st.OutOfRange++
				continue
			}
			if seq == math.MaxInt32 {
				rowErr = &InputError{Field: "Rows", Msg: "more than 2^31-1 rows in one load"}
				return rowErr
			}
			if r.OccurredAt < minTimestampMicros {
				rowErr = &InputError{Field: "Rows", Msg: fmt.Sprintf("event_id %s: occurred_at %d µs is before 4713 BC", uuid.UUID(r.EventID), r.OccurredAt)}
				return rowErr
			}
			w := winner{seq: seq, partition: r.Partition, receivedAt: r.ReceivedAt, offset: r.Offset}
			if prev, dup := st.winners[r.EventID]; !dup {
				st.winners[r.EventID] = w
			} else if w.beats(prev) {
				st.winners[r.EventID] = w
				st.Losers = append(st.Losers, prev.seq)
			} else {
				st.Losers = append(st.Losers, seq)
			}
			switch {
			case strings.HasPrefix(r.Type, "payment."):
				payments = append(payments, stagedRow{seq, r})
			case strings.HasPrefix(r.Type, "audit."):
				audits = append(audits, stagedRow{seq, r})
			}
			buf = appendStageRow(buf, seq, &r)
			seq++
			if len(buf) >= flushAt {
				if buf, err = emit(buf); err != nil {
					return err
				}
			}
		}
		st.Sent = int64(seq)
		_, err := emit(buf)
		return err
	})
	if srcErr != nil {
		return st, fmt.Errorf("read rows: %w", srcErr)
	}
	if rowErr != nil {
		return st, rowErr
	}
	if err != nil {
		return st, fmt.Errorf("copy rows to staging: %w", explainCopy(err, func(line int) ([16]byte, bool) {
			for id, w := range st.winners {
				if int(w.seq) == line-1 {
					return id, true
				}
			}
			return [16]byte{}, false
		}))
	}
	for _, sub := range []struct {
		sql    string
		rows   []stagedRow
		encode func([]byte, *event.Row) []byte
	}{
		{copyStagePaymentsSQL, payments, appendStagePayment},
		{copyStageAuditSQL, audits, appendStageAudit},
	} {
		if len(sub.rows) == 0 {
			continue
		}
		var sent [][16]byte // ids in COPY order, to name a refused row
		err := copyFrom(ctx, conn, sub.sql, func(emit func([]byte) ([]byte, error)) error {
			var buf []byte
			var err error
			for i := range sub.rows {
				r := &sub.rows[i]
				if st.winners[r.row.EventID].seq != r.seq {
					continue // lost to another row with the same event_id
				}
				sent = append(sent, r.row.EventID)
				buf = sub.encode(buf, &r.row)
				if len(buf) >= flushAt {
					if buf, err = emit(buf); err != nil {
						return err
					}
				}
			}
			_, err = emit(buf)
			return err
		})
		if err != nil {
			return st, fmt.Errorf("copy rows to staging: %w", explainCopy(err, func(line int) ([16]byte, bool) {
				if line < 1 || line > len(sent) {
					return [16]byte{}, false
				}
				return sent[line-1], true
			}))
		}
	}
	return st, nil
}

// stagedRow is a payment or audit row kept for its own staging table.
type stagedRow struct {
	seq int32
	row event.Row
}

// copyFrom runs one COPY ... FROM STDIN (FORMAT binary) on conn. produce
// encodes the tuples and hands them to emit in chunks, in its own goroutine,
// so that encoding overlaps with sending and with the server's work. emit
// returns the buffer to reuse. copyFrom writes the header and the trailer.
func copyFrom(ctx context.Context, conn *pgconn.PgConn, sql string, produce func(emit func([]byte) ([]byte, error)) error) error {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		emit := func(b []byte) ([]byte, error) {
			_, err := pw.Write(b)
			return b[:0], err
		}
		_, err := pw.Write(copyHeader)
		if err == nil {
			err = produce(emit)
		}
		if err == nil {
			_, err = pw.Write([]byte{0xff, 0xff}) // end of data
		}
		pw.CloseWithError(err) // nil: EOF
	}()
	_, err := conn.CopyFrom(ctx, pr, sql)
	pr.Close()
	<-done
	return err
}

var copyLine = regexp.MustCompile(`COPY (gold_stage[a-z_]*|rebuild_rows|events|payments|audit_log), line ([0-9]+)(?:, column ([a-z_]+))?`)

// explainCopy adds to a COPY error the event_id and column of the row it
// names; lookup maps the 1-based line of the COPY to the row's event_id.
func explainCopy(err error, lookup func(line int) ([16]byte, bool)) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	m := copyLine.FindStringSubmatch(pgErr.Where)
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(m[2])
	where := fmt.Sprintf("%s row %d", m[1], line)
	if id, ok := lookup(line); ok {
		where = fmt.Sprintf("event_id %s (%s)", uuid.UUID(id), where)
	}
	if m[3] != "" {
		where += ", column " + m[3]
	}
	return fmt.Errorf("%s: %w", where, err)
}
