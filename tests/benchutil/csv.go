// Package benchutil holds what the benchmark programs share: the CSV form of
// event rows that their `psql \copy` baselines load.
package benchutil

import (
	"encoding/csv"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/acme/pipeline/event"
)

// CSVColumns is the column order WriteCSV writes, for `\copy t (CSVColumns) FROM ... CSV`.
const CSVColumns = "event_id, event_type, occurred_at, received_at, source, user_id, properties, amount, currency, actor, action, outcome, kafka_partition, kafka_offset"

// WriteCSV writes rows as CSV in CSVColumns order; empty fields are NULL to \copy.
func WriteCSV(path string, rows []event.Row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	if err := AppendCSV(w, rows); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AppendCSV writes rows to w as WriteCSV does, and flushes it, so that a
// bench can write a large day in pieces.
func AppendCSV(w *csv.Writer, rows []event.Row) error {
	rec := make([]string, 14)
	for i := range rows {
		r := &rows[i]
		amount := ""
		if r.Currency != "" {
			amount = event.FormatMicros(r.AmountMicros)
		}
		rec[0] = UUIDText(r.EventID)
		rec[1], rec[2], rec[3], rec[4], rec[5] = r.Type, Timestamp(r.OccurredAt), Timestamp(r.ReceivedAt), r.Source, r.UserID
		rec[6], rec[7], rec[8], rec[9], rec[10], rec[11] = r.Properties, amount, r.Currency, r.Actor, r.Action, r.Outcome
		rec[12], rec[13] = strconv.Itoa(int(r.Partition)), strconv.FormatInt(r.Offset, 10)
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	w.Flush()
	return w.Error()
}

// Timestamp formats microseconds since the epoch as a PostgreSQL timestamptz literal.
func Timestamp(us int64) string {
	return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.999999Z07:00")
}

// UUIDText formats a UUID in its canonical text form.
func UUIDText(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
}
