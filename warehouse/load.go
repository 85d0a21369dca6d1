package warehouse

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"time"

	"github.com/acme/pipeline/event"
	"github.com/jackc/pgx/v5"
)

// MaxReplaceDays bounds the days one ReplaceDays call replaces: a backfill
// fans out one call per day or a few, never a year in one transaction.
const MaxReplaceDays = 31

// lockClassDay is the first key of the transaction advisory locks taken per
// day (second key: days since 1970-01-01) by ReplaceDays and BuildMarts, so
// that a mart is never built from a day that is being replaced ("gold").
const lockClassDay int32 = 0x676f6c64

// LoadInput is one live batch of the stream: rows read from the lake, and the
// stream position they bring the partitions to.
type LoadInput struct {
	// Rows to load. Repeated event_ids are fine: within the batch the first
	// by (ReceivedAt, Partition, Offset) wins, and ids already in gold are
	// skipped.
	Rows []event.Row
	// Sources are the lake object keys the rows were read from, recorded in
	// pipeline.loads for lineage.
	Sources []string
	// BronzeKeys are the bronze objects the rows were cleaned from
	// (pipeline.loads.bronze_keys): where a silver sweep rebuilds them.
	BronzeKeys []string
	// Silver marks a load that inserts rows as pending for silver.events
	// (silver_ledger.go): the stream sets it, and appends the rows next.
	Silver bool
	// Topic is the Kafka topic of Offsets. Required when Offsets is set.
	Topic string
	// Incarnation is the topic incarnation (pipeline.topic_incarnations) the
	// rows and Offsets belong to. When set, the load fails with
	// ErrNotCurrentIncarnation unless it is the topic's current one, and
	// holds it so until the commit: an operator who starts a new
	// incarnation meanwhile never sees offsets of the old topic stored for
	// the new one. 0 stores the offsets as incarnation 1 unchecked (loads
	// from before incarnations, tests).
	Incarnation int
	// Offsets maps partition to the offset of the next record not yet loaded.
	// They are stored in pipeline.stream_offsets in the same transaction as
	// the rows; a stored offset never moves backwards.
	Offsets map[int32]int64
	// Tally is the stream's accounting of the records behind Rows, one
	// entry per partition, added to pipeline.stream_arrivals in the same
	// transaction. A partition whose stored offset is already past its From
	// is not counted again (a retried batch). Optional.
	Tally []PartitionTally
}

// PartitionTally counts one partition's records of a batch per arrival hour
// (UTC): cleaned by received_at, quarantined by Kafka timestamp.
type PartitionTally struct {
	Partition   int32
	From        int64 // offset of the batch's first record of the partition
	Cleaned     map[time.Time]int64
	Quarantined map[time.Time]int64
}

// LoadResult reports a committed load.
type LoadResult struct {
	LoadID     int64 // pipeline.loads.load_id; 0 when nothing was recorded
	Rows       int64 // rows offered
	Inserted   int64 // rows inserted into gold.events
	Duplicates int64 // rows skipped: event_id repeated in the batch or already in gold
	// Conflicting counts the duplicates whose content differed from the
	// record they lost to: an id reused for another event (conflicts.go).
	Conflicting int64
	Payments    int64 // rows inserted into gold.payments
	Audit       int64 // rows inserted into gold.audit_log
	Direct      bool  // the rows were COPYed straight into gold (none was there yet)
}

// LoadLive loads a stream batch in one transaction: the rows into gold.events
// (and gold.payments for payment.* types, gold.audit_log for audit.* types),
// skipping event_ids already present; a lineage row into pipeline.loads; and
// the new stream offsets. A row whose event_id is known (in gold, or taken
// by a row of the batch that wins) is a duplicate for all three tables,
// whatever its type: gold.payments and gold.audit_log only take an event
// that gold.events took in the same load. Duplicates whose content differs
// are counted apart (LoadResult.Conflicting) and noted with their id in
// pipeline.conflicting_ids. Rows go by COPY either straight into gold, when no
// event_id is there yet, or through staging tables and INSERT ... ON CONFLICT
// (event_id) DO NOTHING; the result is the same (see direct.go). Loading the same input twice changes nothing the
// second time (Inserted 0, every row a duplicate). A load with no rows still
// stores its offsets; it writes a lineage row only when it has rows or sources.
func (s *Store) LoadLive(ctx context.Context, in LoadInput) (LoadResult, error) {
	if len(in.Offsets) > 0 && in.Topic == "" {
		return LoadResult{}, &InputError{Field: "Topic", Msg: "required with Offsets"}
	}
	for p, o := range in.Offsets {
		if p < 0 || o < 0 {
			return LoadResult{}, &InputError{Field: "Offsets", Msg: fmt.Sprintf("partition %d offset %d: must not be negative", p, o)}
		}
	}
	res := LoadResult{Rows: int64(len(in.Rows))}
	if len(in.Rows) == 0 && len(in.Sources) == 0 && len(in.Offsets) == 0 {
		return res, nil
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if in.Incarnation > 0 {
			if err := lockCurrentIncarnation(ctx, tx, in.Topic, in.Incarnation); err != nil {
				return err
			}
		}
		counted, err := countedTallies(ctx, tx, in)
		if err != nil {
			return err
		}
		// insertedHours counts the inserted gold.events rows per
		// received_at hour, for the tally.
		var insertedHours map[time.Time]int64
		if len(counted) > 0 {
			insertedHours = map[time.Time]int64{}
		}
		if len(in.Rows) > 0 || len(in.Sources) > 0 {
			err := tx.QueryRow(ctx, `INSERT INTO pipeline.loads (kind, source_keys, topic) VALUES ('live', $1, NULLIF($2, ''))
				RETURNING load_id`, nonNil(in.Sources), in.Topic).Scan(&res.LoadID)
			if err != nil {
				return fmt.Errorf("record load: %w", err)
			}
		}
		var conflicts []conflict
		if len(in.Rows) > 0 {
			direct, probe := s.directPath()
			if direct {
				var err error
				if direct, conflicts, err = s.loadDirect(ctx, tx, in.Rows, res.LoadID, &res, insertedHours, probe); err != nil {
					return err
				}
				if !direct && !probe {
					// An id gold holds: probe for them, and keep probing
					// for a while.
					s.directSkip.Store(directCooldown)
					if direct, conflicts, err = s.loadDirect(ctx, tx, in.Rows, res.LoadID, &res, insertedHours, true); err != nil {
						return err
					}
				}
				res.Direct = direct
			}
			if !direct {
				st, err := s.stage(ctx, tx, SliceRows(in.Rows), nil)
				if err != nil {
					return err
				}
				if err := moveStaged(ctx, tx, res.LoadID, &res.Inserted, &res.Payments, &res.Audit, insertedHours); err != nil {
					return err
				}
				res.Duplicates = st.Sent - res.Inserted
				if conflicts, err = stagedConflicts(ctx, tx, in.Rows, st, res.Inserted); err != nil {
					return err
				}
			}
			res.Conflicting = int64(len(conflicts))
			if err := recordConflicts(ctx, tx, res.LoadID, conflicts); err != nil {
				return err
			}
		}
		if err := addTallies(ctx, tx, in.Topic, counted, insertedHours); err != nil {
			return err
		}
		if len(in.Offsets) > 0 {
			parts := make([]int32, 0, len(in.Offsets))
			offs := make([]int64, 0, len(in.Offsets))
			for _, p := range slices.Sorted(maps.Keys(in.Offsets)) {
				parts, offs = append(parts, p), append(offs, in.Offsets[p])
			}
			_, err := tx.Exec(ctx, `INSERT INTO pipeline.stream_offsets AS o (topic, partition, next_offset, updated_at, incarnation)
				SELECT $1, p, n, now(), greatest($4::int4, 1) FROM unnest($2::int4[], $3::int8[]) AS u(p, n)
				ON CONFLICT (topic, partition) DO UPDATE
				SET next_offset = EXCLUDED.next_offset, updated_at = EXCLUDED.updated_at, incarnation = EXCLUDED.incarnation
				WHERE o.next_offset <= EXCLUDED.next_offset`, in.Topic, parts, offs, in.Incarnation)
			if err != nil {
				return fmt.Errorf("store offsets of topic %s: %w", in.Topic, err)
			}
		}
		// Built mart days under the new rows go stale: late, so that their
		// row locks are held only until commit.
		if res.Inserted > 0 {
			if err := markMartsStale(ctx, tx, occurredHours(in.Rows)); err != nil {
				return err
			}
		}
		if res.LoadID != 0 {
			// The batch's 202-to-gold latency, measured just before commit.
			p95, maxLat, newest := latencies(in.Rows, time.Now())
			_, err := tx.Exec(ctx, `UPDATE pipeline.loads SET rows_seen = $2, rows_inserted = $3, rows_duplicate = $4,
				finished_at = clock_timestamp(), latency_p95_ms = $5, latency_max_ms = $6, newest_received_at = $7,
				rows_conflicting = $8, silver_pending = $9 AND $3::int8 > 0, bronze_keys = $10
				WHERE load_id = $1`, res.LoadID, res.Rows, res.Inserted, res.Duplicates,
				nullMillis(p95, newest), nullMillis(maxLat, newest), newest, res.Conflicting, in.Silver, nonNil(in.BronzeKeys))
			if err != nil {
				return fmt.Errorf("record load: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return LoadResult{}, fmt.Errorf("live load of %d rows from %s: %w", len(in.Rows), sourcesText(in.Sources), err)
	}
	return res, nil
}

// ReplaceInput is a backfill of whole days of gold.
type ReplaceInput struct {
	// From and To are the first and last day replaced (inclusive), at most
	// MaxReplaceDays days. Required.
	From, To Day
	// Loc is the time zone the days are in. Default UTC.
	Loc *time.Location
	// Rows are every event of those days, e.g. read from silver. Rows that
	// occurred outside [From, To] in Loc are skipped and counted (silver hours
	// need not align with days in Loc). Repeated event_ids are fine, as in
	// LoadInput. Required; an error from the sequence aborts the replacement
	// and leaves gold as it was. SliceRows adapts a slice.
	Rows iter.Seq2[event.Row, error]
	// Sources are the lake object keys the rows came from (lineage).
	Sources []string
}

// ReplaceResult reports a committed replacement.
type ReplaceResult struct {
	LoadID     int64 // pipeline.loads.load_id
	Deleted    int64 // gold.events rows of those days deleted (payments and audit rows too, not counted here)
	Rows       int64 // rows the sequence produced
	OutOfRange int64 // rows skipped because they occurred outside the days
	Inserted   int64 // rows inserted into gold.events
	Duplicates int64 // rows skipped: event_id repeated, or present in gold outside the days
	Payments   int64 // rows inserted into gold.payments
	Audit      int64 // rows inserted into gold.audit_log
}

// SliceRows adapts a slice to ReplaceInput.Rows.
func SliceRows(rows []event.Row) iter.Seq2[event.Row, error] {
	return func(yield func(event.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// ReplaceDays replaces the gold rows of whole days, in one transaction: it
// deletes the rows of gold.events, gold.payments and gold.audit_log that
// occurred on those days (in in.Loc) and loads in.Rows as LoadLive does. A
// reader sees the old days until the commit, then the new ones, never a mix.
// Running it twice with the same rows leaves the same tables (apart from
// load_id and loaded_at). It waits for a BuildMarts or ReplaceDays on any of the
// same days to finish first, and marks the built marts of those days stale.
//
// The Backfill does not use it: deleting whole days would also delete the rows
// the live stream loads while a backfill runs. It rebuilds through
// PlanRebuild and CommitRebuildGold, which replace only the offset ranges
// they read.
func (s *Store) ReplaceDays(ctx context.Context, in ReplaceInput) (ReplaceResult, error) {
	if in.From.IsZero() || in.To.IsZero() {
		return ReplaceResult{}, &InputError{Field: "From", Msg: "From and To are required"}
	}
	if in.From.Compare(in.To) > 0 {
		return ReplaceResult{}, &InputError{Field: "From", Msg: fmt.Sprintf("%s is after To %s", in.From, in.To)}
	}
	days := 1 + int(in.To.epochDay()-in.From.epochDay())
	if days > MaxReplaceDays {
		return ReplaceResult{}, &InputError{Field: "To", Msg: fmt.Sprintf("%s..%s is %d days; at most %d per call", in.From, in.To, days, MaxReplaceDays)}
	}
	if in.Rows == nil {
		return ReplaceResult{}, &InputError{Field: "Rows", Msg: "required (use SliceRows for a slice)"}
	}
	loc := in.Loc
	if loc == nil {
		loc = time.UTC
	}
	start, end := in.From.Start(loc), in.To.AddDays(1).Start(loc)
	lo, hi := start.UnixMicro(), end.UnixMicro()
	keep := func(r *event.Row) bool { return r.OccurredAt >= lo && r.OccurredAt < hi }

	var res ReplaceResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockDays(ctx, tx, in.From, days); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `INSERT INTO pipeline.loads (kind, source_keys, day_from, day_to, time_zone)
			VALUES ('backfill', $1, $2::date, $3::date, $4) RETURNING load_id`,
			nonNil(in.Sources), in.From.String(), in.To.String(), loc.String()).Scan(&res.LoadID)
		if err != nil {
			return fmt.Errorf("record load: %w", err)
		}
		for _, table := range []string{"gold.events", "gold.payments", "gold.audit_log"} {
			tag, err := tx.Exec(ctx, "DELETE FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", table, err)
			}
			if table == "gold.events" {
				res.Deleted = tag.RowsAffected()
			}
		}
		st, err := s.stage(ctx, tx, in.Rows, keep)
		if err != nil {
			return err
		}
		res.Rows, res.OutOfRange = st.Seen, st.OutOfRange
		if st.Sent > 0 {
			if err := moveStaged(ctx, tx, res.LoadID, &res.Inserted, &res.Payments, &res.Audit, nil); err != nil {
				return err
			}
		}
		res.Duplicates = st.Sent - res.Inserted
		if err := markMartsStaleRange(ctx, tx, start, end); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE pipeline.loads SET rows_seen = $2, rows_inserted = $3, rows_duplicate = $4,
			rows_out_of_range = $5, rows_deleted = $6, finished_at = clock_timestamp() WHERE load_id = $1`,
			res.LoadID, res.Rows, res.Inserted, res.Duplicates, res.OutOfRange, res.Deleted)
		if err != nil {
			return fmt.Errorf("record load: %w", err)
		}
		return nil
	})
	if err != nil {
		return ReplaceResult{}, fmt.Errorf("replace days %s..%s (%s): %w", in.From, in.To, loc, err)
	}
	return res, nil
}

// stage creates gold_stage in tx, copies rows into it and deletes the rows that
// lost to another row with the same event_id.
func (s *Store) stage(ctx context.Context, tx pgx.Tx, rows iter.Seq2[event.Row, error], keep func(*event.Row) bool) (*copyStats, error) {
	if _, err := tx.Exec(ctx, createStageSQL); err != nil {
		return nil, fmt.Errorf("create staging table: %w", err)
	}
	st, err := copyStage(ctx, tx.Conn().PgConn(), rows, keep)
	if err != nil {
		return nil, err
	}
	if len(st.Losers) > 0 {
		// Payment and audit losers never reached their staging tables.
		if _, err := tx.Exec(ctx, "DELETE FROM gold_stage WHERE seq = ANY($1)", st.Losers); err != nil {
			return nil, fmt.Errorf("drop repeated event_ids from staging: %w", err)
		}
	}
	return st, nil
}

// lockDays takes the per-day transaction locks of n days from first, in order.
func lockDays(ctx context.Context, tx pgx.Tx, first Day, n int) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, d) FROM generate_series($2::int4, $3::int4) AS d ORDER BY d`,
		lockClassDay, first.epochDay(), first.epochDay()+int32(n)-1)
	if err != nil {
		return fmt.Errorf("lock days: %w", err)
	}
	return nil
}

// StreamOffsets returns the stored next offset of every partition of topic.
func (s *Store) StreamOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := s.pool.Query(ctx, "SELECT partition, next_offset FROM pipeline.stream_offsets WHERE topic = $1", topic)
	if err != nil {
		return nil, fmt.Errorf("stream offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	var p int32
	var o int64
	_, err = pgx.ForEachRow(rows, []any{&p, &o}, func() error { out[p] = o; return nil })
	if err != nil {
		return nil, fmt.Errorf("stream offsets of %s: %w", topic, err)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sourcesText(keys []string) string {
	switch len(keys) {
	case 0:
		return "no source"
	case 1:
		return keys[0]
	default:
		return fmt.Sprintf("%s and %d more", keys[0], len(keys)-1)
	}
}
