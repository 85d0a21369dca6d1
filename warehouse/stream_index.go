package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file is the lake index of the live stream (migration 002): which
// bronze, silver and quarantine objects exist, so that a retried stream cycle
// finds what an earlier attempt wrote and hour compaction knows what to merge.

// BronzeObject is one row of pipeline.bronze_objects.
type BronzeObject struct {
	Topic string
	// Incarnation is the topic incarnation the records were read from; 0
	// is the first.
	Incarnation int
	Partition   int32
	First, Last int64 // offsets, inclusive
	Records     int
	Bytes       int64
	Key         string
	ArrivedAt   time.Time
	Cleaned     int
	Quarantined int
	MinOccurred time.Time // zero when no record was cleaned
	MaxOccurred time.Time
	EventHours  []time.Time
	RecordedAt  time.Time // set when read back
	Reused      bool      // set by RecordBronze when another row won
}

// BronzeAt returns the bronze object of one incarnation (0: the first) of
// topic, partition, that starts at offset, if one is recorded. An object of
// another incarnation at the same offset holds other records: it is never
// returned.
func (s *Store) BronzeAt(ctx context.Context, topic string, incarnation int, partition int32, offset int64) (BronzeObject, bool, error) {
	o := BronzeObject{Topic: topic, Incarnation: max(incarnation, 1), Partition: partition}
	var minO, maxO *time.Time
	err := s.pool.QueryRow(ctx, `SELECT start_offset, end_offset, records, bytes, object_key, arrived_at, cleaned, quarantined,
			min_occurred_at, max_occurred_at, event_hours, created_at
		FROM pipeline.bronze_objects WHERE topic = $1 AND incarnation = $2 AND partition = $3 AND start_offset = $4`,
		topic, o.Incarnation, partition, offset).
		Scan(&o.First, &o.Last, &o.Records, &o.Bytes, &o.Key, &o.ArrivedAt, &o.Cleaned, &o.Quarantined, &minO, &maxO, &o.EventHours, &o.RecordedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return BronzeObject{}, false, nil
	}
	if err != nil {
		return BronzeObject{}, false, fmt.Errorf("bronze object of topic %s incarnation %d partition %d at offset %d: %w",
			topic, o.Incarnation, partition, offset, err)
	}
	if minO != nil {
		o.MinOccurred = *minO
	}
	if maxO != nil {
		o.MaxOccurred = *maxO
	}
	return o, true, nil
}

// RecordBronze records a bronze object. When an object starting at the same
// offset is recorded already (another attempt of the same cycle got there
// first), that one wins: RecordBronze returns it with Reused set, and the
// caller must use it instead of its own.
func (s *Store) RecordBronze(ctx context.Context, o BronzeObject) (BronzeObject, error) {
	if o.Records <= 0 || o.Last < o.First || o.Key == "" {
		return BronzeObject{}, &InputError{Field: "BronzeObject", Msg: fmt.Sprintf("%s: %d records for offsets %d..%d", o.Key, o.Records, o.First, o.Last)}
	}
	hours := o.EventHours
	if hours == nil {
		hours = []time.Time{}
	}
	o.Incarnation = max(o.Incarnation, 1)
	tag, err := s.pool.Exec(ctx, `INSERT INTO pipeline.bronze_objects (topic, partition, start_offset, end_offset, records, bytes,
			object_key, arrived_at, cleaned, quarantined, min_occurred_at, max_occurred_at, event_hours, incarnation)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
		ON CONFLICT (topic, incarnation, partition, start_offset) DO NOTHING`,
		o.Topic, o.Partition, o.First, o.Last, o.Records, o.Bytes, o.Key, o.ArrivedAt, o.Cleaned, o.Quarantined,
		nullTime(o.MinOccurred), nullTime(o.MaxOccurred), hours, o.Incarnation)
	if err != nil {
		return BronzeObject{}, fmt.Errorf("record bronze object %s: %w", o.Key, err)
	}
	if tag.RowsAffected() == 1 {
		return o, nil
	}
	won, ok, err := s.BronzeAt(ctx, o.Topic, o.Incarnation, o.Partition, o.First)
	if err != nil {
		return BronzeObject{}, err
	}
	if !ok {
		return BronzeObject{}, fmt.Errorf("record bronze object %s: conflicting row vanished", o.Key)
	}
	won.Reused = true
	return won, nil
}

// QuarantineEntry is one row of pipeline.quarantine.
type QuarantineEntry struct {
	Topic       string
	Incarnation int // the topic incarnation of Offset; 0 is the first
	Partition   int32
	Offset      int64
	Key         string // the quarantine object
	Reason      string
	Errors      any // JSON-encodable list of problems; nil for none
	Timestamp   time.Time
}

// RecordQuarantine records quarantined records; records already recorded are
// left as they are.
func (s *Store) RecordQuarantine(ctx context.Context, qs []QuarantineEntry) error {
	if len(qs) == 0 {
		return nil
	}
	n := len(qs)
	topics, parts, offs, keys, reasons, errs, tss := make([]string, n), make([]int32, n), make([]int64, n),
		make([]string, n), make([]string, n), make([]string, n), make([]*time.Time, n)
	incs := make([]int32, n)
	for i, q := range qs {
		topics[i], parts[i], offs[i], keys[i], reasons[i] = q.Topic, q.Partition, q.Offset, q.Key, q.Reason
		incs[i] = int32(max(q.Incarnation, 1))
		errs[i] = "[]"
		if q.Errors != nil {
			b, err := json.Marshal(q.Errors)
			if err != nil {
				return fmt.Errorf("record quarantine of offset %d: %w", q.Offset, err)
			}
			errs[i] = string(b)
		}
		if !q.Timestamp.IsZero() {
			t := q.Timestamp
			tss[i] = &t
		}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.quarantine (topic, partition, record_offset, object_key, reason, errors, kafka_timestamp, incarnation)
		SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[], $8::int4[])
		ON CONFLICT (topic, incarnation, partition, record_offset) DO NOTHING`, topics, parts, offs, keys, reasons, errs, tss, incs)
	if err != nil {
		return fmt.Errorf("record %d quarantined records of %s: %w", n, qs[0].Key, err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
