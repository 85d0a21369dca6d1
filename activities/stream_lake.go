package activities

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// What a flush writes to the lake besides bronze: the quarantine object of
// a range, and its silver files.

// quarantine writes a quarantine object of partition p under key (the
// cleaning rule's, QuarantineKey, or gold's refusals, GoldRefusedKey) and
// records its records.
func (a *Stream) quarantine(ctx context.Context, topic string, inc int, p int32, key string, bad []lake.Quarantined) error {
	if err := a.lake.Put(ctx, key, lake.EncodeQuarantine(bad), "application/x-ndjson"); err != nil {
		return fmt.Errorf("quarantine partition %d (%s): %w", p, key, err)
	}
	entries := make([]warehouse.QuarantineEntry, len(bad))
	for i, q := range bad {
		entries[i] = warehouse.QuarantineEntry{Topic: topic, Incarnation: inc, Partition: p, Offset: q.Record.Offset, Key: key,
			Reason: q.Reason, Errors: q.Errors, Timestamp: q.Record.Time}
	}
	if err := a.wh.RecordQuarantine(ctx, entries); err != nil {
		return fmt.Errorf("quarantine partition %d (%s): %w", p, key, err)
	}
	return nil
}

// writeSilver writes one Parquet file per event hour of rows (deduplicated,
// offset order) for the bronze range first..last of incarnation inc,
// skipping files recorded already (written by an earlier attempt, possibly
// compacted since), and records the new ones. It returns every file's key.
func (a *Stream) writeSilver(ctx context.Context, topic string, inc int, p int32, first, last int64, rows []event.Row) ([]string, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	byHour := map[time.Time][]event.Row{}
	for i := range rows {
		h := hourOf(&rows[i])
		byHour[h] = append(byHour[h], rows[i])
	}
	hours := slices.SortedFunc(maps.Keys(byHour), time.Time.Compare)
	keys := make([]string, len(hours))
	for i, h := range hours {
		keys[i] = lake.SilverKey(h, inc, p, first, last)
	}
	states, err := a.wh.SilverStates(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
	}
	var objs []warehouse.SilverObject
	for i, h := range hours {
		if _, done := states[keys[i]]; done {
			continue
		}
		data, err := lake.EncodeRows(byHour[h], a.rg)
		if err != nil {
			return nil, fmt.Errorf("silver %s: %w", keys[i], err)
		}
		if err := a.lake.Put(ctx, keys[i], data, lake.ParquetContentType); err != nil {
			return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
		}
		objs = append(objs, warehouse.SilverObject{Key: keys[i], Hour: h, Topic: topic, Incarnation: inc, Partition: p,
			First: first, Last: last, Rows: int64(len(byHour[h])), Bytes: int64(len(data))})
	}
	if err := a.wh.RecordSilver(ctx, objs); err != nil {
		return nil, fmt.Errorf("silver partition %d offsets %d..%d: %w", p, first, last, err)
	}
	return keys, nil
}
