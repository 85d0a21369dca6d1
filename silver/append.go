package silver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/acme/pipeline/event"
)

// Snapshot summary keys of an append: which gold loads it carries and the
// Kafka offsets they stored. They make a retried append find its own commit.
// The ledger that survives snapshot expiry stays in PostgreSQL.
const (
	PropLoads   = "pipeline.loads"   // comma-separated load ids, ascending
	PropOffsets = "pipeline.offsets" // JSON {"INCARNATION/PARTITION": [first, last]}
)

// Commit is what one append stands for.
type Commit struct {
	// LoadIDs are the gold loads (pipeline.loads) whose rows the append
	// carries. Required: they identify the append.
	LoadIDs []int64
	// Offsets are, per "incarnation/partition", the first and last offsets
	// the loads stored, for people and tools reading the history.
	Offsets Offsets
}

// Offsets maps "incarnation/partition" to the first and last offset of a
// commit's rows: the snapshot summary's pipeline.offsets.
type Offsets map[string][2]int64

// Add widens the range of one partition of one incarnation (0 is the
// first) to cover first..last.
func (o Offsets) Add(incarnation, partition int32, first, last int64) {
	k := strconv.Itoa(int(max(incarnation, 1))) + "/" + strconv.Itoa(int(partition))
	if cur, ok := o[k]; ok {
		first, last = min(cur[0], first), max(cur[1], last)
	}
	o[k] = [2]int64{first, last}
}

// key is the commit's identity in snapshot summaries.
func (c Commit) key() string {
	ids := slices.Clone(c.LoadIDs)
	slices.Sort(ids)
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}

// props is the snapshot summary of the commit, and its key.
func (c Commit) props() (iceberg.Properties, string, error) {
	key := c.key()
	offsets, err := json.Marshal(c.Offsets)
	if err != nil {
		return nil, key, fmt.Errorf("silver: offsets of loads %s: %w", key, err)
	}
	return iceberg.Properties{PropLoads: key, PropOffsets: string(offsets)}, key, nil
}

// AppendResult says which snapshot holds the commit's rows, and whether
// this call appended them or found them committed by an earlier attempt.
type AppendResult struct {
	SnapshotID int64
	Appended   bool
	Attempts   int
}

// maxAttempts bounds the reloads after a race the library's own retries
// (commit.retry.*) did not absorb.
const maxAttempts = 10

// Append appends rows as one snapshot carrying c, unless the table's
// history holds a snapshot of the same loads already (an attempt that
// committed and then failed before it could say so): then it appends
// nothing and returns that snapshot.
func (c *Catalog) Append(ctx context.Context, rows []event.Row, commit Commit) (AppendResult, error) {
	if len(commit.LoadIDs) == 0 {
		return AppendResult{}, fmt.Errorf("silver: an append needs the load ids it carries")
	}
	props, key, err := commit.props()
	if err != nil {
		return AppendResult{}, err
	}
	// The rows in Arrow, built once for every attempt.
	rec := toArrow(rows)
	data := array.NewTableFromRecords(arrowSchema(), []arrow.RecordBatch{rec})
	rec.Release()
	defer data.Release()
	res, err := c.commit(ctx, key, func(tx *table.Transaction) (bool, error) {
		if len(rows) == 0 {
			return false, nil
		}
		return true, tx.AppendTable(ctx, data, int64(len(rows)), props)
	})
	if err != nil {
		return res, fmt.Errorf("silver: append loads %s (%d rows): %w", key, len(rows), err)
	}
	return res, nil
}

// commit runs write on a transaction of the freshly loaded table and
// commits it, unless the table's history already holds the snapshot of key
// (an attempt that committed, then failed before it could say so). A lost
// race (isConflict) or a concurrent write that the table's serializable
// isolation rejects (table.ErrConflictingDataFiles) starts again from the
// new snapshot. write returns false to commit nothing.
func (c *Catalog) commit(ctx context.Context, key string, write func(*table.Transaction) (bool, error)) (AppendResult, error) {
	var res AppendResult
	for res.Attempts < maxAttempts {
		res.Attempts++
		tbl, err := c.Load(ctx)
		if err != nil {
			return res, err
		}
		if id, ok := findCommit(tbl, key); ok {
			res.SnapshotID = id
			return res, nil
		}
		tx := tbl.NewTransaction()
		do, err := write(tx)
		if !do && err == nil {
			return res, nil
		}
		if err == nil {
			tbl, err = tx.Commit(ctx)
		}
		if isConflict(err) || errors.Is(err, table.ErrConflictingDataFiles) {
			continue
		}
		if err != nil {
			return res, err
		}
		res.SnapshotID, res.Appended = tbl.CurrentSnapshot().SnapshotID, true
		c.publish(ctx, tbl)
		return res, nil
	}
	return res, fmt.Errorf("still losing commit races after %d attempts", res.Attempts)
}

// findCommit walks main's history, newest first, for the snapshot of key.
// Only retained snapshots are visible: expiry must keep more history than
// any retry takes.
func findCommit(tbl *table.Table, key string) (int64, bool) {
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return 0, false
	}
	for _, s := range table.AncestorsOf(cur.SnapshotID, tbl.Metadata().SnapshotByID) {
		if s.Summary != nil && s.Summary.Properties[PropLoads] == key {
			return s.SnapshotID, true
		}
	}
	return 0, false
}

// Committed returns, for each of loadIDs that a retained snapshot of the
// table carries, that snapshot: loads an earlier writer appended and then
// crashed before it could record them. Loads found here must not be
// appended again.
func (c *Catalog) Committed(ctx context.Context, loadIDs []int64) (map[int64]int64, error) {
	out := map[int64]int64{}
	if len(loadIDs) == 0 {
		return out, nil
	}
	tbl, err := c.Load(ctx)
	if err != nil {
		return nil, err
	}
	want := make(map[int64]bool, len(loadIDs))
	for _, id := range loadIDs {
		want[id] = true
	}
	cur := tbl.CurrentSnapshot()
	if cur == nil {
		return out, nil
	}
	for _, s := range table.AncestorsOf(cur.SnapshotID, tbl.Metadata().SnapshotByID) {
		if s.Summary == nil {
			continue
		}
		for _, f := range strings.Split(s.Summary.Properties[PropLoads], ",") {
			id, err := strconv.ParseInt(f, 10, 64)
			if err == nil && want[id] {
				out[id] = s.SnapshotID
				delete(want, id)
			}
		}
		if len(want) == 0 {
			break
		}
	}
	return out, nil
}
