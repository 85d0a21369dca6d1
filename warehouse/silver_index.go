package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The silver part of the lake index (migration 002, with the rules of 007):
// which silver files are live, replaced or deleted, so that hour
// compaction knows what to merge and no key is ever made live again.

// SilverObject is one row of pipeline.silver_objects.
type SilverObject struct {
	Key   string
	Hour  time.Time // event hour, UTC
	Topic string
	// Incarnation is the topic incarnation of the rows (and of First and
	// Last); 0 is the first.
	Incarnation int
	Partition   int32
	First, Last int64 // offset range covered, inclusive
	Rows        int64
	Bytes       int64
	Compacted   bool
	State       string // "live", "replaced" or "deleted"; set when read back
}

// SilverStates returns the state of each of keys that is recorded.
func (s *Store) SilverStates(ctx context.Context, keys []string) (map[string]string, error) {
	out := map[string]string{}
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT object_key, state FROM pipeline.silver_objects WHERE object_key = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("silver objects: %w", err)
	}
	var k, st string
	_, err = pgx.ForEachRow(rows, []any{&k, &st}, func() error { out[k] = st; return nil })
	if err != nil {
		return nil, fmt.Errorf("silver objects: %w", err)
	}
	return out, nil
}

// RecordSilver records new silver files as live. Keys recorded live already
// are left as they are (a retried cycle). A key recorded as replaced or
// deleted is never made live again: RecordSilver returns a
// *RetiredSilverError (which wraps ErrSilverChanged) naming it, since the
// caller has just written an object that compaction or a backfill retired,
// and whose rows are in other live files.
func (s *Store) RecordSilver(ctx context.Context, objs []SilverObject) error {
	if len(objs) == 0 {
		return nil
	}
	tag, err := s.pool.Exec(ctx, insertSilverSQL+` ON CONFLICT (object_key) DO NOTHING`, silverArrays(objs)...)
	if err != nil {
		return fmt.Errorf("record %d silver objects from %s: %w", len(objs), objs[0].Key, err)
	}
	if tag.RowsAffected() == int64(len(objs)) {
		return nil
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	if err := retiredAmong(ctx, s.pool, keys); err != nil {
		return fmt.Errorf("record %d silver objects from %s: %w", len(objs), objs[0].Key, err)
	}
	return nil
}

// RetiredSilverError is returned when a write would make live again a
// silver key that is recorded as replaced or deleted. The index must never
// say live for an object that compaction has deleted (or is about to), so
// such a key stays retired; a writer that needs a new file uses a new key
// (lake.MergedSilverKey, lake.RebuildSilverKey). It wraps ErrSilverChanged:
// it means that another writer retired the key meanwhile.
type RetiredSilverError struct {
	Retired []SilverObject // Key and State of each retired key
}

func (e *RetiredSilverError) Error() string {
	msg := fmt.Sprintf("%d silver keys are retired and are never made live again:", len(e.Retired))
	for i, o := range e.Retired {
		if i == 3 {
			msg += fmt.Sprintf(" and %d more", len(e.Retired)-i)
			break
		}
		msg += fmt.Sprintf(" %s (%s)", o.Key, o.State)
	}
	return msg
}

func (e *RetiredSilverError) Unwrap() error { return ErrSilverChanged }

// retiredAmong returns a *RetiredSilverError naming the keys recorded as
// replaced or deleted, nil when there is none.
func retiredAmong(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, keys []string) error {
	rows, err := q.Query(ctx, `SELECT object_key, state FROM pipeline.silver_objects
		WHERE object_key = ANY($1) AND state <> 'live' ORDER BY object_key`, keys)
	if err != nil {
		return err
	}
	var e RetiredSilverError
	var o SilverObject
	if _, err := pgx.ForEachRow(rows, []any{&o.Key, &o.State}, func() error { e.Retired = append(e.Retired, o); return nil }); err != nil {
		return err
	}
	if len(e.Retired) == 0 {
		return nil
	}
	return &e
}

const insertSilverSQL = `INSERT INTO pipeline.silver_objects (object_key, hour, topic, partition, start_offset, end_offset, rows, bytes, compacted, incarnation)
	SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::int4[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::bool[], $10::int4[])`

func silverArrays(objs []SilverObject) []any {
	n := len(objs)
	keys, hours, topics := make([]string, n), make([]time.Time, n), make([]string, n)
	parts, firsts, lasts, rows, bytes := make([]int32, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	compacted, incs := make([]bool, n), make([]int32, n)
	for i, o := range objs {
		keys[i], hours[i], topics[i], parts[i] = o.Key, o.Hour.UTC(), o.Topic, o.Partition
		firsts[i], lasts[i], rows[i], bytes[i], compacted[i] = o.First, o.Last, o.Rows, o.Bytes, o.Compacted
		incs[i] = int32(max(o.Incarnation, 1))
	}
	return []any{keys, hours, topics, parts, firsts, lasts, rows, bytes, compacted, incs}
}

// SilverPartitionHour names the silver files of one partition in one event
// hour.
type SilverPartitionHour struct {
	Hour      time.Time
	Partition int32
	// SetAside is true when compaction set the pair aside earlier
	// (pipeline.silver_set_aside) and it is due for another try.
	SetAside bool
}

// DirtySilverHours lists the (hour, partition) pairs with live files that
// compaction has not merged yet, for hours that started before before
// (oldest first, at most limit). Pairs set aside (SetAsideSilverHour) are
// left out until their retry_at, compared with now (the compaction's time):
// a broken hour must not take a place among the limit at every run.
func (s *Store) DirtySilverHours(ctx context.Context, before, now time.Time, limit int) ([]SilverPartitionHour, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.hour, d.partition, sa.hour IS NOT NULL
		FROM (SELECT DISTINCT hour, partition FROM pipeline.silver_objects
			WHERE state = 'live' AND NOT compacted AND hour < $1) AS d
		LEFT JOIN pipeline.silver_set_aside AS sa USING (hour, partition)
		WHERE sa.hour IS NULL OR sa.retry_at <= $2
		ORDER BY d.hour, d.partition LIMIT $3`, before, now, limit)
	if err != nil {
		return nil, fmt.Errorf("silver hours to compact: %w", err)
	}
	var out []SilverPartitionHour
	var h SilverPartitionHour
	_, err = pgx.ForEachRow(rows, []any{&h.Hour, &h.Partition, &h.SetAside}, func() error {
		h.Hour = h.Hour.UTC()
		out = append(out, h)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("silver hours to compact: %w", err)
	}
	return out, nil
}

// LiveSilver lists the live silver files of one partition and hour, in
// incarnation and offset order.
func (s *Store) LiveSilver(ctx context.Context, hour time.Time, partition int32) ([]SilverObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+silverColumns+`
		FROM pipeline.silver_objects WHERE state = 'live' AND hour = $1 AND partition = $2
		ORDER BY incarnation, start_offset, end_offset`, hour, partition)
	if err != nil {
		return nil, fmt.Errorf("live silver files of hour %s partition %d: %w", hour.UTC().Format(time.RFC3339), partition, err)
	}
	out, err := scanSilver(rows)
	if err != nil {
		return nil, fmt.Errorf("live silver files of hour %s partition %d: %w", hour.UTC().Format(time.RFC3339), partition, err)
	}
	return out, nil
}

// LiveSilverBetween lists the live silver files of the event hours in
// [from, to), in hour, partition and offset order: what a backfill reads.
func (s *Store) LiveSilverBetween(ctx context.Context, from, to time.Time) ([]SilverObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+silverColumns+`
		FROM pipeline.silver_objects WHERE state = 'live' AND hour >= $1 AND hour < $2
		ORDER BY hour, partition, incarnation, start_offset`, from, to)
	if err != nil {
		return nil, fmt.Errorf("live silver files: %w", err)
	}
	out, err := scanSilver(rows)
	if err != nil {
		return nil, fmt.Errorf("live silver files: %w", err)
	}
	return out, nil
}

const silverColumns = `object_key, hour, topic, partition, start_offset, end_offset, rows, bytes, compacted, state, incarnation`

func scanSilver(rows pgx.Rows) ([]SilverObject, error) {
	var out []SilverObject
	var o SilverObject
	_, err := pgx.ForEachRow(rows, []any{&o.Key, &o.Hour, &o.Topic, &o.Partition, &o.First, &o.Last, &o.Rows, &o.Bytes, &o.Compacted, &o.State, &o.Incarnation},
		func() error {
			o.Hour = o.Hour.UTC()
			out = append(out, o)
			return nil
		})
	return out, err
}

// ErrSilverChanged is returned by ReplaceSilver when one of the files to
// replace is no longer live, or one of its outputs is recorded as retired:
// another compaction or a backfill got there first.
var ErrSilverChanged = errors.New("silver files changed meanwhile")

// ReplaceSilver commits one compaction (or a backfill's silver) in one
// transaction: outputs become live and compacted, each of replaced (which
// must all still be live) is marked replaced by outputKeys, and each of
// confirmed (live files kept as they are) is marked compacted. An output
// recorded live already (a retry that wrote the same key) is updated; one
// recorded as replaced or deleted is refused with a *RetiredSilverError,
// which wraps ErrSilverChanged, and nothing is committed: making it live
// again would leave the index naming an object that compaction deletes, or
// has deleted.
func (s *Store) ReplaceSilver(ctx context.Context, outputs []SilverObject, replaced, confirmed []string) error {
	outKeys := make([]string, len(outputs))
	for i := range outputs {
		outputs[i].Compacted = true
		outKeys[i] = outputs[i].Key
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		check := append(append([]string{}, replaced...), confirmed...)
		if len(check) > 0 {
			var live int
			err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM pipeline.silver_objects
				WHERE object_key = ANY($1) AND state = 'live' FOR UPDATE) AS l`, check).Scan(&live)
			if err != nil {
				return err
			}
			if live != len(check) {
				return fmt.Errorf("%d of %d files to compact are no longer live: %w", len(check)-live, len(check), ErrSilverChanged)
			}
		}
		if len(outputs) > 0 {
			// The WHERE leaves a retired key as it is, even one retired by
			// a transaction that committed after ours began; the count
			// tells.
			tag, err := tx.Exec(ctx, insertSilverSQL+` ON CONFLICT (object_key) DO UPDATE SET
				rows = EXCLUDED.rows, bytes = EXCLUDED.bytes, compacted = true
				WHERE pipeline.silver_objects.state = 'live'`,
				silverArrays(outputs)...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(outputs)) {
				if err := retiredAmong(ctx, tx, outKeys); err != nil {
					return err
				}
				return fmt.Errorf("%d of %d outputs not recorded: %w", int64(len(outputs))-tag.RowsAffected(), len(outputs), ErrSilverChanged)
			}
		}
		if len(replaced) > 0 {
			_, err := tx.Exec(ctx, `UPDATE pipeline.silver_objects SET state = 'replaced', replaced_by = $2, replaced_at = now()
				WHERE object_key = ANY($1)`, replaced, outKeys)
			if err != nil {
				return err
			}
		}
		if len(confirmed) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE pipeline.silver_objects SET compacted = true WHERE object_key = ANY($1)`, confirmed); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace %d silver files with %d: %w", len(replaced), len(outputs), err)
	}
	return nil
}

// ReplacedSilver lists up to limit silver files that compaction replaced but
// whose objects are not deleted yet.
func (s *Store) ReplacedSilver(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT object_key FROM pipeline.silver_objects WHERE state = 'replaced'
		ORDER BY replaced_at LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("replaced silver files: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("replaced silver files: %w", err)
	}
	return keys, nil
}

// MarkSilverDeleted records that the objects of replaced silver files are
// gone from the bucket.
func (s *Store) MarkSilverDeleted(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `UPDATE pipeline.silver_objects SET state = 'deleted' WHERE object_key = ANY($1) AND state = 'replaced'`, keys)
	if err != nil {
		return fmt.Errorf("mark %d silver files deleted: %w", len(keys), err)
	}
	return nil
}
