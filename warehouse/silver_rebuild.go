package warehouse

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// What a backfill needs to rebuild its day of silver.events: the offset
// ranges its gold commit replaced, the rows it inserted, and a wait for
// stream appends that read gold before that commit.

// OffsetRange is a closed range of offsets of one partition of one topic
// incarnation.
type OffsetRange struct {
	Incarnation int32 `json:"incarnation"`
	Partition   int32 `json:"partition"`
	First       int64 `json:"first"`
	Last        int64 `json:"last"`
}

// RebuildCoverage returns the offset ranges a rebuild's sources cover, merged
// where they touch: the lineage whose rows of the day its gold commit
// replaced (CommitRebuildGold's coveredSQL).
func (s *Store) RebuildCoverage(ctx context.Context, rebuild int64) ([]OffsetRange, error) {
	rows, err := s.pool.Query(ctx, `SELECT incarnation, partition, lower(r), upper(r) - 1
		FROM (SELECT incarnation, partition, unnest(r) AS r FROM (`+coveredSQL+`) c) u
		ORDER BY 1, 2, 3`, rebuild)
	if err != nil {
		return nil, fmt.Errorf("offset ranges of rebuild %d: %w", rebuild, err)
	}
	var out []OffsetRange
	var o OffsetRange
	_, err = pgx.ForEachRow(rows, []any{&o.Incarnation, &o.Partition, &o.First, &o.Last}, func() error {
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("offset ranges of rebuild %d: %w", rebuild, err)
	}
	return out, nil
}

// WinnersInGold streams the rebuild's winners that gold.events holds as
// written by load goldLoad (the rebuild's gold commit): exactly the rows
// that commit inserted. goldLoad 0 (a silver-only rebuild) streams the
// winners gold holds from the same record, whichever load wrote them: silver
// never gets an id that gold holds from another record. Rows come in
// lineage order; properties as jsonb prints them.
func (s *Store) WinnersInGold(ctx context.Context, rebuild, goldLoad int64) iter.Seq2[event.Row, error] {
	return s.winners(ctx, fmt.Sprintf("winners of rebuild %d in gold load %d", rebuild, goldLoad),
		`SELECT `+winnerColumns+` FROM pipeline.rebuild_rows w
		WHERE w.rebuild_id = $1 AND EXISTS (SELECT 1 FROM gold.events e
			WHERE e.event_id = w.event_id AND ($2 = 0 OR e.load_id = $2) AND e.kafka_incarnation = w.kafka_incarnation
			AND e.kafka_partition = w.kafka_partition AND e.kafka_offset = w.kafka_offset)
		ORDER BY w.kafka_incarnation, w.kafka_partition, w.kafka_offset`, rebuild, goldLoad)
}

// LockSilverExclusive takes the lock that keeps stream appends out of
// silver.events while a backfill overwrites it, waiting for appends in
// flight to commit: an append that read gold before the backfill's gold
// commit is then in the table the overwrite starts from, so the overwrite
// removes what it replaced; an append after the overwrite reads gold after
// that commit and no longer sees the replaced rows. Appends meanwhile keep
// their rows and try again, so the overwrite never competes with them. The
// lock lives in a session of its own: unlock releases it, and so does the
// session's end if the process dies.
func (s *Store) LockSilverExclusive(ctx context.Context) (unlock func(), err error) {
	return s.lockSilver(ctx, "pg_advisory_lock($1, 0)", "pg_advisory_unlock($1, 0)", "an overwrite")
}

// LockSilverCompaction takes the lock shared, as stream appends do, for a
// compaction of silver.events: an overwrite waits until the compaction has
// committed, and a compaction waits for an overwrite in progress, so that
// neither replaces files the other has just replaced. Appends go on. A
// second key, taken exclusively, keeps two compactions apart for the same
// reason.
func (s *Store) LockSilverCompaction(ctx context.Context) (unlock func(), err error) {
	return s.lockSilver(ctx, "pg_advisory_lock($1, 1), pg_advisory_lock_shared($1, 0)",
		"pg_advisory_unlock_shared($1, 0), pg_advisory_unlock($1, 1)", "a compaction")
}

// lockSilver takes silver's locks with the calls of take in a session of
// its own, and returns the function that releases them with release.
func (s *Store) lockSilver(ctx context.Context, take, release, what string) (unlock func(), err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock silver.events for %s: %w", what, err)
	}
	if _, err := conn.Exec(ctx, `SELECT `+take, lockClassSilver); err != nil {
		_ = conn.Conn().Close(context.Background()) // ends the session, with any lock it took
		conn.Release()
		return nil, fmt.Errorf("lock silver.events for %s: %w", what, err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `SELECT `+release, lockClassSilver); err != nil {
			_ = conn.Conn().Close(ctx) // the session's end releases it
		}
		conn.Release()
	}, nil
}

// RecordSilverSnapshot records the silver.events snapshot that holds a
// backfill load's rows.
func (s *Store) RecordSilverSnapshot(ctx context.Context, loadID, snapshotID int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE pipeline.loads SET silver_snapshot_id = $2, silver_at = clock_timestamp() WHERE load_id = $1`,
		loadID, snapshotID)
	if err != nil {
		return fmt.Errorf("record load %d in silver: %w", loadID, err)
	}
	return nil
}
