package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SilverTable is silver.events as pipeline.silver_table summarizes it
// after the pipeline's latest commit (migration 014), with the loads of
// gold not yet in it (pipeline.loads.silver_pending).
type SilverTable struct {
	// MetadataLocation is the current metadata file: where an engine
	// without the catalog starts reading.
	MetadataLocation string    `json:"metadata_location"`
	SnapshotID       int64     `json:"snapshot_id,omitempty"`
	Operation        string    `json:"operation,omitempty"` // of the current snapshot: append, overwrite, replace
	CommittedAt      time.Time `json:"committed_at,omitzero"`
	// Snapshots are retained since OldestSnapshot: the time-travel window.
	Snapshots      int       `json:"snapshots"`
	OldestSnapshot time.Time `json:"oldest_snapshot,omitzero"`
	Files          int64     `json:"files"`
	Rows           int64     `json:"rows"`
	Bytes          int64     `json:"bytes"`
	// LastAppend* describe the newest snapshot that carries gold loads
	// (a stream append or a backfill's overwrite), with the Kafka offsets
	// those loads stored, "INCARNATION/PARTITION": [first, last].
	LastAppendSnapshot int64               `json:"last_append_snapshot,omitempty"`
	LastAppendAt       time.Time           `json:"last_append_at,omitzero"`
	LastAppendLoads    string              `json:"last_append_loads,omitempty"`
	LastAppendOffsets  map[string][2]int64 `json:"last_append_offsets,omitempty"`
	SilverPending
}

// SilverPending are the gold loads whose rows silver.events does not hold
// yet (PendingRows rows), the oldest since PendingSince: the stream appends
// them within seconds, or sweeps them after a crash.
type SilverPending struct {
	PendingLoads int64     `json:"pending_loads"`
	PendingRows  int64     `json:"pending_rows"`
	PendingSince time.Time `json:"pending_since,omitzero"`
}

// SilverPending reads the loads pending for silver.events (through the
// partial index loads_silver_pending_idx).
func (s *Store) SilverPending(ctx context.Context) (SilverPending, error) {
	var p SilverPending
	var since *time.Time
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(rows_inserted), 0)::bigint, min(started_at)
		FROM pipeline.loads WHERE silver_pending`).Scan(&p.PendingLoads, &p.PendingRows, &since)
	if err != nil {
		return p, fmt.Errorf("loads pending for silver.events: %w", err)
	}
	p.PendingSince = deref(since)
	return p, nil
}

// MeanFileBytes is the live files' mean size.
func (t SilverTable) MeanFileBytes() int64 {
	if t.Files == 0 {
		return 0
	}
	return t.Bytes / t.Files
}

// SilverTableStatus reads silver.events' summary and its pending loads. ok
// is false when no commit has published one yet (the table was provisioned
// by an older version, or never).
func (s *Store) SilverTableStatus(ctx context.Context) (t SilverTable, ok bool, err error) {
	var snap, lastSnap *int64
	var op, lastLoads *string
	var committed, oldest, lastAt *time.Time
	var offsets []byte
	err = s.pool.QueryRow(ctx, `SELECT metadata_location, snapshot_id, operation, committed_at, snapshots, oldest_snapshot_at,
			data_files, records, bytes, last_append_snapshot, last_append_at, last_append_loads, last_append_offsets
		FROM pipeline.silver_table WHERE table_ident = 'silver.events'`).Scan(&t.MetadataLocation, &snap, &op, &committed,
		&t.Snapshots, &oldest, &t.Files, &t.Rows, &t.Bytes, &lastSnap, &lastAt, &lastLoads, &offsets)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return t, false, fmt.Errorf("silver.events summary: %w", err)
	default:
		ok = true
		t.SnapshotID, t.Operation, t.LastAppendSnapshot, t.LastAppendLoads = deref(snap), deref(op), deref(lastSnap), deref(lastLoads)
		t.CommittedAt, t.OldestSnapshot, t.LastAppendAt = deref(committed), deref(oldest), deref(lastAt)
		if len(offsets) > 0 {
			if err := json.Unmarshal(offsets, &t.LastAppendOffsets); err != nil {
				return t, ok, fmt.Errorf("silver.events summary: offsets %s: %w", offsets, err)
			}
		}
	}
	t.SilverPending, err = s.SilverPending(ctx)
	return t, ok, err
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
