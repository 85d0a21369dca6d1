package warehouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/jackc/pgx/v5/pgtype"
)

func benchRows(n int) []event.Row {
	rows := make([]event.Row, n)
	for i := range rows {
		rows[i] = pay(i, "payment.succeeded", "2026-11-24T10:00:00Z", fmt.Sprintf("u-%d", i%5000), "12.34", "EUR")
		rows[i].Properties = `{"path":"/p/123","referrer":"https://www.example.com/search?q=pricing","ua":"Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}`
	}
	return rows
}

// BenchmarkAppendStageRow is the client side of the staging COPY: this
// package's binary encoder.
func BenchmarkAppendStageRow(b *testing.B) {
	rows := benchRows(1000)
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = appendStageRow(buf[:0], int32(i), &rows[i%len(rows)])
	}
}

// BenchmarkPgxEncodeRow encodes the same row the way pgx.CopyFrom does: one
// []any per row, each value through pgtype.Map.Encode (pgtype.UUID, int64,
// pgtype.Timestamptz). For comparison with BenchmarkAppendStageRow.
func BenchmarkPgxEncodeRow(b *testing.B) {
	rows := benchRows(1000)
	m := pgtype.NewMap()
	oids := []uint32{pgtype.Int4OID, pgtype.UUIDOID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.TimestamptzOID,
		pgtype.TextOID, pgtype.TextOID, pgtype.JSONBOID, pgtype.Int4OID, pgtype.Int8OID}
	buf := make([]byte, 0, 1<<20)
	vals := make([]any, len(oids))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r := &rows[i%len(rows)]
		vals[0], vals[1], vals[2] = int32(i), pgtype.UUID{Bytes: r.EventID, Valid: true}, r.Type
		vals[3] = pgtype.Timestamptz{Time: time.UnixMicro(r.OccurredAt), Valid: true}
		vals[4] = pgtype.Timestamptz{Time: time.UnixMicro(r.ReceivedAt), Valid: true}
		vals[5], vals[6], vals[7], vals[8], vals[9] = r.Source, r.UserID, r.Properties, r.Partition, r.Offset
		buf = buf[:0]
		for j, v := range vals {
			var err error
			if buf, err = m.Encode(oids[j], pgtype.BinaryFormatCode, v, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
