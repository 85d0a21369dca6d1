package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The reads of the status page (internal/status): how fresh gold is, where
// the stream stands, what the live loads inserted lately, how many records
// each layer holds per hour and the last loads. They only read.

// NewestGold returns the largest received_at and occurred_at in gold.events;
// zero times when gold is empty. at is the reader's clock: the rows that
// occurred in the two days before it are read first.
func (s *Store) NewestGold(ctx context.Context, at time.Time) (received, occurred time.Time, err error) {
	// max(received_at) over the whole table is a sequential scan; the rows
	// that occurred in the last two days come through the occurred_at index
	// and hold the newest event whenever the pipeline is live. Only when
	// none is that recent is the whole table read.
	// pipeline.gold_freshness (016_process_roles) reads gold.events for
	// roles that may not (the event API's pipeline_api).
	var rec, occ *time.Time
	err = s.pool.QueryRow(ctx, `SELECT received_at, occurred_at FROM pipeline.gold_freshness($1::timestamptz - interval '2 days')`, at).Scan(&rec, &occ)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("freshness of gold.events: %w", err)
	}
	if rec == nil {
		if err := s.pool.QueryRow(ctx, `SELECT received_at, occurred_at FROM pipeline.gold_freshness(NULL)`).Scan(&rec, &occ); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("freshness of gold.events: %w", err)
		}
	}
	if rec != nil {
		received = rec.UTC()
	}
	if occ != nil {
		occurred = occ.UTC()
	}
	return received, occurred, nil
}

// LastLiveLoad returns when the newest live load finished; zero when none
// did. Only the live loads started in the hour before the newest live load
// are read, not all of them.
func (s *Store) LastLiveLoad(ctx context.Context) (time.Time, error) {
	var last *time.Time
	if err := s.pool.QueryRow(ctx, `SELECT max(finished_at) FROM pipeline.loads WHERE kind = 'live'
		AND started_at >= (SELECT max(started_at) FROM pipeline.loads WHERE kind = 'live') - interval '1 hour'`).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("last load: %w", err)
	}
	if last == nil {
		return time.Time{}, nil
	}
	return last.UTC(), nil
}

// StoredOffset is a partition's row of pipeline.stream_offsets: where the
// stream goes on reading it.
type StoredOffset struct {
	Partition int32
	Next      int64     // the offset of the next record to load
	Updated   time.Time // when a load last stored it, UTC
}

// StoredOffsets returns topic's rows of pipeline.stream_offsets, with when
// each was last stored (StreamOffsets has the offsets alone).
func (s *Store) StoredOffsets(ctx context.Context, topic string) ([]StoredOffset, error) {
	rows, err := s.pool.Query(ctx, `SELECT partition, next_offset, updated_at FROM pipeline.stream_offsets WHERE topic = $1`, topic)
	if err != nil {
		return nil, fmt.Errorf("pipeline.stream_offsets of %s: %w", topic, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StoredOffset, error) {
		var o StoredOffset
		err := r.Scan(&o.Partition, &o.Next, &o.Updated)
		o.Updated = o.Updated.UTC()
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline.stream_offsets of %s: %w", topic, err)
	}
	return out, nil
}

// InsertedBucket is what the live loads inserted into gold in one time
// bucket.
type InsertedBucket struct {
	Start  time.Time `json:"start"`
	Events int64     `json:"events"`
}

// LiveThroughput returns the rows that live loads inserted into gold.events
// in n buckets of width from start, oldest first, each load counted in the
// bucket of when it committed its rows. Backfills are left out: they
// rewrite whole days at once.
func (s *Store) LiveThroughput(ctx context.Context, start time.Time, width time.Duration, n int) ([]InsertedBucket, error) {
	out := make([]InsertedBucket, n)
	for i := range out {
		out[i].Start = start.Add(time.Duration(i) * width)
	}
	rows, err := s.pool.Query(ctx, `SELECT floor(extract(epoch FROM coalesce(finished_at, started_at) - $1::timestamptz) / $2)::int AS b,
			sum(rows_inserted)::bigint
		FROM pipeline.loads
		WHERE kind = 'live' AND started_at >= $1::timestamptz - interval '1 hour'
		  AND coalesce(finished_at, started_at) >= $1::timestamptz
		GROUP BY b`, start, width.Seconds())
	if err != nil {
		return nil, fmt.Errorf("throughput from pipeline.loads: %w", err)
	}
	var b int
	var inserted int64
	_, err = pgx.ForEachRow(rows, []any{&b, &inserted}, func() error {
		if b >= 0 && b < n {
			out[b].Events += inserted
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("throughput from pipeline.loads: %w", err)
	}
	return out, nil
}

// HourCounts counts one hour's records per layer.
type HourCounts struct {
	Hour        time.Time `json:"hour"`
	Bronze      int64     `json:"bronze"`      // records in bronze objects that arrived that hour
	Quarantined int64     `json:"quarantined"` // records quarantined, by their Kafka timestamp
	Silver      int64     `json:"silver"`      // rows in silver.events of that event hour (gold's, less loads pending for silver)
	Gold        int64     `json:"gold"`        // gold.events rows that occurred that hour
}

// CountsByHour counts topic's records per layer for the hours hours up to
// and including newest (an hour's start, UTC), newest first: bronze and
// quarantine by arrival hour (Kafka timestamp), silver and gold by event
// hour (occurred_at). gold.events holds every topic's events.
func (s *Store) CountsByHour(ctx context.Context, topic string, newest time.Time, hours int) ([]HourCounts, error) {
	oldest := newest.Add(-time.Duration(hours-1) * time.Hour)
	end := newest.Add(time.Hour)
	idx := map[time.Time]*HourCounts{}
	out := make([]HourCounts, hours)
	for i := range out {
		out[i].Hour = newest.Add(-time.Duration(i) * time.Hour)
		idx[out[i].Hour] = &out[i]
	}
	queries := []struct {
		what, sql string
		field     func(*HourCounts) *int64
	}{
		{"bronze", `SELECT date_trunc('hour', arrived_at AT TIME ZONE 'UTC'), sum(records)::bigint FROM pipeline.bronze_objects
			WHERE topic = $3 AND arrived_at >= $1 AND arrived_at < $2 GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Bronze }},
		{"quarantine", `SELECT date_trunc('hour', coalesce(kafka_timestamp, quarantined_at) AT TIME ZONE 'UTC'), count(*) FROM pipeline.quarantine
			WHERE topic = $3 AND coalesce(kafka_timestamp, quarantined_at) >= $1 AND coalesce(kafka_timestamp, quarantined_at) < $2 GROUP BY 1`, func(h *HourCounts) *int64 { return &h.Quarantined }},
	}
	for _, q := range queries {
		if err := s.countHours(ctx, q.what, q.sql, idx, q.field, oldest, end, topic); err != nil {
			return nil, err
		}
	}
	// silver.events holds gold's rows but those of loads still pending for
	// it (the ledger, pipeline.loads.silver_pending); gold.events holds
	// every topic's events. pipeline.gold_hour_layers counts both for roles
	// that may not read gold (016_process_roles).
	err := s.countHours(ctx, "gold and silver", `SELECT hour, gold, silver FROM pipeline.gold_hour_layers($1, $2)`, idx,
		func(h *HourCounts) *int64 { return &h.Gold }, oldest, end)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// countHours adds each hour's count of query (an hour, then one count, or
// two: gold and silver) to idx.
func (s *Store) countHours(ctx context.Context, what, query string, idx map[time.Time]*HourCounts, field func(*HourCounts) *int64, args ...any) error {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("%s counts: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		var h time.Time
		var n, silver int64
		dst := []any{&h, &n}
		if len(rows.FieldDescriptions()) == 3 {
			dst = append(dst, &silver)
		}
		if err := rows.Scan(dst...); err != nil {
			return fmt.Errorf("%s counts: %w", what, err)
		}
		// timestamp without time zone scans as UTC wall time.
		h = time.Date(h.Year(), h.Month(), h.Day(), h.Hour(), 0, 0, 0, time.UTC)
		if hc, ok := idx[h]; ok {
			*field(hc) += n
			hc.Silver += silver
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s counts: %w", what, err)
	}
	return nil
}

// LoadRow is a row of pipeline.loads, a load's lineage.
type LoadRow struct {
	ID        int64     `json:"load_id"`
	Kind      string    `json:"kind"`
	Started   time.Time `json:"started_at"`
	Finished  time.Time `json:"finished_at,omitzero"`
	Seen      int64     `json:"rows_seen"`
	Inserted  int64     `json:"rows_inserted"`
	Duplicate int64     `json:"rows_duplicate"`
	Deleted   int64     `json:"rows_deleted"`
	Sources   int       `json:"sources"`
	DayFrom   string    `json:"day_from,omitempty"` // backfills, YYYY-MM-DD
	DayTo     string    `json:"day_to,omitempty"`
	TimeZone  string    `json:"time_zone,omitempty"`
}

// Duration is Finished − Started (0 when unfinished).
func (l LoadRow) Duration() time.Duration {
	if l.Finished.IsZero() {
		return 0
	}
	return l.Finished.Sub(l.Started)
}

// loadRowsSQL reads LoadRow; RecentLoads adds the filter, order and limit.
const loadRowsSQL = `SELECT load_id, kind, started_at, finished_at, rows_seen, rows_inserted, rows_duplicate,
			rows_deleted, cardinality(source_keys), coalesce(day_from::text, ''), coalesce(day_to::text, ''), coalesce(time_zone, '')
		FROM pipeline.loads`

// RecentLoads returns the last limit loads of kind ("live", "backfill"; ""
// for every kind), newest first. Times are UTC.
func (s *Store) RecentLoads(ctx context.Context, kind string, limit int) ([]LoadRow, error) {
	q, args := loadRowsSQL+` ORDER BY load_id DESC LIMIT $1`, []any{limit}
	if kind != "" {
		q, args = loadRowsSQL+` WHERE kind = $2 ORDER BY load_id DESC LIMIT $1`, []any{limit, kind}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pipeline.loads: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LoadRow, error) {
		var l LoadRow
		var fin *time.Time
		err := r.Scan(&l.ID, &l.Kind, &l.Started, &fin, &l.Seen, &l.Inserted, &l.Duplicate, &l.Deleted,
			&l.Sources, &l.DayFrom, &l.DayTo, &l.TimeZone)
		l.Started = l.Started.UTC()
		if fin != nil {
			l.Finished = fin.UTC()
		}
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline.loads: %w", err)
	}
	return out, nil
}
