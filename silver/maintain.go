package silver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/compaction"
)

// Maintenance of silver.events: compaction of small files into large ones,
// manifests rewritten, old snapshots expired, orphan files deleted. The
// stream appends a few seconds of rows per snapshot, so an hour of events
// arrives as hundreds of small files; readers want few large ones, and the
// metadata wants few snapshots. Every operation here is one commit (or
// none) that readers see whole: a reader of any retained snapshot reads
// each event once.
//
// Compaction and a backfill's overwrite must not interleave: the overwrite
// deletes files by filter, and a rewrite that replaced them meanwhile (or
// one replayed onto a snapshot where they are gone) would bring replaced
// rows back. Callers therefore hold warehouse.LockSilverCompaction across
// Compact, which the overwrite's exclusive lock waits for (and so does
// another compaction); stream appends go on.

// Defaults of CompactOptions and ExpireOptions.
const (
	// DefaultTargetFileBytes is the size compaction writes towards: the
	// table's write.target-file-size-bytes.
	DefaultTargetFileBytes = 128 << 20
	// DefaultCommitBytes bounds the input of one compaction commit, so that
	// a commit (and the lock that holds overwrites back) lasts seconds.
	DefaultCommitBytes = 512 << 20
	// DefaultMinInputFiles is how many small files of one hour justify a
	// rewrite.
	DefaultMinInputFiles = 5
	// DefaultRetention is the time-travel window: snapshots younger than
	// this are kept, and so are the files they reference.
	DefaultRetention = time.Hour
	// DefaultRetainLast keeps this many snapshots however old.
	DefaultRetainLast = 20
	// DefaultOrphanAge is how old an unreferenced file must be before it is
	// deleted: longer than any write in progress takes.
	DefaultOrphanAge = 24 * time.Hour
)

// PropOperation marks the snapshots maintenance commits, next to the
// stream's PropLoads.
const PropOperation = "pipeline.maintenance"

// CompactOptions bound one compaction commit.
type CompactOptions struct {
	// Before: only hours that end at or before it are rewritten; later
	// hours still take late appends. Required.
	Before time.Time
	// TargetFileBytes is the size of the files written. Files under 3/4
	// of it are candidates. Default DefaultTargetFileBytes.
	TargetFileBytes int64
	// CommitBytes bounds the input of the commit. Default DefaultCommitBytes.
	CommitBytes int64
	// MinInputFiles is the fewest candidates of one hour worth a rewrite.
	// Default DefaultMinInputFiles.
	MinInputFiles int
}

// CompactResult is what one compaction commit did.
type CompactResult struct {
	Groups       int   `json:"groups"`        // hours rewritten (or parts of hours)
	FilesRemoved int   `json:"files_removed"` // small files replaced
	FilesAdded   int   `json:"files_added"`
	BytesBefore  int64 `json:"bytes_before"`
	BytesAfter   int64 `json:"bytes_after"`
	SnapshotID   int64 `json:"snapshot_id,omitempty"`
	// More says that candidates were left for another commit (CommitBytes).
	More bool `json:"more"`
}

// Compact rewrites the small files of closed hours into files of about
// TargetFileBytes, in one rewrite commit of at most CommitBytes of input.
// Rows are read and written in Arrow batches; memory is bounded by the
// size of the files read (each under 3/4 of TargetFileBytes), never by the
// hour's. Stream appends that commit meanwhile are kept: a rewrite replays
// onto them.
func (c *Catalog) Compact(ctx context.Context, o CompactOptions) (CompactResult, error) {
	if o.Before.IsZero() {
		return CompactResult{}, errors.New("silver: compact: CompactOptions.Before is required")
	}
	target := o.TargetFileBytes
	if target <= 0 {
		target = DefaultTargetFileBytes
	}
	commitBytes := o.CommitBytes
	if commitBytes <= 0 {
		commitBytes = DefaultCommitBytes
	}
	minFiles := o.MinInputFiles
	if minFiles <= 0 {
		minFiles = DefaultMinInputFiles
	}
	cfg := compaction.DefaultConfig()
	cfg.TargetFileSizeBytes, cfg.MinFileSizeBytes, cfg.MaxFileSizeBytes = target, target*3/4, target*9/5
	cfg.MinInputFiles = uint(minFiles)

	tbl, err := c.Load(ctx)
	if err != nil {
		return CompactResult{}, err
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return CompactResult{}, fmt.Errorf("silver: compact: plan files: %w", err)
	}
	closed := tasks[:0]
	limit := hourOrdinal(o.Before)
	for _, t := range tasks {
		if h, ok := t.File.Partition()[hourFieldID].(int32); ok && int64(h) < limit {
			closed = append(closed, t)
		}
	}
	plan, err := cfg.PlanCompaction(closed)
	if err != nil {
		return CompactResult{}, fmt.Errorf("silver: compact: %w", err)
	}
	var res CompactResult
	var groups []table.CompactionTaskGroup
	var bytes int64
	for _, g := range plan.Groups {
		if len(groups) > 0 && bytes+g.TotalSizeBytes > commitBytes {
			res.More = true
			break
		}
		groups = append(groups, table.CompactionTaskGroup{PartitionKey: g.PartitionKey, Tasks: g.Tasks, TotalSizeBytes: g.TotalSizeBytes})
		bytes += g.TotalSizeBytes
	}
	if len(groups) == 0 {
		return res, nil
	}
	tx := tbl.NewTransaction()
	rr, err := tx.RewriteDataFiles(ctx, groups, table.RewriteDataFilesOptions{
		SnapshotProps: iceberg.Properties{PropOperation: "compact"},
		GroupOptions: []table.CompactionGroupOption{
			table.WithCompactionTargetFileSize(target),
			table.WithCompactionScanConcurrency(1),
			table.WithCompactionArrowBatchSize(batchRows),
			table.WithCompactionRecordBatchBufferSize(4),
		},
	})
	if err != nil {
		return res, fmt.Errorf("silver: compact %d groups (%d bytes): %w", len(groups), bytes, err)
	}
	committed, err := tx.Commit(ctx)
	if err != nil {
		// The files written stay behind as orphans (DeleteOrphans).
		return res, fmt.Errorf("silver: commit the compaction of %d groups: %w", len(groups), err)
	}
	res.Groups, res.FilesRemoved, res.FilesAdded = rr.RewrittenGroups, rr.RemovedDataFiles, rr.AddedDataFiles
	res.BytesBefore, res.BytesAfter = rr.BytesBefore, rr.BytesAfter
	res.SnapshotID = committed.CurrentSnapshot().SnapshotID
	c.publish(ctx, committed)
	return res, nil
}

// hourFieldID is the partition field of Spec: hours since the epoch.
const hourFieldID = 1000

// hourOrdinal is the hour partition value of t's hour.
func hourOrdinal(t time.Time) int64 { return t.Unix() / 3600 }

// RewriteManifests rewrites the current snapshot's manifests into as few
// as their size allows, when there are more than maxManifests. It reports
// the manifests before and after.
func (c *Catalog) RewriteManifests(ctx context.Context, maxManifests int) (before, after int, err error) {
	_, err = c.retryMeta(ctx, "rewrite manifests", func(tbl *table.Table) (*table.Transaction, error) {
		snap := tbl.CurrentSnapshot()
		if snap == nil {
			return nil, nil
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return nil, err
		}
		ms, err := snap.Manifests(fs)
		if err != nil {
			return nil, err
		}
		before, after = len(ms), len(ms)
		if len(ms) <= maxManifests {
			return nil, nil
		}
		tx := tbl.NewTransaction()
		r, err := tx.RewriteManifests(ctx)
		if err != nil || r.IsNoOp() {
			return nil, err
		}
		after = before - len(r.RewrittenManifests) + len(r.AddedManifests)
		return tx, nil
	})
	return before, after, err
}

// ExpireOptions say which snapshots to keep.
type ExpireOptions struct {
	// Keep is the time-travel window. Default DefaultRetention.
	Keep time.Duration
	// Since, when set, also keeps every snapshot from Since on: the time
	// the oldest load not yet recorded as in silver committed to gold. Its
	// snapshot, if an append made one before its writer died, is how the
	// next writer finds it (Committed), so it must outlive the wait.
	Since time.Time
	// RetainLast keeps this many snapshots however old. Default
	// DefaultRetainLast.
	RetainLast int
}

// ExpireResult counts the snapshots before and after.
type ExpireResult struct {
	Before int `json:"before"`
	After  int `json:"after"`
	// KeptFrom is the age limit applied.
	KeptFrom time.Time `json:"kept_from"`
}

// ExpireSnapshots removes the snapshots older than the window, and deletes
// the files only they referenced (the small files compaction replaced, the
// files a backfill overwrote).
func (c *Catalog) ExpireSnapshots(ctx context.Context, o ExpireOptions) (ExpireResult, error) {
	keep := o.Keep
	if keep <= 0 {
		keep = DefaultRetention
	}
	if !o.Since.IsZero() {
		keep = max(keep, time.Since(o.Since)+time.Minute)
	}
	retain := o.RetainLast
	if retain <= 0 {
		retain = DefaultRetainLast
	}
	res := ExpireResult{KeptFrom: time.Now().Add(-keep).UTC().Truncate(time.Second)}
	tbl, err := c.retryMeta(ctx, "expire snapshots", func(tbl *table.Table) (*table.Transaction, error) {
		res.Before = len(tbl.Metadata().Snapshots())
		tx := tbl.NewTransaction()
		if err := tx.ExpireSnapshots(table.WithOlderThan(keep), table.WithRetainLast(retain)); err != nil {
			return nil, err
		}
		return tx, nil
	})
	if err != nil {
		return res, err
	}
	res.After = len(tbl.Metadata().Snapshots())
	return res, nil
}

// DeleteOrphans deletes the files under the table's data/ and metadata/
// that no retained snapshot or metadata file references and that are older
// than olderThan: files of commits that failed or whose writer died. The
// hour files the pipeline wrote before silver was an Iceberg table
// (silver/events/dt=…) are not under either prefix and stay.
func (c *Catalog) DeleteOrphans(ctx context.Context, olderThan time.Duration) (files int, bytes int64, err error) {
	if olderThan <= 0 {
		olderThan = DefaultOrphanAge
	}
	tbl, err := c.Load(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, dir := range []string{"data", "metadata"} {
		r, err := tbl.DeleteOrphanFiles(ctx, table.WithLocation(c.Location()+"/"+dir),
			table.WithFilesOlderThan(olderThan), table.WithCleanupMaxConcurrency(4))
		if err != nil {
			return files, bytes, fmt.Errorf("silver: delete orphan files under %s/%s: %w", c.Location(), dir, err)
		}
		files += len(r.DeletedFiles)
		bytes += r.TotalSizeBytes
	}
	return files, bytes, nil
}

// retryMeta commits a metadata-only change (made by change on the freshly
// loaded table; a nil transaction commits nothing), starting again from
// the new snapshot when a stream append wins the race. It returns the table
// as the change left it.
func (c *Catalog) retryMeta(ctx context.Context, what string, change func(*table.Table) (*table.Transaction, error)) (*table.Table, error) {
	for attempt := 1; ; attempt++ {
		tbl, err := c.Load(ctx)
		if err != nil {
			return nil, err
		}
		tx, err := change(tbl)
		if err == nil && tx != nil {
			if tbl, err = tx.Commit(ctx); err == nil {
				c.publish(ctx, tbl)
			}
		}
		switch {
		case err == nil:
			return tbl, nil
		case isConflict(err) && attempt < maxAttempts:
			continue
		}
		return nil, fmt.Errorf("silver: %s: %w", what, err)
	}
}
