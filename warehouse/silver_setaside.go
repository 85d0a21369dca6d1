package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// This file is the list of silver hours that hour compaction set aside
// (migration 007, pipeline.silver_set_aside). One broken (hour, partition)
// must not stop compaction of every later hour: compaction records it here
// with its reason and goes on. How a pair leaves the list:
//   - a backfill of its day rewrites its silver and calls ClearSetAsideHours;
//   - compaction tries it again at retry_at (1h after the first failure,
//     doubling up to a day), and a success deletes the row (an operator who
//     restored the object need not wait for a backfill);
//   - a pair with no live file left to compact is pruned
//     (PruneSetAsideHours): whatever broke it was retired, e.g. by a
//     backfill that did not clear it;
//   - by hand, `DELETE FROM pipeline.silver_set_aside WHERE ...` makes the
//     next compaction try it at once.

// Back-off of a set-aside pair: compaction tries it again this long after
// the first failure, twice as long after each further one, at most
// SetAsideRetryMax.
const (
	SetAsideRetryMin = time.Hour
	SetAsideRetryMax = 24 * time.Hour
)

// SetAsideHour is one row of pipeline.silver_set_aside.
type SetAsideHour struct {
	Hour      time.Time `json:"hour"` // event hour, UTC
	Partition int32     `json:"partition"`
	Topic     string    `json:"topic"`
	// Reason is the last failure, one line; ErrorType its kind
	// (SilverMissing, SilverCorrupt, or another non-retryable error's type).
	Reason    string `json:"reason"`
	ErrorType string `json:"error_type"`
	// Key is the object that could not be read; "" when the failure named
	// none.
	Key          string    `json:"object_key,omitempty"`
	Since        time.Time `json:"since"`          // set aside first; set when read back
	LastFailedAt time.Time `json:"last_failed_at"` // set when read back
	Attempts     int       `json:"attempts"`       // failed compactions; set when read back
	RetryAt      time.Time `json:"retry_at"`       // set when read back
}

// SetAsideSilverHour records that compaction of h.Hour and h.Partition
// failed at (the compaction's own time, which DirtySilverHours compares
// retry_at with) in a way no retry can fix. A pair set aside already gets
// the new reason, one more attempt and a doubled back-off; its Since stays.
// It returns the row as stored.
func (s *Store) SetAsideSilverHour(ctx context.Context, h SetAsideHour, at time.Time) (SetAsideHour, error) {
	if h.Reason == "" || h.ErrorType == "" || h.Hour.IsZero() {
		return SetAsideHour{}, &InputError{Field: "SetAsideHour", Msg: fmt.Sprintf("hour %s partition %d: hour, reason and error type are required",
			h.Hour.UTC().Format(time.RFC3339), h.Partition)}
	}
	var key *string
	if h.Key != "" {
		key = &h.Key
	}
	// retry_at = at + min(SetAsideRetryMin · 2^(attempts-1), SetAsideRetryMax).
	row := s.pool.QueryRow(ctx, `INSERT INTO pipeline.silver_set_aside AS sa (hour, partition, topic, reason, error_type, object_key, retry_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz + make_interval(secs => $8))
		ON CONFLICT (hour, partition) DO UPDATE SET topic = EXCLUDED.topic, reason = EXCLUDED.reason,
			error_type = EXCLUDED.error_type, object_key = EXCLUDED.object_key, last_failed_at = now(),
			attempts = sa.attempts + 1,
			retry_at = $7::timestamptz + make_interval(secs => least($8 * power(2, least(sa.attempts, 30)), $9))
		RETURNING `+setAsideColumns,
		h.Hour.UTC(), h.Partition, h.Topic, h.Reason, h.ErrorType, key, at, SetAsideRetryMin.Seconds(), SetAsideRetryMax.Seconds())
	out, err := scanSetAside(row)
	if err != nil {
		return SetAsideHour{}, fmt.Errorf("set aside silver hour %s partition %d: %w", h.Hour.UTC().Format(time.RFC3339), h.Partition, err)
	}
	return out, nil
}

// SetAsideHours lists the set-aside pairs, oldest hour first, at most limit.
func (s *Store) SetAsideHours(ctx context.Context, limit int) ([]SetAsideHour, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+setAsideColumns+` FROM pipeline.silver_set_aside ORDER BY hour, partition LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("set-aside silver hours: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SetAsideHour, error) { return scanSetAside(r) })
	if err != nil {
		return nil, fmt.Errorf("set-aside silver hours: %w", err)
	}
	return out, nil
}

// CountSetAsideHours counts the set-aside pairs: the gauge
// pipeline_silver_hours_set_aside.
func (s *Store) CountSetAsideHours(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pipeline.silver_set_aside`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count set-aside silver hours: %w", err)
	}
	return n, nil
}

// ClearSetAsideHours forgets the set-aside pairs of topic whose hour is in
// [from, to), so that the next compaction takes them again. A backfill calls
// it once it has rewritten (and committed in pipeline.silver_objects) the
// silver of those hours: the files that broke compaction are then retired,
// and the hour compacts from the backfill's files. Clearing pairs that are
// still broken is harmless: the next compaction sets them aside again.
func (s *Store) ClearSetAsideHours(ctx context.Context, topic string, from, to time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM pipeline.silver_set_aside WHERE topic = $1 AND hour >= $2 AND hour < $3`, topic, from, to)
	if err != nil {
		return fmt.Errorf("clear set-aside silver hours of topic %s %s..%s: %w", topic,
			from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// ClearSetAsideHour forgets one set-aside pair: compaction calls it when the
// pair compacted after all. It reports whether the pair was set aside.
func (s *Store) ClearSetAsideHour(ctx context.Context, hour time.Time, partition int32) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pipeline.silver_set_aside WHERE hour = $1 AND partition = $2`, hour, partition)
	if err != nil {
		return false, fmt.Errorf("clear set-aside silver hour %s partition %d: %w", hour.UTC().Format(time.RFC3339), partition, err)
	}
	return tag.RowsAffected() > 0, nil
}

// PruneSetAsideHours forgets the set-aside pairs that have no live file left
// to compact: their broken files were retired (a backfill rewrote the hour)
// and nothing would ever try them again, so the alert would never resolve.
// It returns how many it forgot.
func (s *Store) PruneSetAsideHours(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pipeline.silver_set_aside AS sa WHERE NOT EXISTS (
		SELECT 1 FROM pipeline.silver_objects AS o
		WHERE o.hour = sa.hour AND o.partition = sa.partition AND o.state = 'live' AND NOT o.compacted)`)
	if err != nil {
		return 0, fmt.Errorf("prune set-aside silver hours: %w", err)
	}
	return tag.RowsAffected(), nil
}

const setAsideColumns = `hour, partition, topic, reason, error_type, coalesce(object_key, ''), since, last_failed_at, attempts, retry_at`

func scanSetAside(r pgx.Row) (SetAsideHour, error) {
	var h SetAsideHour
	err := r.Scan(&h.Hour, &h.Partition, &h.Topic, &h.Reason, &h.ErrorType, &h.Key, &h.Since, &h.LastFailedAt, &h.Attempts, &h.RetryAt)
	h.Hour, h.Since, h.LastFailedAt, h.RetryAt = h.Hour.UTC(), h.Since.UTC(), h.LastFailedAt.UTC(), h.RetryAt.UTC()
	return h, err
}
