package warehouse

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// hourOfMicros truncates µs since the epoch to the UTC hour.
func hourOfMicros(us int64) time.Time {
	return time.UnixMicro(us).UTC().Truncate(time.Hour)
}

// countedTallies locks the stream offsets of the tallied partitions and
// keeps the tallies not counted yet: a partition whose stored offset is
// past the tally's From was counted by the transaction that stored it.
func countedTallies(ctx context.Context, tx pgx.Tx, in LoadInput) ([]PartitionTally, error) {
	if len(in.Tally) == 0 {
		return nil, nil
	}
	parts := make([]int32, len(in.Tally))
	for i, t := range in.Tally {
		parts[i] = t.Partition
	}
	rows, err := tx.Query(ctx, `SELECT partition, next_offset FROM pipeline.stream_offsets
		WHERE topic = $1 AND partition = ANY($2) ORDER BY partition FOR UPDATE`, in.Topic, parts)
	if err != nil {
		return nil, fmt.Errorf("lock stream offsets of topic %s: %w", in.Topic, err)
	}
	stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int64, error) {
		var p int32
		var n int64
		err := r.Scan(&p, &n)
		return [2]int64{int64(p), n}, err
	})
	if err != nil {
		return nil, fmt.Errorf("lock stream offsets of topic %s: %w", in.Topic, err)
	}
	next := map[int32]int64{}
	for _, s := range stored {
		next[int32(s[0])] = s[1]
	}
	var out []PartitionTally
	for _, t := range in.Tally {
		if n, ok := next[t.Partition]; ok && n > t.From {
			continue
		}
		out = append(out, t)
	}
	return out, nil
}

// addTallies adds the counted tallies and the inserted rows per hour to
// pipeline.stream_arrivals.
func addTallies(ctx context.Context, tx pgx.Tx, topic string, counted []PartitionTally, inserted map[time.Time]int64) error {
	if len(counted) == 0 {
		return nil
	}
	type sums struct{ quarantined, cleaned, inserted int64 }
	byHour := map[time.Time]*sums{}
	at := func(h time.Time) *sums {
		s := byHour[h]
		if s == nil {
			s = &sums{}
			byHour[h] = s
		}
		return s
	}
	for _, t := range counted {
		for h, n := range t.Cleaned {
			at(h.UTC()).cleaned += n
		}
		for h, n := range t.Quarantined {
			at(h.UTC()).quarantined += n
		}
	}
	for h, n := range inserted {
		at(h).inserted += n
	}
	hours := slices.SortedFunc(maps.Keys(byHour), time.Time.Compare)
	var q, c, ins []int64
	for _, h := range hours {
		s := byHour[h]
		q, c, ins = append(q, s.quarantined), append(c, s.cleaned), append(ins, s.inserted)
	}
	_, err := tx.Exec(ctx, `INSERT INTO pipeline.stream_arrivals AS a (topic, hour, records, quarantined, cleaned, inserted)
		SELECT $1, h, q + c, q, c, i FROM unnest($2::timestamptz[], $3::int8[], $4::int8[], $5::int8[]) AS u(h, q, c, i)
		ON CONFLICT (topic, hour) DO UPDATE SET records = a.records + EXCLUDED.records,
			quarantined = a.quarantined + EXCLUDED.quarantined, cleaned = a.cleaned + EXCLUDED.cleaned,
			inserted = a.inserted + EXCLUDED.inserted, updated_at = now()`, topic, hours, q, c, ins)
	if err != nil {
		return fmt.Errorf("tally of topic %s in pipeline.stream_arrivals: %w", topic, err)
	}
	return nil
}

// moveEventsCountingSQL is moveEventsSQL counting the inserted rows per
// received_at hour.
const moveEventsCountingSQL = `WITH ins AS (` + moveEventsSQL + ` RETURNING received_at)
SELECT date_trunc('hour', received_at AT TIME ZONE 'UTC'), count(*) FROM ins GROUP BY 1`

func moveCountingHours(ctx context.Context, tx pgx.Tx, loadID int64, hours map[time.Time]int64) (int64, error) {
	rows, err := tx.Query(ctx, moveEventsCountingSQL, loadID)
	if err != nil {
		return 0, fmt.Errorf("insert into gold.events: %w", err)
	}
	defer rows.Close()
	var total int64
	for rows.Next() {
		var h *time.Time
		var n int64
		if err := rows.Scan(&h, &n); err != nil {
			return 0, fmt.Errorf("insert into gold.events: %w", err)
		}
		total += n
		if h != nil {
			hours[time.Date(h.Year(), h.Month(), h.Day(), h.Hour(), 0, 0, 0, time.UTC)] += n
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("insert into gold.events: %w", err)
	}
	return total, nil
}

// latencies returns the p95 and max of now − received_at over rows, and the
// newest received_at (nil when no row has one).
func latencies(rows []event.Row, now time.Time) (p95, maxLat time.Duration, newest *time.Time) {
	lat := make([]int64, 0, len(rows))
	nowUS := now.UnixMicro()
	var top int64
	for i := range rows {
		if r := rows[i].ReceivedAt; r != 0 {
			lat = append(lat, max(0, nowUS-r))
			top = max(top, r)
		}
	}
	if len(lat) == 0 {
		return 0, 0, nil
	}
	slices.Sort(lat)
	t := time.UnixMicro(top).UTC()
	idx := (len(lat)*95+99)/100 - 1
	return time.Duration(lat[idx]) * time.Microsecond, time.Duration(lat[len(lat)-1]) * time.Microsecond, &t
}

// nullMillis is d in ms, or NULL when there was nothing to measure.
func nullMillis(d time.Duration, measured *time.Time) *int64 {
	if measured == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}
