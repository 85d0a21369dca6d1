package warehouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acme/pipeline/event"
)

// The silver ledger: which live loads' rows silver.events (Iceberg) holds.
// Gold's load is the stream's commit point; silver's append is a second
// commit, to another system. A load stays pending (pipeline.loads.
// silver_pending) from its own transaction until the append that carries
// its rows is recorded here, so a crash in between is found and swept.
//
// Whoever appends a load holds its pipeline.loads row locked (FOR UPDATE)
// from before it reads what to append until after the Iceberg commit: two
// shards never append one load twice, and a backfill that replaces the
// load's rows in gold waits for the append, then overwrites what it appended.

// lockClassSilver is the first key of the advisory lock that orders writes
// to silver.events: stream appends hold it shared (each in its claim's
// transaction), a backfill's overwrite exclusively (LockSilverExclusive).
const lockClassSilver int32 = 0x736c7672

// ErrSilverBusy is ClaimSilver's answer while a backfill overwrites
// silver.events: the caller keeps its rows and tries again later.
var ErrSilverBusy = errors.New("silver.events is being overwritten by a backfill")

// PendingLoad is a live load whose rows silver does not hold yet.
type PendingLoad struct {
	LoadID     int64
	Topic      string
	BronzeKeys []string // the bronze objects its rows were cleaned from
	Inserted   int64    // rows it inserted into gold.events
	FinishedAt time.Time
}

// ClaimSilverInput says which pending loads to claim.
type ClaimSilverInput struct {
	// LoadIDs are loads the caller has the rows of (its own flushes);
	// claimed when still pending.
	LoadIDs []int64
	// SweepAfter also claims pending loads of any writer that finished at
	// least this long ago: loads a crashed worker left behind. 0: none.
	SweepAfter time.Duration
	// SweepLimit bounds the swept loads (their rows are rebuilt from
	// bronze, in memory). Default 8.
	SweepLimit int
	// WaitOverwrite waits for a backfill's overwrite of silver.events to
	// end instead of failing with ErrSilverBusy.
	WaitOverwrite bool
}

// SilverClaim is a set of pending loads, locked in an open transaction
// until Done or Release. It is not safe for concurrent use.
type SilverClaim struct {
	tx    pgx.Tx
	Loads []PendingLoad
}

// ClaimSilver locks the pending loads in selects, skipping those another
// writer holds. The caller must end the claim with Done or
// Release.
func (s *Store) ClaimSilver(ctx context.Context, in ClaimSilverInput) (*SilverClaim, error) {
	if in.SweepLimit <= 0 {
		in.SweepLimit = 8
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim loads for silver: %w", err)
	}
	c := &SilverClaim{tx: tx}
	// Shared with other appends; a backfill's overwrite holds it exclusively.
	lock := `SELECT pg_try_advisory_xact_lock_shared($1, 0)`
	if in.WaitOverwrite {
		lock = `SELECT true FROM pg_advisory_xact_lock_shared($1, 0)`
	}
	var ok bool
	if err := tx.QueryRow(ctx, lock, lockClassSilver).Scan(&ok); err != nil || !ok {
		_ = tx.Rollback(ctx)
		if err == nil {
			err = ErrSilverBusy
		}
		return nil, fmt.Errorf("claim loads for silver: %w", err)
	}
	sweep := in.SweepAfter > 0
	// Own loads first, then the oldest swept ones.
	rows, err := tx.Query(ctx, `SELECT load_id, coalesce(topic, ''), bronze_keys, rows_inserted, coalesce(finished_at, started_at)
		FROM pipeline.loads
		WHERE silver_pending AND (load_id = ANY($1) OR ($2 AND finished_at < clock_timestamp() - make_interval(secs => $3)))
		ORDER BY load_id = ANY($1) DESC, load_id
		LIMIT cardinality($1) + $4 FOR UPDATE SKIP LOCKED`, nonNilIDs(in.LoadIDs), sweep, in.SweepAfter.Seconds(), in.SweepLimit)
	if err == nil {
		var l PendingLoad
		_, err = pgx.ForEachRow(rows, []any{&l.LoadID, &l.Topic, &l.BronzeKeys, &l.Inserted, &l.FinishedAt}, func() error {
			c.Loads = append(c.Loads, l)
			return nil
		})
	}
	if err != nil {
		_ = tx.Rollback(ctx)
		return nil, fmt.Errorf("claim loads for silver: %w", err)
	}
	return c, nil
}

// GoldRows keeps the rows that gold.events holds as written by one of the
// claimed loads: same event id, incarnation, partition and offset. A row
// that lost its id to another record, that gold refused, or that a backfill
// has replaced since is dropped. The rows kept are grouped by load.
func (c *SilverClaim) GoldRows(ctx context.Context, rows []event.Row) (map[int64][]event.Row, error) {
	out := map[int64][]event.Row{}
	if len(rows) == 0 || len(c.Loads) == 0 {
		return out, nil
	}
	// held is, per id, the record gold keeps and the load that wrote it.
	type held struct {
		inc, part int32
		off, load int64
	}
	ids := make([][16]byte, len(rows))
	for i := range rows {
		ids[i] = rows[i].EventID
	}
	loads := make([]int64, len(c.Loads))
	for i, l := range c.Loads {
		loads[i] = l.LoadID
	}
	q, err := c.tx.Query(ctx, `SELECT event_id, kafka_incarnation, kafka_partition, kafka_offset, load_id FROM gold.events
		WHERE event_id = ANY($1::uuid[]) AND load_id = ANY($2)`, ids, loads)
	if err != nil {
		return nil, fmt.Errorf("gold rows of loads %v: %w", loads, err)
	}
	gold := make(map[[16]byte]held, len(rows))
	var id [16]byte
	var h held
	_, err = pgx.ForEachRow(q, []any{&id, &h.inc, &h.part, &h.off, &h.load}, func() error {
		gold[id] = h
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("gold rows of loads %v: %w", loads, err)
	}
	// Two passes, so that each load's slice is allocated once at its size:
	// appending rows to growing slices copied them over and over.
	load := make([]int64, len(rows)) // the load a kept row goes to; 0: dropped
	counts := map[int64]int{}
	for i := range rows {
		r := &rows[i]
		g, ok := gold[r.EventID]
		if ok && g.inc == incarnationOf(r) && g.part == r.Partition && g.off == r.Offset {
			load[i] = g.load
			counts[g.load]++
			delete(gold, r.EventID) // a row repeated in the input goes once
		}
	}
	for l, n := range counts {
		out[l] = make([]event.Row, 0, n)
	}
	for i := range rows {
		if load[i] != 0 {
			out[load[i]] = append(out[load[i]], rows[i])
		}
	}
	return out, nil
}

// Done records the claimed loads as in silver, each with the snapshot that
// appended its rows (0: none needed), and ends the claim.
func (c *SilverClaim) Done(ctx context.Context, snapshots map[int64]int64) error {
	ids := make([]int64, 0, len(c.Loads))
	snaps := make([]*int64, 0, len(c.Loads))
	for _, l := range c.Loads {
		ids = append(ids, l.LoadID)
		if s := snapshots[l.LoadID]; s != 0 {
			snaps = append(snaps, &s)
		} else {
			snaps = append(snaps, nil)
		}
	}
	_, err := c.tx.Exec(ctx, `UPDATE pipeline.loads AS l SET silver_pending = false, silver_snapshot_id = u.s, silver_at = clock_timestamp()
		FROM unnest($1::int8[], $2::int8[]) AS u(id, s) WHERE l.load_id = u.id`, ids, snaps)
	if err == nil {
		err = c.tx.Commit(ctx)
	}
	if err != nil {
		_ = c.tx.Rollback(ctx)
		return fmt.Errorf("record loads %v in silver: %w", ids, err)
	}
	return nil
}

// Release ends the claim without recording anything: the loads stay
// pending.
func (c *SilverClaim) Release(ctx context.Context) { _ = c.tx.Rollback(ctx) }

// BronzeByKeys returns the bronze objects recorded under keys, in the
// order of keys. A key with no object is an error: a load's lineage names
// only recorded objects.
func (s *Store) BronzeByKeys(ctx context.Context, keys []string) ([]BronzeObject, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, incarnation, partition, start_offset, end_offset, records, bytes, object_key, arrived_at,
			cleaned, quarantined, created_at
		FROM pipeline.bronze_objects WHERE object_key = ANY($1)`, nonNil(keys))
	if err != nil {
		return nil, fmt.Errorf("bronze objects %v: %w", keys, err)
	}
	byKey := map[string]BronzeObject{}
	var o BronzeObject
	_, err = pgx.ForEachRow(rows, []any{&o.Topic, &o.Incarnation, &o.Partition, &o.First, &o.Last, &o.Records, &o.Bytes, &o.Key,
		&o.ArrivedAt, &o.Cleaned, &o.Quarantined, &o.RecordedAt}, func() error {
		byKey[o.Key] = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("bronze objects %v: %w", keys, err)
	}
	out := make([]BronzeObject, 0, len(keys))
	for _, k := range keys {
		o, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("bronze object %s: not in pipeline.bronze_objects", k)
		}
		out = append(out, o)
	}
	return out, nil
}

func nonNilIDs(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
