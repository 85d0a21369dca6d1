package activities

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// The stream's cleaning rule, shared with the backfill: records become
// rows (or quarantine entries), deduplicated, with the accounting of the
// completeness SLO.

// tallyArrivals counts a partition's records per arrival hour for the
// completeness SLO: cleaned rows (repeated event_ids included) by
// received_at, quarantined records by their Kafka timestamp.
func tallyArrivals(p int32, from int64, rows []event.Row, bad []lake.Quarantined) warehouse.PartitionTally {
	t := warehouse.PartitionTally{Partition: p, From: from,
		Cleaned: map[time.Time]int64{}, Quarantined: map[time.Time]int64{}}
	for i := range rows {
		t.Cleaned[time.UnixMicro(rows[i].ReceivedAt).UTC().Truncate(time.Hour)]++
	}
	for i := range bad {
		t.Quarantined[bad[i].Record.Time.UTC().Truncate(time.Hour)]++
	}
	return t
}

// clean decodes every record with the topic's cleaning rule (event.Decode
// without assigning ids; occurred_at bounded by the record's Kafka
// timestamp, so a retry decides the same). It returns the rows in offset
// order, with inc as their topic incarnation, and the records that failed.
func clean(topic string, inc int, recs []lake.Record) ([]event.Row, []lake.Quarantined) {
	rows := make([]event.Row, 0, len(recs))
	var bad []lake.Quarantined
	for i := range recs {
		r := &recs[i]
		opt := event.Options{}
		if r.Time.Year() >= 2000 {
			opt.Now = r.Time
		}
		ev, errs := event.Decode(r.Value, opt)
		if len(errs) > 0 {
			q := lake.Quarantined{Topic: topic, Record: *r, Reason: reason(errs)}
			for _, e := range errs {
				q.Errors = append(q.Errors, lake.FieldProblem{Field: e.Field, Message: e.Message})
			}
			bad = append(bad, q)
			continue
		}
		row, err := ev.ToRow(r.Partition, r.Offset)
		if err != nil {
			bad = append(bad, lake.Quarantined{Topic: topic, Record: *r, Reason: err.Error(),
				Errors: []lake.FieldProblem{{Message: err.Error()}}})
			continue
		}
		row.Incarnation = int32(inc)
		rows = append(rows, row)
	}
	return rows, bad
}

// reason summarises a record's problems in one line.
func reason(errs event.Errors) string {
	var b strings.Builder
	for i, e := range errs {
		if i == 3 {
			fmt.Fprintf(&b, " (and %d more)", len(errs)-3)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		if e.Field != "" {
			b.WriteString(e.Field)
			b.WriteString(": ")
		}
		b.WriteString(e.Message)
	}
	return b.String()
}

// dedupe keeps the first row of each event_id (rows are in offset order:
// first received wins).
func dedupe(rows []event.Row) []event.Row {
	seen := make(map[[16]byte]struct{}, len(rows))
	out := rows[:0]
	for _, r := range rows {
		if _, dup := seen[r.EventID]; dup {
			continue
		}
		seen[r.EventID] = struct{}{}
		out = append(out, r)
	}
	return out
}

func hourOf(r *event.Row) time.Time {
	return time.UnixMicro(r.OccurredAt).UTC().Truncate(time.Hour)
}

func fillEventTimes(o *warehouse.BronzeObject, rows []event.Row) {
	hours := map[time.Time]bool{}
	var lo, hi int64
	for i := range rows {
		r := &rows[i]
		if i == 0 || r.OccurredAt < lo {
			lo = r.OccurredAt
		}
		if i == 0 || r.OccurredAt > hi {
			hi = r.OccurredAt
		}
		hours[hourOf(r)] = true
	}
	if len(rows) > 0 {
		o.MinOccurred, o.MaxOccurred = time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()
	}
	o.EventHours = slices.SortedFunc(maps.Keys(hours), time.Time.Compare)
}
