package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LostRange is a range of offsets that retention deleted before the stream
// read them (pipeline.lost_offsets).
type LostRange struct {
	Topic       string    `json:"topic"`
	Incarnation int       `json:"incarnation"` // of the topic (pipeline.topic_incarnations)
	Partition   int32     `json:"partition"`
	First       int64     `json:"first_offset"`
	Last        int64     `json:"last_offset"`
	Detected    time.Time `json:"detected_at"`
}

// Records is how many offsets the range holds.
func (l LostRange) Records() int64 { return l.Last - l.First + 1 }

// RecordLostOffsets records that the offsets first..last of a partition were
// deleted by retention before the stream read them. The stream records the
// gap before it stores the offset past it, and a retry records it again:
// the row of the same first offset keeps the widest range. The offsets are
// the topic's current incarnation's (the stream only reads that one; 1
// before the stream adopted the topic).
func (s *Store) RecordLostOffsets(ctx context.Context, topic string, partition int32, first, last int64) error {
	if last < first {
		return &InputError{Field: "last", Msg: fmt.Sprintf("%d is before first %d", last, first)}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO pipeline.lost_offsets AS l (topic, partition, first_offset, last_offset, incarnation)
		VALUES ($1, $2, $3, $4, COALESCE((SELECT incarnation FROM pipeline.topic_incarnations
			WHERE topic = $1 AND retired_at IS NULL), 1))
		ON CONFLICT (topic, incarnation, partition, first_offset)
		DO UPDATE SET last_offset = greatest(l.last_offset, EXCLUDED.last_offset)`, topic, partition, first, last)
	if err != nil {
		return fmt.Errorf("record lost offsets %d..%d of %s partition %d: %w", first, last, topic, partition, err)
	}
	return nil
}

// LostOffsets lists the gaps found since since, newest first, at most limit,
// and the offsets lost in them all (since since).
func (s *Store) LostOffsets(ctx context.Context, since time.Time, limit int) ([]LostRange, int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, incarnation, partition, first_offset, last_offset, detected_at FROM pipeline.lost_offsets
		WHERE detected_at >= $1 ORDER BY detected_at DESC, topic, partition LIMIT $2`, since, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("lost offsets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LostRange, error) {
		var l LostRange
		err := r.Scan(&l.Topic, &l.Incarnation, &l.Partition, &l.First, &l.Last, &l.Detected)
		return l, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("lost offsets: %w", err)
	}
	var total int64
	if err := s.pool.QueryRow(ctx, `SELECT COALESCE(sum(last_offset - first_offset + 1), 0) FROM pipeline.lost_offsets
		WHERE detected_at >= $1`, since).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("lost offsets: %w", err)
	}
	return out, total, nil
}

// LostOffsetsTotal counts every offset ever lost, per topic and partition,
// for the metric.
func (s *Store) LostOffsetsTotal(ctx context.Context) (map[string]map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, partition, sum(last_offset - first_offset + 1) FROM pipeline.lost_offsets GROUP BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("lost offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	var topic string
	var p int32
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&topic, &p, &n}, func() error {
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][p] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lost offsets: %w", err)
	}
	return out, nil
}
