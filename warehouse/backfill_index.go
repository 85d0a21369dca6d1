package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BronzeTouching lists the bronze objects of topic whose event_hours include
// an hour in [from, to), in partition and offset order: the objects a
// backfill of those hours reads (through the index, never a bucket listing).
func (s *Store) BronzeTouching(ctx context.Context, topic string, from, to time.Time) ([]BronzeObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, partition, start_offset, end_offset, records, bytes, object_key, arrived_at,
			cleaned, quarantined, min_occurred_at, max_occurred_at, event_hours, created_at
		FROM pipeline.bronze_objects
		WHERE topic = $1 AND EXISTS (SELECT 1 FROM unnest(event_hours) AS h WHERE h >= $2 AND h < $3)
		ORDER BY partition, start_offset`, topic, from, to)
	if err != nil {
		return nil, fmt.Errorf("bronze objects of topic %s touching %s..%s: %w", topic, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	var out []BronzeObject
	var o BronzeObject
	var minO, maxO *time.Time
	_, err = pgx.ForEachRow(rows, []any{&o.Topic, &o.Partition, &o.First, &o.Last, &o.Records, &o.Bytes, &o.Key, &o.ArrivedAt,
		&o.Cleaned, &o.Quarantined, &minO, &maxO, &o.EventHours, &o.RecordedAt}, func() error {
		o.MinOccurred, o.MaxOccurred = time.Time{}, time.Time{}
		if minO != nil {
			o.MinOccurred = minO.UTC()
		}
		if maxO != nil {
			o.MaxOccurred = maxO.UTC()
		}
		hours := make([]time.Time, len(o.EventHours))
		for i, h := range o.EventHours {
			hours[i] = h.UTC()
		}
		o.EventHours = hours
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bronze objects of topic %s touching %s..%s: %w", topic, from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	return out, nil
}

// GoldEventsBetween counts the gold.events rows that occurred in [from, to):
// what a backfill of those instants would replace.
func (s *Store) GoldEventsBetween(ctx context.Context, from, to time.Time) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM gold.events WHERE occurred_at >= $1 AND occurred_at < $2`, from, to).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count gold events %s..%s: %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	return n, nil
}
