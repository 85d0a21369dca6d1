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

	"github.com/acme/pipeline/event"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// The staging table: one per load transaction, dropped at commit. Temporary
// tables skip the write-ahead log, and COPY into one with no index is as cheap
// as PostgreSQL ingestion gets. Amounts travel as int8 micro-units and become
// numeric(18,6) in SQL (amount_micros * 0.000001, exact), so no client-side
// decimal encoding is needed.
const createStageSQL = `CREATE TEMP TABLE gold_stage (
  seq             int4,
  event_id        uuid,
  event_type      text,
  occurred_at     timestamptz,
  received_at     timestamptz,
  source          text,
  user_id         text,
  properties      jsonb,
  amount_micros   int8,
  currency        text,
  actor           text,
  action          text,
  outcome         text,
  kafka_partition int4,
  kafka_offset    int8
) ON COMMIT DROP`

const (
	copyStageSQL = `COPY gold_stage (seq, event_id, event_type, occurred_at, received_at, source, user_id,
  properties, amount_micros, currency, actor, action, outcome, kafka_partition, kafka_offset) FROM STDIN (FORMAT binary)`
	stageColumns = 15

	// pgEpochMicros is 2000-01-01T00:00:00Z in µs since the Unix epoch:
	// PostgreSQL's binary timestamps count from there.
	pgEpochMicros = 946_684_800_000_000

	// flushAt is the buffer size at which the encoder hands a chunk to the
	// connection; pgconn sends COPY data in messages of up to 64 KiB.
	flushAt = 60 << 10
)

// copyHeader starts every binary COPY stream: signature, flags, extension length.
var copyHeader = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// appendStageRow appends r as one tuple of the binary COPY format for
// gold_stage. No allocation, no reflection: fields are written as PostgreSQL's
// binary representations (uuid: 16 bytes; timestamptz: int8 µs since 2000;
// jsonb: version byte 1 then the text).
func appendStageRow(b []byte, seq int32, r *event.Row) []byte {
	b = binary.BigEndian.AppendUint16(b, stageColumns)
	b = appendInt4(b, seq)
	b = append(b, 0, 0, 0, 16)
	b = append(b, r.EventID[:]...)
	b = appendText(b, r.Type)
	b = appendTimestamptz(b, r.OccurredAt)
	if r.ReceivedAt <= 0 {
		b = append(b, 0xff, 0xff, 0xff, 0xff) // NULL: unknown
	} else {
		b = appendTimestamptz(b, r.ReceivedAt)
	}
	b = appendText(b, r.Source)
	b = appendText(b, r.UserID)
	props := r.Properties
	if props == "" {
		props = "{}"
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(props)+1))
	b = append(b, 1)
	b = append(b, props...)
	b = appendInt8(b, r.AmountMicros)
	b = appendText(b, r.Currency)
	b = appendText(b, r.Actor)
	b = appendText(b, r.Action)
	b = appendText(b, r.Outcome)
	b = appendInt4(b, r.Partition)
	b = appendInt8(b, r.Offset)
	return b
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

// copyStage streams rows into gold_stage (which must exist) over conn, in
// PostgreSQL's binary COPY format, encoding in a goroutine while the server
// ingests. Rows that keep refuses are skipped. It tracks, per event_id, which
// copied row wins, and returns the others as Losers.
func copyStage(ctx context.Context, conn *pgconn.PgConn, rows iter.Seq2[event.Row, error], keep func(*event.Row) bool) (*copyStats, error) {
	pr, pw := io.Pipe()
	st := &copyStats{winners: make(map[[16]byte]winner)}
	var srcErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 0, 2*flushAt)
		buf = append(buf, copyHeader...)
		var seq int32
		for r, err := range rows {
			if err != nil {
				srcErr = err
				pw.CloseWithError(err)
				return
			}
			st.Seen++
			if keep != nil && !keep(&r) {
				st.OutOfRange++
				continue
			}
			if seq == math.MaxInt32 {
				srcErr = &InputError{Field: "Rows", Msg: "more than 2^31-1 rows in one load"}
				pw.CloseWithError(srcErr)
				return
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
			buf = appendStageRow(buf, seq, &r)
			seq++
			if len(buf) >= flushAt {
				if _, err := pw.Write(buf); err != nil {
					return // the COPY ended early; its error tells why
				}
				buf = buf[:0]
			}
		}
		st.Sent = int64(seq)
		buf = append(buf, 0xff, 0xff) // end of data
		if _, err := pw.Write(buf); err == nil {
			pw.Close()
		}
	}()
	_, err := conn.CopyFrom(ctx, pr, copyStageSQL)
	pr.Close()
	<-done
	if srcErr != nil {
		return st, fmt.Errorf("read rows: %w", srcErr)
	}
	if err != nil {
		return st, fmt.Errorf("copy rows to staging: %w", st.explain(err))
	}
	return st, nil
}

var copyLine = regexp.MustCompile(`COPY gold_stage, line ([0-9]+)(?:, column ([a-z_]+))?`)

// explain adds to a COPY error the event_id and column of the row it names.
func (st *copyStats) explain(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	m := copyLine.FindStringSubmatch(pgErr.Where)
	if m == nil {
		return err
	}
	line, _ := strconv.Atoi(m[1])
	where := fmt.Sprintf("row %d", line)
	for id, w := range st.winners {
		if int(w.seq) == line-1 {
			where = fmt.Sprintf("event_id %s (row %d)", uuid.UUID(id), line)
			break
		}
	}
	if m[2] != "" {
		where += ", column " + m[2]
	}
	return fmt.Errorf("%s: %w", where, err)
}
