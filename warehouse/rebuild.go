package warehouse

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// A rebuild is one backfill of one UTC day (see migration 006). Its sources
// are fixed when it is planned; everything after works from them, in SQL, so
// that memory stays flat in the size of the day and several workers can share
// the work:
//
//	PlanRebuild → StageRebuildUnit (one per unit, in parallel) → ResolveRebuild
//	→ CommitRebuildGold → (silver.events overwrite: RebuildCoverage, WinnersInGold)
//	→ FinishRebuild
//
// The replacement is scoped to the sources' partitions and offset ranges:
// rows the live stream loads from later offsets, before, during or after the
// rebuild, are never deleted, and an event_id that both write is kept once
// (ON CONFLICT on the primary key).

// Sources a rebuild reads.
const (
	RebuildFromBronze = "bronze" // silver and gold from the bronze objects
)

// RebuildWorkMem is PostgreSQL's work_mem for a rebuild's sorts and hashes
// (per transaction, set locally): memory stays bounded by it, whatever the
// size of the day.
const RebuildWorkMem = "128MB"

// Defaults of RebuildPlanInput.
const (
	DefaultRebuildUnitRecords = 100_000
	DefaultRebuildMaxUnits    = 64
)

// RebuildPlanInput plans the rebuild of one UTC day.
type RebuildPlanInput struct {
	WorkflowID, RunID string // the Backfill run; a retried plan of the same run and day returns the same rebuild
	Day               Day
	Topic             string
	Source            string // RebuildFromBronze
	DryRun            bool
	// UnitRecords is the number of records a unit aims at. Default 100,000.
	UnitRecords int64
	// MaxUnits bounds the units of one day (and so the workflow's history).
	// Default 64.
	MaxUnits int
}

// Rebuild is a planned rebuild.
type Rebuild struct {
	ID      int64  `json:"id"`
	Day     Day    `json:"day"`
	Topic   string `json:"topic"`
	Source  string `json:"source"`
	Units   int    `json:"units"`
	Objects int    `json:"objects"`
	Records int64  `json:"records"`
	DryRun  bool   `json:"dry_run"`
}

// PlanRebuild records the sources of the day, as they are now, cut into
// units of about UnitRecords records (contiguous in partition and offset
// order): bronze objects whose event hours touch the day, or the live silver
// files of the day's hours. Planning the same run and day again, before
// FinishRebuild, returns the rebuild planned first.
func (s *Store) PlanRebuild(ctx context.Context, in RebuildPlanInput) (Rebuild, error) {
	if in.Day.IsZero() || in.Topic == "" || in.RunID == "" {
		return Rebuild{}, &InputError{Field: "Day", Msg: "Day, Topic and RunID are required"}
	}
	if in.Source != RebuildFromBronze {
		return Rebuild{}, &InputError{Field: "Source", Msg: fmt.Sprintf("%q: want bronze (silver files are no longer a source: silver is the Iceberg table silver.events)", in.Source)}
	}
	if in.UnitRecords <= 0 {
		in.UnitRecords = DefaultRebuildUnitRecords
	}
	if in.MaxUnits <= 0 {
		in.MaxUnits = DefaultRebuildMaxUnits
	}
	start, end := in.Day.Bounds(time.UTC)
	r := Rebuild{Day: in.Day.normal(), Topic: in.Topic, Source: in.Source, DryRun: in.DryRun}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT rebuild_id, units, objects, records FROM pipeline.rebuilds
			WHERE run_id = $1 AND day = $2::date AND finished_at IS NULL`,
			in.RunID, r.Day.String()).Scan(&r.ID, &r.Units, &r.Objects, &r.Records)
		if err == nil {
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// Sources of every incarnation of the topic: a retired one's days
		// are rebuilt from its own objects, each replacing its own rows.
		sources := `SELECT object_key, incarnation, partition, start_offset, end_offset, records::int8 AS records
			FROM pipeline.bronze_objects
			WHERE topic = $1 AND EXISTS (SELECT 1 FROM unnest(event_hours) AS h WHERE h >= $2 AND h < $3)`
		if err := tx.QueryRow(ctx, `SELECT count(*), COALESCE(sum(records), 0) FROM (`+sources+`) AS s`,
			in.Topic, start, end).Scan(&r.Objects, &r.Records); err != nil {
			return fmt.Errorf("count sources: %w", err)
		}
		r.Units = int(min(int64(in.MaxUnits), max(1, (r.Records+in.UnitRecords-1)/in.UnitRecords)))
		if r.Objects == 0 {
			r.Units = 0
		} else {
			r.Units = min(r.Units, r.Objects)
		}
		err = tx.QueryRow(ctx, `INSERT INTO pipeline.rebuilds (workflow_id, run_id, day, topic, source, units, objects, records, dry_run)
			VALUES ($1, $2, $3::date, $4, $5, $6, $7, $8, $9) RETURNING rebuild_id`,
			in.WorkflowID, in.RunID, r.Day.String(), in.Topic, in.Source, r.Units, r.Objects, r.Records, in.DryRun).Scan(&r.ID)
		if err != nil {
			return fmt.Errorf("record rebuild: %w", err)
		}
		if r.Units == 0 {
			return nil
		}
		// Unit = the share of the records before an object, so units hold
		// about the same number of records and never split an object.
		_, err = tx.Exec(ctx, `INSERT INTO pipeline.rebuild_sources (rebuild_id, unit, object_key, incarnation, partition, start_offset, end_offset, records)
			SELECT $4, least($5 - 1, ((sum(records) OVER w) - records) * $5 / greatest($6, 1)), object_key, incarnation, partition, start_offset, end_offset, records
			FROM (`+sources+`) AS s
			WINDOW w AS (ORDER BY incarnation, partition, start_offset, object_key ROWS UNBOUNDED PRECEDING)`,
			in.Topic, start, end, r.ID, r.Units, r.Records)
		if err != nil {
			return fmt.Errorf("record sources: %w", err)
		}
		// A unit left empty by a few huge objects is merged away: renumber
		// the units densely.
		return tx.QueryRow(ctx, `WITH d AS (SELECT unit, dense_rank() OVER (ORDER BY unit) - 1 AS dense
				FROM (SELECT DISTINCT unit FROM pipeline.rebuild_sources WHERE rebuild_id = $1) AS u),
			upd AS (UPDATE pipeline.rebuild_sources s SET unit = d.dense FROM d
				WHERE s.rebuild_id = $1 AND s.unit = d.unit AND d.unit <> d.dense RETURNING 1)
			UPDATE pipeline.rebuilds SET units = (SELECT count(*) FROM d) WHERE rebuild_id = $1 RETURNING units`, r.ID).Scan(&r.Units)
	})
	if err != nil {
		return Rebuild{}, fmt.Errorf("plan rebuild of %s (topic %s, from %s): %w", r.Day, in.Topic, in.Source, err)
	}
	return r, nil
}

// RebuildSource is one object a rebuild reads.
type RebuildSource struct {
	Key         string
	Incarnation int // the topic incarnation of its records
	Partition   int32
	First, Last int64
	Records     int64
}

// RebuildSources lists the objects of one unit, in incarnation, partition
// and offset order.
func (s *Store) RebuildSources(ctx context.Context, rebuild int64, unit int) ([]RebuildSource, error) {
	rows, err := s.pool.Query(ctx, `SELECT object_key, incarnation, partition, start_offset, end_offset, records
		FROM pipeline.rebuild_sources WHERE rebuild_id = $1 AND unit = $2 ORDER BY incarnation, partition, start_offset, object_key`, rebuild, unit)
	if err != nil {
		return nil, fmt.Errorf("sources of rebuild %d unit %d: %w", rebuild, unit, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RebuildSource, error) {
		var o RebuildSource
		err := r.Scan(&o.Key, &o.Incarnation, &o.Partition, &o.First, &o.Last, &o.Records)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("sources of rebuild %d unit %d: %w", rebuild, unit, err)
	}
	return out, nil
}

// UnitTally counts what a unit read. The activity fills it while the rows
// are consumed.
type UnitTally struct {
	Records     int64 `json:"records"`     // records (or silver rows) read
	Quarantined int64 `json:"quarantined"` // records that failed cleaning
	OtherDays   int64 `json:"other_days"`  // cleaned records of other days
	Staged      int64 `json:"staged"`      // rows staged
}

// StageRebuildUnit replaces the staged rows of one unit with rows, in one
// transaction, and records the unit as staged with tally (read after rows
// is exhausted). A retry replaces what an earlier attempt staged.
func (s *Store) StageRebuildUnit(ctx context.Context, rebuild int64, unit int, rows iter.Seq2[event.Row, error], tally *UnitTally) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM pipeline.rebuild_rows WHERE rebuild_id = $1 AND unit = $2`, rebuild, unit); err != nil {
			return err
		}
		n, err := copyRebuildRows(ctx, tx.Conn().PgConn(), rebuild, int32(unit), rows)
		if err != nil {
			return err
		}
		tally.Staged = n
		_, err = tx.Exec(ctx, `INSERT INTO pipeline.rebuild_units (rebuild_id, unit, records, quarantined, other_days, staged)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (rebuild_id, unit) DO UPDATE SET records = EXCLUDED.records,
			quarantined = EXCLUDED.quarantined, other_days = EXCLUDED.other_days, staged = EXCLUDED.staged, staged_at = now()`,
			rebuild, unit, tally.Records, tally.Quarantined, tally.OtherDays, tally.Staged)
		return err
	})
	if err != nil {
		return fmt.Errorf("stage rebuild %d unit %d: %w", rebuild, unit, err)
	}
	return nil
}

// Resolved reports the winners of a rebuild.
type Resolved struct {
	Missing     []int       `json:"missing,omitempty"` // units not staged (never, or lost to a database restart)
	Records     int64       `json:"records"`
	Quarantined int64       `json:"quarantined"`
	OtherDays   int64       `json:"other_days"`
	Staged      int64       `json:"staged"`
	Rows        int64       `json:"rows"`       // winners: distinct event_ids of the day
	Duplicates  int64       `json:"duplicates"` // staged rows that lost to another with the same event_id
	Hours       []time.Time `json:"hours"`      // UTC hours holding winners or live silver files of the day
}

// ResolveRebuild keeps one row per event_id of the staged rows, the first by
// (received_at, incarnation, partition, offset) as gold loads decide, and
// deletes the others. When a unit is not staged, it returns them in Missing and resolves
// nothing. Resolving again changes nothing.
func (s *Store) ResolveRebuild(ctx context.Context, rebuild int64) (Resolved, error) {
	var res Resolved
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT u FROM pipeline.rebuilds r, generate_series(0, r.units - 1) AS u
			WHERE r.rebuild_id = $1 AND NOT EXISTS (SELECT 1 FROM pipeline.rebuild_units x WHERE x.rebuild_id = $1 AND x.unit = u)
			ORDER BY u`, rebuild)
		if err != nil {
			return err
		}
		if res.Missing, err = pgx.CollectRows(rows, pgx.RowTo[int]); err != nil {
			return err
		}
		if len(res.Missing) > 0 {
			return nil
		}
		err = tx.QueryRow(ctx, `SELECT COALESCE(sum(records), 0), COALESCE(sum(quarantined), 0), COALESCE(sum(other_days), 0),
			COALESCE(sum(staged), 0) FROM pipeline.rebuild_units WHERE rebuild_id = $1`, rebuild).
			Scan(&res.Records, &res.Quarantined, &res.OtherDays, &res.Staged)
		if err != nil {
			return err
		}
		// The sort that picks the winners: in memory up to RebuildWorkMem,
		// on PostgreSQL's temporary files beyond. It sorts the keys only, and
		// deletes the losers (a client's retries: a few percent at most).
		if _, err := tx.Exec(ctx, `SELECT set_config('work_mem', $1, true)`, RebuildWorkMem); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pipeline.rebuild_rows WHERE rebuild_id = $1 AND ctid IN (
			SELECT ctid FROM (SELECT ctid, row_number() OVER (PARTITION BY event_id
				ORDER BY received_at NULLS FIRST, kafka_incarnation, kafka_partition, kafka_offset) AS n
				FROM pipeline.rebuild_rows WHERE rebuild_id = $1) AS r WHERE n > 1)`, rebuild); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM pipeline.rebuild_rows WHERE rebuild_id = $1`, rebuild).Scan(&res.Rows); err != nil {
			return err
		}
		res.Duplicates = res.Staged - res.Rows
		// The hours to write: those with winners, and those with live silver
		// files of the topic (which may all be retired).
		hrs, err := tx.Query(ctx, `SELECT h FROM (
				SELECT DISTINCT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS h
				FROM pipeline.rebuild_rows WHERE rebuild_id = $1
				UNION
				SELECT s.hour FROM pipeline.silver_objects s JOIN pipeline.rebuilds r ON r.rebuild_id = $1
				WHERE s.topic = r.topic AND s.state = 'live'
				AND s.hour >= r.day::timestamp AT TIME ZONE 'UTC' AND s.hour < (r.day + 1)::timestamp AT TIME ZONE 'UTC'
			) AS x ORDER BY h`, rebuild)
		if err != nil {
			return err
		}
		res.Hours, err = pgx.CollectRows(hrs, func(r pgx.CollectableRow) (time.Time, error) {
			var t time.Time
			err := r.Scan(&t)
			return t.UTC(), err
		})
		return err
	})
	if err != nil {
		return Resolved{}, fmt.Errorf("resolve rebuild %d: %w", rebuild, err)
	}
	return res, nil
}

// winnerColumns are the columns of pipeline.rebuild_rows (alias w) that
// winners scans into an event.Row.
const winnerColumns = `w.event_id, w.event_type, w.occurred_at, w.received_at, w.source, w.user_id, w.properties::text,
	w.kafka_partition, w.kafka_offset, w.kafka_incarnation, w.amount_micros, w.currency, w.actor, w.action, w.outcome`

// winners streams the rows of query, which selects winnerColumns; what
// names them in errors.
func (s *Store) winners(ctx context.Context, what, query string, args ...any) iter.Seq2[event.Row, error] {
	return func(yield func(event.Row, error) bool) {
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			yield(event.Row{}, fmt.Errorf("%s: %w", what, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var r event.Row
			var occurred time.Time
			var received *time.Time
			if err := rows.Scan(&r.EventID, &r.Type, &occurred, &received, &r.Source, &r.UserID, &r.Properties,
				&r.Partition, &r.Offset, &r.Incarnation, &r.AmountMicros, &r.Currency, &r.Actor, &r.Action, &r.Outcome); err != nil {
				yield(event.Row{}, fmt.Errorf("%s: %w", what, err))
				return
			}
			r.OccurredAt = occurred.UnixMicro()
			if received != nil {
				r.ReceivedAt = received.UnixMicro()
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(event.Row{}, fmt.Errorf("%s: %w", what, err))
		}
	}
}

// FinishRebuild drops the staged rows of a rebuild and records
// it finished. Its sources stay, as lineage of the load that used them.
func (s *Store) FinishRebuild(ctx context.Context, rebuild int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range []string{
			`DELETE FROM pipeline.rebuild_rows WHERE rebuild_id = $1`,
			`DELETE FROM pipeline.rebuild_units WHERE rebuild_id = $1`,
			`UPDATE pipeline.rebuilds SET finished_at = COALESCE(finished_at, now()) WHERE rebuild_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, rebuild); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish rebuild %d: %w", rebuild, err)
	}
	return nil
}
