package silver

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
)

// Stats describe silver.events from its metadata alone (no data file is
// read): what `pipeline status` and /status show.
type Stats struct {
	// MetadataLocation is the current metadata file, where an engine
	// without the catalog starts (DuckDB's iceberg_scan, icebird).
	MetadataLocation string `json:"metadata_location"`
	// Snapshots counts the retained snapshots; OldestSnapshot is the
	// oldest one's time: the time-travel window.
	Snapshots      int       `json:"snapshots"`
	OldestSnapshot time.Time `json:"oldest_snapshot,omitzero"`
	// SnapshotID, Operation and At describe the current snapshot.
	SnapshotID int64     `json:"snapshot_id,omitempty"`
	Operation  string    `json:"operation,omitempty"`
	At         time.Time `json:"at,omitzero"`
	// Files, Rows and Bytes are the live data files' totals (the current
	// snapshot's summary).
	Files int64 `json:"files"`
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// LastAppend is the newest snapshot that carries gold loads: its time,
	// loads and the Kafka offsets they stored.
	LastAppend *AppendInfo `json:"last_append,omitempty"`
}

// AppendInfo is what a snapshot of the stream's or a backfill's says of
// itself.
type AppendInfo struct {
	SnapshotID int64     `json:"snapshot_id"`
	At         time.Time `json:"at"`
	Operation  string    `json:"operation"`
	Loads      string    `json:"loads"`
	Offsets    Offsets   `json:"offsets,omitempty"`
}

// MeanFileBytes is the live files' mean size.
func (s Stats) MeanFileBytes() int64 {
	if s.Files == 0 {
		return 0
	}
	return s.Bytes / s.Files
}

// Stats loads the table's metadata and summarizes it.
func (c *Catalog) Stats(ctx context.Context) (Stats, error) {
	tbl, err := c.Load(ctx)
	if err != nil {
		return Stats{}, err
	}
	return statsOf(tbl), nil
}

func statsOf(tbl *table.Table) Stats {
	meta := tbl.Metadata()
	st := Stats{MetadataLocation: tbl.MetadataLocation(), Snapshots: len(meta.Snapshots())}
	for _, s := range meta.Snapshots() {
		if at := time.UnixMilli(s.TimestampMs).UTC(); st.OldestSnapshot.IsZero() || at.Before(st.OldestSnapshot) {
			st.OldestSnapshot = at
		}
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return st
	}
	st.SnapshotID, st.At = cur.SnapshotID, time.UnixMilli(cur.TimestampMs).UTC()
	if cur.Summary != nil {
		p := cur.Summary.Properties
		st.Operation = string(cur.Summary.Operation)
		st.Files, _ = strconv.ParseInt(p["total-data-files"], 10, 64)
		st.Rows, _ = strconv.ParseInt(p["total-records"], 10, 64)
		st.Bytes, _ = strconv.ParseInt(p["total-files-size"], 10, 64)
	}
	for _, s := range table.AncestorsOf(cur.SnapshotID, meta.SnapshotByID) {
		if s.Summary == nil || s.Summary.Properties[PropLoads] == "" {
			continue
		}
		a := &AppendInfo{SnapshotID: s.SnapshotID, At: time.UnixMilli(s.TimestampMs).UTC(),
			Operation: string(s.Summary.Operation), Loads: s.Summary.Properties[PropLoads]}
		_ = json.Unmarshal([]byte(s.Summary.Properties[PropOffsets]), &a.Offsets)
		st.LastAppend = a
		break
	}
	return st
}

// publish records tbl's summary in pipeline.silver_table (migration 014),
// where status reads it without S3 credentials. It runs after each commit
// and is best effort: the commit stands whatever happens here, a failure is
// logged, and the next commit's summary replaces a missed one.
func (c *Catalog) publish(ctx context.Context, tbl *table.Table) {
	st := statsOf(tbl)
	var lastSnap, lastLoads, lastOffsets any
	var lastAt any
	if a := st.LastAppend; a != nil {
		off, _ := json.Marshal(a.Offsets)
		lastSnap, lastAt, lastLoads, lastOffsets = a.SnapshotID, a.At, a.Loads, string(off)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	// Writers publish concurrently: the metadata file's version orders them.
	_, err := c.db.ExecContext(ctx, `INSERT INTO pipeline.silver_table AS t (table_ident, metadata_location, metadata_version, snapshot_id, operation,
			committed_at, snapshots, oldest_snapshot_at, data_files, records, bytes,
			last_append_snapshot, last_append_at, last_append_loads, last_append_offsets)
		VALUES ($1, $2, $15, NULLIF($3::bigint, 0), NULLIF($4::text, ''), $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
		ON CONFLICT (table_ident) DO UPDATE SET metadata_location = excluded.metadata_location,
			metadata_version = excluded.metadata_version, snapshot_id = excluded.snapshot_id,
			operation = excluded.operation, committed_at = excluded.committed_at, snapshots = excluded.snapshots,
			oldest_snapshot_at = excluded.oldest_snapshot_at, data_files = excluded.data_files, records = excluded.records,
			bytes = excluded.bytes, last_append_snapshot = excluded.last_append_snapshot, last_append_at = excluded.last_append_at,
			last_append_loads = excluded.last_append_loads, last_append_offsets = excluded.last_append_offsets,
			updated_at = clock_timestamp()
		WHERE excluded.metadata_version > t.metadata_version`,
		Namespace+"."+TableName, st.MetadataLocation, st.SnapshotID, st.Operation, nullTime(st.At), st.Snapshots, nullTime(st.OldestSnapshot),
		st.Files, st.Rows, st.Bytes, lastSnap, lastAt, lastLoads, lastOffsets, metadataVersion(st.MetadataLocation))
	if err != nil {
		c.cfg.Log.Warn("silver.events committed, but its summary for status was not recorded (pipeline.silver_table); the next commit records it",
			"snapshot_id", st.SnapshotID, "metadata", st.MetadataLocation, "error", err)
	}
}

// metadataVersion is the NNNNN of a metadata file .../NNNNN-uuid.metadata.json,
// which every commit increments.
func metadataVersion(loc string) int64 {
	name := loc[strings.LastIndex(loc, "/")+1:]
	v, _ := strconv.ParseInt(name[:max(strings.Index(name, "-"), 0)], 10, 64)
	return v
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
