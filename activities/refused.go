package activities

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
)

// isolateRefused handles a gold load refused with an error that rows can
// explain (warehouse.RecordError): it finds the rows gold refuses
// (warehouse.FindRefused), quarantines each record with PostgreSQL's reason
// in a GoldRefusedKey object and pipeline.quarantine, moves them from cleaned
// to quarantined in the partitions' tallies, and returns the other rows, for
// the flush to load. It returns how many it set aside; none means the error
// was not about single rows after all.
//
// Every step repeats the same way on a retry: the search is deterministic,
// the object is the same bytes under the same key, and quarantine rows are
// inserted once.
func (a *Stream) isolateRefused(ctx context.Context, topic string, inc int, parts []partFlush, rows []event.Row, log *slog.Logger) ([]event.Row, int, error) {
	refused, err := a.wh.FindRefused(ctx, rows)
	if err != nil || len(refused) == 0 {
		return rows, 0, err
	}
	byPart := map[int32][]lake.Quarantined{}
	drop := make(map[int]bool, len(refused))
	for _, r := range refused {
		row := &rows[r.Index]
		drop[r.Index] = true
		pf := partOf(parts, row.Partition)
		if pf == nil {
			return nil, 0, fmt.Errorf("gold refused a row of partition %d, which this flush did not read", row.Partition)
		}
		rec, ok := pf.record(row.Offset)
		if !ok {
			return nil, 0, fmt.Errorf("gold refused partition %d offset %d, which this flush did not read", row.Partition, row.Offset)
		}
		reason := "gold refused: " + r.Reason
		byPart[row.Partition] = append(byPart[row.Partition], lake.Quarantined{Topic: topic, Record: rec, Reason: reason,
			Errors: []lake.FieldProblem{{Message: reason}}})
		pf.tally.Cleaned[time.UnixMicro(row.ReceivedAt).UTC().Truncate(time.Hour)]--
		pf.tally.Quarantined[rec.Time.UTC().Truncate(time.Hour)]++
		pf.quarantined++
	}
	for _, p := range slices.Sorted(maps.Keys(byPart)) {
		pf, qs := partOf(parts, p), byPart[p]
		key := lake.GoldRefusedKey(topic, inc, p, pf.first, pf.last, pf.recs[0].Time)
		if err := a.quarantine(ctx, topic, inc, p, key, qs); err != nil {
			return nil, 0, fmt.Errorf("refused records: %w", err)
		}
		log.Error("gold refused records: quarantined with PostgreSQL's reason, the rest of the flush loads",
			"partition", p, "count", len(qs), "first_offset", qs[0].Record.Offset, "key", key, "reason", qs[0].Reason)
	}
	kept := make([]event.Row, 0, len(rows)-len(drop))
	for i := range rows {
		if !drop[i] {
			kept = append(kept, rows[i])
		}
	}
	return kept, len(refused), nil
}

func partOf(parts []partFlush, p int32) *partFlush {
	for i := range parts {
		if parts[i].partition == p {
			return &parts[i]
		}
	}
	return nil
}

// record returns the flush's record at offset.
func (pf *partFlush) record(offset int64) (lake.Record, bool) {
	i, ok := slices.BinarySearchFunc(pf.recs, offset, func(r lake.Record, o int64) int {
		switch {
		case r.Offset < o:
			return -1
		case r.Offset > o:
			return 1
		}
		return 0
	})
	if !ok {
		return lake.Record{}, false
	}
	return pf.recs[i], true
}
