package status

import (
	"context"
	"fmt"
	"time"

	"github.com/acme/pipeline/internal/kafkaread"
)

// The snapshot's readers of the pipeline's core state: freshness, lag,
// throughput, records per layer, loads and the catalog.

func (s Source) freshness(ctx context.Context, snap *Snapshot) error {
	// max(received_at) over the whole table is a sequential scan; the rows
	// that occurred in the last two days come through the occurred_at index
	// and hold the newest event whenever the pipeline is live. Only when
	// none is that recent is the whole table read.
	var rec, occ *time.Time
	err := s.DB.QueryRow(ctx, `SELECT max(received_at), max(occurred_at) FROM gold.events
		WHERE occurred_at >= $1::timestamptz - interval '2 days'`, snap.Taken).Scan(&rec, &occ)
	if err != nil {
		return fmt.Errorf("status: freshness of gold.events: %w", err)
	}
	if rec == nil {
		if err := s.DB.QueryRow(ctx, `SELECT max(received_at), max(occurred_at) FROM gold.events`).Scan(&rec, &occ); err != nil {
			return fmt.Errorf("status: freshness of gold.events: %w", err)
		}
	}
	if rec != nil {
		snap.Freshness.NewestReceived = rec.UTC()
		snap.Freshness.Age = max(0, snap.Taken.Sub(*rec))
		snap.Freshness.AgeSeconds = int64(snap.Freshness.Age / time.Second)
	}
	if occ != nil {
		snap.Freshness.NewestOccurred = occ.UTC()
	}
	var last *time.Time
	if err := s.DB.QueryRow(ctx, `SELECT max(finished_at) FROM pipeline.loads WHERE kind = 'live'
		AND started_at >= (SELECT max(started_at) FROM pipeline.loads WHERE kind = 'live') - interval '1 hour'`).Scan(&last); err != nil {
		return fmt.Errorf("status: last load: %w", err)
	}
	if last != nil {
		snap.Freshness.LastLoad = last.UTC()
	}
	return nil
}

func (s Source) lag(ctx context.Context, snap *Snapshot) error {
	stored := map[int32]PartitionLag{}
	next := map[int32]int64{}
	rows, err := s.DB.Query(ctx, `SELECT partition, next_offset, updated_at FROM pipeline.stream_offsets WHERE topic = $1`, s.Topic)
	if err != nil {
		return fmt.Errorf("status: pipeline.stream_offsets: %w", err)
	}
	for rows.Next() {
		var pl PartitionLag
		if err := rows.Scan(&pl.Partition, &pl.Next, &pl.Updated); err != nil {
			rows.Close()
			return fmt.Errorf("status: pipeline.stream_offsets: %w", err)
		}
		pl.Updated = pl.Updated.UTC()
		stored[pl.Partition], next[pl.Partition] = pl, pl.Next
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("status: pipeline.stream_offsets: %w", err)
	}

	if len(s.Brokers) == 0 {
		snap.KafkaError = "no Kafka brokers configured (KAFKA_BROKERS)"
		return nil
	}
	kc, err := kafkaread.New(kafkaread.Config{Brokers: s.Brokers, ClientID: "pipeline-status", Timeout: 5 * time.Second, Conn: s.Kafka})
	if err != nil {
		snap.KafkaError = err.Error()
		return nil
	}
	defer kc.Close()
	kctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	positions, err := kc.Positions(kctx, s.Topic, next)
	if err != nil {
		snap.KafkaError = err.Error()
		return nil
	}
	for _, pos := range positions {
		pl := stored[pos.Partition]
		pl.Partition, pl.End, pl.Next, pl.Stored, pl.Lag = pos.Partition, pos.End, pos.Next, pos.Stored, pos.Lag
		snap.Lag = append(snap.Lag, pl)
		snap.LagTotal += pl.Lag
	}
	return nil
}

// bucketsStart is the start of the oldest throughput bucket: the buckets end
// with the current (partial) one.
func bucketsStart(now time.Time) time.Time {
	return now.Truncate(BucketWidth).Add(-(Buckets - 1) * BucketWidth)
}

func (s Source) throughput(ctx context.Context, snap *Snapshot) error {
	start := bucketsStart(snap.Taken)
	snap.Throughput = make([]Bucket, Buckets)
	for i := range snap.Throughput {
		snap.Throughput[i].Start = start.Add(time.Duration(i) * BucketWidth)
	}
	// Live loads only: a backfill rewrites whole days at once and is shown
	// under Backfills. Bucketed by when the load committed its rows.
	rows, err := s.DB.Query(ctx, `SELECT floor(extract(epoch FROM coalesce(finished_at, started_at) - $1::timestamptz) / $2)::int AS b,
			sum(rows_inserted)::bigint
		FROM pipeline.loads
		WHERE kind = 'live' AND started_at >= $1::timestamptz - interval '1 hour'
		  AND coalesce(finished_at, started_at) >= $1::timestamptz
		GROUP BY b`, start, BucketWidth.Seconds())
	if err != nil {
		return fmt.Errorf("status: throughput from pipeline.loads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b int
		var n int64
		if err := rows.Scan(&b, &n); err != nil {
			return fmt.Errorf("status: throughput from pipeline.loads: %w", err)
		}
		if b >= 0 && b < Buckets {
			snap.Throughput[b].Events += n
			snap.ThroughputTotal += n
		}
	}
	return rows.Err()
}

func (s Source) layers(ctx context.Context, snap *Snapshot) error {
	newest := snap.Taken.Truncate(time.Hour)
	oldest := newest.Add(-time.Duration(s.Hours-1) * time.Hour)
	end := newest.Add(time.Hour)
	idx := map[time.Time]*HourCounts{}
	snap.Layers = make([]HourCounts, s.Hours)
	for i := range snap.Layers {
		snap.Layers[i].Hour = newest.Add(-time.Duration(i) * time.Hour)
		idx[snap.Layers[i].Hour] = &snap.Layers[i]
	}
	queries := []struct {
		what, sql string
		field     func(*HourCounts) *int64
	}{
		{"bronze", `SELECT date_trunc('hour', arrived_at AT TIME ZONE 'UTC'), sum(records)::bigint FROM pipeline.bronze_objects
			WHERE topic = $3 AND arrived_at >= $1 AND arrived_at < $2 GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Bronze }},
		{"quarantine", `SELECT date_trunc('hour', coalesce(kafka_timestamp, quarantined_at) AT TIME ZONE 'UTC'), count(*) FROM pipeline.quarantine
			WHERE topic = $3 AND coalesce(kafka_timestamp, quarantined_at) >= $1 AND coalesce(kafka_timestamp, quarantined_at) < $2 GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Quarantined }},
		{"silver", `SELECT hour AT TIME ZONE 'UTC', sum(rows)::bigint FROM pipeline.silver_objects
			WHERE state = 'live' AND topic = $3 AND hour >= $1 AND hour < $2 GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Silver }},
		{"gold", `SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC'), count(*) FROM gold.events
			WHERE occurred_at >= $1 AND occurred_at < $2 AND $3::text IS NOT NULL GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Gold }},
	}
	for _, q := range queries {
		rows, err := s.DB.Query(ctx, q.sql, oldest, end, s.Topic)
		if err != nil {
			return fmt.Errorf("status: %s counts: %w", q.what, err)
		}
		for rows.Next() {
			var h time.Time
			var n int64
			if err := rows.Scan(&h, &n); err != nil {
				rows.Close()
				return fmt.Errorf("status: %s counts: %w", q.what, err)
			}
			// timestamp without time zone scans as UTC wall time.
			h = time.Date(h.Year(), h.Month(), h.Day(), h.Hour(), 0, 0, 0, time.UTC)
			if hc, ok := idx[h]; ok {
				*q.field(hc) += n
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("status: %s counts: %w", q.what, err)
		}
	}
	return nil
}

func (s Source) loads(ctx context.Context, where string, limit int) ([]Load, error) {
	rows, err := s.DB.Query(ctx, `SELECT load_id, kind, started_at, finished_at, rows_seen, rows_inserted, rows_duplicate,
			rows_deleted, cardinality(source_keys), coalesce(day_from::text, ''), coalesce(day_to::text, ''), coalesce(time_zone, '')
		FROM pipeline.loads WHERE `+where+` ORDER BY load_id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("status: pipeline.loads: %w", err)
	}
	defer rows.Close()
	out := []Load{}
	for rows.Next() {
		var l Load
		var fin *time.Time
		if err := rows.Scan(&l.ID, &l.Kind, &l.Started, &fin, &l.Seen, &l.Inserted, &l.Duplicate, &l.Deleted,
			&l.Sources, &l.DayFrom, &l.DayTo, &l.TimeZone); err != nil {
			return nil, fmt.Errorf("status: pipeline.loads: %w", err)
		}
		l.Started = l.Started.UTC()
		if fin != nil {
			l.Finished = fin.UTC()
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

func (s Source) catalog(ctx context.Context, snap *Snapshot) error {
	rows, err := s.DB.Query(ctx, `SELECT kind, name, status, applied_at, coalesce(error, '') FROM pipeline.catalog ORDER BY kind, name`)
	if err != nil {
		return fmt.Errorf("status: pipeline.catalog: %w", err)
	}
	defer rows.Close()
	snap.Catalog = []CatalogEntry{}
	for rows.Next() {
		var c CatalogEntry
		var at *time.Time
		if err := rows.Scan(&c.Kind, &c.Name, &c.Status, &at, &c.Error); err != nil {
			return fmt.Errorf("status: pipeline.catalog: %w", err)
		}
		if at != nil {
			c.AppliedAt = at.UTC()
		}
		snap.Catalog = append(snap.Catalog, c)
	}
	return rows.Err()
}
