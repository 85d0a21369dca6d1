package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SilverHourSwap reports a rebuild's commit of one silver hour.
type SilverHourSwap struct {
	Retired []string `json:"retired,omitempty"` // live files whose rows the rebuild's files now hold
	Kept    int      `json:"kept"`              // live files of later offsets, left live
}

// CommitRebuildSilverHour makes outputs (the rebuild's files of one hour,
// already in the bucket) live and compacted, and retires, in the same
// transaction, the topic's live files of that hour made from the rebuild's
// sources. Files of bronze objects the rebuild never read (written by the
// stream after the plan) stay live. A live file made from both (a compaction
// that merged across the plan) makes it fail with
// ErrSilverChanged, naming the file. Hour compaction leaves alone the hours of
// a day with an open rebuild (RebuildOpen, checked after it lists its inputs),
// so such a file should never exist.
//
// A key recorded already in another state is never made live again.
func (s *Store) CommitRebuildSilverHour(ctx context.Context, rebuild int64, topic string, hour time.Time, outputs []SilverObject) (SilverHourSwap, error) {
	var res SilverHourSwap
	outKeys := make([]string, len(outputs))
	for i := range outputs {
		outputs[i].Compacted = true
		outKeys[i] = outputs[i].Key
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(outputs) > 0 {
			var other []string
			rows, err := tx.Query(ctx, `SELECT object_key || ' (' || state || ')' FROM pipeline.silver_objects
				WHERE object_key = ANY($1) AND state <> 'live'`, outKeys)
			if err != nil {
				return err
			}
			if other, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			if len(other) > 0 {
				return fmt.Errorf("files recorded already and no longer live, never revived: %s: %w", strings.Join(other, ", "), ErrSilverChanged)
			}
		}
		// A file's rows lie in [start_offset, end_offset], but a merged file
		// may span offsets of bronze objects that hold nothing of its hour.
		// It is the rebuild's to retire when it overlaps what the rebuild
		// read and no bronze object of its hour in that span is unread (one
		// recorded after the plan).
		rows, err := tx.Query(ctx, `SELECT f.object_key,
				EXISTS (SELECT 1 FROM pipeline.rebuild_sources s WHERE s.rebuild_id = $1
					AND s.incarnation = f.incarnation AND s.partition = f.partition
					AND s.start_offset <= f.end_offset AND s.end_offset >= f.start_offset) AS overlaps,
				EXISTS (SELECT 1 FROM pipeline.bronze_objects o
					WHERE o.topic = f.topic AND o.incarnation = f.incarnation AND o.partition = f.partition AND o.start_offset <= f.end_offset
					AND o.start_offset >= COALESCE((SELECT max(b.start_offset) FROM pipeline.bronze_objects b
						WHERE b.topic = f.topic AND b.incarnation = f.incarnation AND b.partition = f.partition
						AND b.start_offset <= f.start_offset), f.start_offset)
					AND o.end_offset >= f.start_offset AND $3 = ANY (o.event_hours)
					AND NOT EXISTS (SELECT 1 FROM pipeline.rebuild_sources s WHERE s.rebuild_id = $1 AND s.object_key = o.object_key)) AS unread
			FROM pipeline.silver_objects f
			WHERE f.topic = $2 AND f.hour = $3 AND f.state = 'live' AND NOT (f.object_key = ANY($4))
			ORDER BY f.object_key
			FOR UPDATE OF f`, rebuild, topic, hour, outKeys)
		if err != nil {
			return err
		}
		var straddling []string
		var key string
		var overlaps, unread bool
		_, err = pgx.ForEachRow(rows, []any{&key, &overlaps, &unread}, func() error {
			switch {
			case overlaps && !unread:
				res.Retired = append(res.Retired, key)
			case overlaps:
				straddling = append(straddling, key)
			default:
				res.Kept++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(straddling) > 0 {
			return fmt.Errorf("live files cover offsets both read and not read by the rebuild: %s: %w", strings.Join(straddling, ", "), ErrSilverChanged)
		}
		if len(outputs) > 0 {
			_, err := tx.Exec(ctx, insertSilverSQL+` ON CONFLICT (object_key) DO NOTHING`, silverArrays(outputs)...)
			if err != nil {
				return err
			}
		}
		if len(res.Retired) > 0 {
			_, err := tx.Exec(ctx, `UPDATE pipeline.silver_objects SET state = 'replaced', replaced_by = $2, replaced_at = now()
				WHERE object_key = ANY($1)`, res.Retired, outKeys)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return SilverHourSwap{}, fmt.Errorf("swap silver hour %s (topic %s) for rebuild %d: %w", hour.UTC().Format("2006-01-02T15Z"), topic, rebuild, err)
	}
	return res, nil
}

// MaxRebuildHold is how long an unfinished rebuild keeps hour compaction off
// its day: a backfill terminated mid-day never finishes its rebuild, and its
// day compacts again after this.
const MaxRebuildHold = 24 * time.Hour

// RebuildOpen reports whether a rebuild of the UTC day of hour is planned
// and not finished (nor older than MaxRebuildHold).
func (s *Store) RebuildOpen(ctx context.Context, hour time.Time) (bool, error) {
	var open bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pipeline.rebuilds WHERE day = ($1 AT TIME ZONE 'UTC')::date
		AND finished_at IS NULL AND NOT dry_run AND created_at > now() - make_interval(secs => $2))`, hour, MaxRebuildHold.Seconds()).Scan(&open)
	if err != nil {
		return false, fmt.Errorf("open rebuilds of %s: %w", hour.UTC().Format(time.DateOnly), err)
	}
	return open, nil
}
