package silver

import (
	"context"
	"encoding/json"
	"strconv"
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
