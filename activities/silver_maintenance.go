package activities

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/temporal"

	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// SilverMaintainer holds the activities of the SilverMaintenance workflow:
// compaction, manifests, snapshot expiry and orphan files of silver.events
// (silver/maintain.go says what each does and why).
type SilverMaintainer struct {
	cat *silver.Catalog
	wh  silverLocks
	log *slog.Logger
	m   maintenanceMetrics
}

// silverLocks is what maintenance needs of the warehouse: the lock that
// keeps compactions and backfill overwrites apart, and the oldest load not
// yet in silver, whose snapshot expiry must keep.
type silverLocks interface {
	LockSilverCompaction(ctx context.Context) (unlock func(), err error)
	SilverPending(ctx context.Context) (warehouse.SilverPending, error)
}

// SilverMaintainerConfig holds what a SilverMaintainer needs. Both are
// required.
type SilverMaintainerConfig struct {
	// Silver is the catalog of silver.events; the table must exist
	// (provisioning creates it).
	Silver silver.Config
	Store  *warehouse.Store
	Log    *slog.Logger
}

// maintenanceBeat is how often a maintenance activity heartbeats while it
// works, so that a worker's death shows within the workflow's heartbeat
// timeout (1 min) and another worker takes the step over.
const maintenanceBeat = 10 * time.Second

// NewSilverMaintainer opens the catalog. Close releases it.
func NewSilverMaintainer(cfg SilverMaintainerConfig) (*SilverMaintainer, error) {
	if cfg.Store == nil {
		return nil, errors.New("silver maintainer: Store is required")
	}
	cfg.Silver.CreateCatalogTables = false // provisioning's
	cat, err := silver.Open(cfg.Silver)
	if err != nil {
		return nil, err
	}
	m, err := newMaintenanceMetrics()
	if err != nil {
		cat.Close()
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	return &SilverMaintainer{cat: cat, wh: cfg.Store, log: log.With("component", "silver-maintenance"), m: m}, nil
}

// Close closes the catalog.
func (s *SilverMaintainer) Close() error { return s.cat.Close() }

// CompactSilverInput bounds one compaction activity. Zero fields take the
// defaults of silver.CompactOptions.
type CompactSilverInput struct {
	// Now is the workflow's clock. Hours that ended more than Lateness
	// before it are compacted; the others still take late appends.
	Now      time.Time     `json:"now"`
	Lateness time.Duration `json:"lateness,omitempty"`
	// TargetFileBytes, CommitBytes and MinInputFiles: silver.CompactOptions.
	TargetFileBytes int64 `json:"target_file_bytes,omitempty"`
	CommitBytes     int64 `json:"commit_bytes,omitempty"`
	MinInputFiles   int   `json:"min_input_files,omitempty"`
	// MaxCommits bounds the commits of one activity; the next run goes on.
	// Default 20.
	MaxCommits int `json:"max_commits,omitempty"`
}

// CompactSilverResult sums the activity's commits.
type CompactSilverResult struct {
	Before    time.Time              `json:"before"` // hours before it were candidates
	Commits   []silver.CompactResult `json:"commits"`
	Removed   int                    `json:"files_removed"`
	Added     int                    `json:"files_added"`
	BytesRead int64                  `json:"bytes_read"`
	More      bool                   `json:"more"` // candidates left for the next run
}

// CompactSilver rewrites the closed hours' small files, one bounded commit
// at a time, each under the shared silver lock so that no backfill
// overwrite interleaves; it heartbeats after each commit.
func (s *SilverMaintainer) CompactSilver(ctx context.Context, in CompactSilverInput) (CompactSilverResult, error) {
	if in.Now.IsZero() {
		return CompactSilverResult{}, temporal.NewNonRetryableApplicationError("CompactSilver: now is required", ErrTypeInvalidInput, nil)
	}
	lateness := in.Lateness
	if lateness <= 0 {
		lateness = DefaultAllowedLateness
	}
	maxCommits := in.MaxCommits
	if maxCommits <= 0 {
		maxCommits = 20
	}
	res := CompactSilverResult{Before: in.Now.Add(-lateness).UTC().Truncate(time.Hour), Commits: []silver.CompactResult{}}
	log := s.activityLog(ctx)
	hb := newHeartbeater(ctx, maintenanceBeat)
	defer hb.stop()
	for range maxCommits {
		c, err := s.compactOnce(ctx, res.Before, in)
		if err != nil {
			return res, err
		}
		if c.Groups == 0 {
			break
		}
		res.Commits = append(res.Commits, c)
		res.Removed += c.FilesRemoved
		res.Added += c.FilesAdded
		res.BytesRead += c.BytesBefore
		res.More = c.More
		log.Info("silver.events compacted", "snapshot_id", c.SnapshotID, "hours", c.Groups, "files_removed", c.FilesRemoved,
			"files_added", c.FilesAdded, "bytes_before", c.BytesBefore, "bytes_after", c.BytesAfter, "before", res.Before)
		hb.set(res)
		if !c.More {
			break
		}
	}
	return res, nil
}

// compactOnce is one commit, under the lock.
func (s *SilverMaintainer) compactOnce(ctx context.Context, before time.Time, in CompactSilverInput) (c silver.CompactResult, err error) {
	ctx, span := tracer.Start(ctx, "silver.compact", trace.WithAttributes(attribute.String("pipeline.before", before.Format(time.RFC3339))))
	defer func() { endSpan(span, err) }()
	unlock, err := s.wh.LockSilverCompaction(ctx)
	if err != nil {
		return c, err
	}
	defer unlock()
	c, err = s.cat.Compact(ctx, silver.CompactOptions{Before: before, TargetFileBytes: in.TargetFileBytes,
		CommitBytes: in.CommitBytes, MinInputFiles: in.MinInputFiles})
	if err != nil {
		return c, err
	}
	span.SetAttributes(attribute.Int("pipeline.silver.files_removed", c.FilesRemoved), attribute.Int("pipeline.silver.files_added", c.FilesAdded),
		attribute.Int64("pipeline.silver.snapshot_id", c.SnapshotID))
	s.m.files.Add(ctx, int64(c.FilesRemoved), metric.WithAttributes(attribute.String("op", "compacted")))
	return c, nil
}

// RewriteSilverManifestsInput: manifests are rewritten when the current
// snapshot has more than Max. Default 8.
type RewriteSilverManifestsInput struct {
	Max int `json:"max,omitempty"`
}

// RewriteSilverManifestsResult counts the manifests before and after.
type RewriteSilverManifestsResult struct {
	Before int `json:"before"`
	After  int `json:"after"`
}

// RewriteSilverManifests rewrites the current snapshot's manifests into as
// few as their size allows: scan planning reads fewer files.
func (s *SilverMaintainer) RewriteSilverManifests(ctx context.Context, in RewriteSilverManifestsInput) (r RewriteSilverManifestsResult, err error) {
	ctx, span := tracer.Start(ctx, "silver.rewrite_manifests")
	defer func() { endSpan(span, err) }()
	defer newHeartbeater(ctx, maintenanceBeat).stop()
	limit := in.Max
	if limit <= 0 {
		limit = 8
	}
	if r.Before, r.After, err = s.cat.RewriteManifests(ctx, limit); err != nil {
		return r, err
	}
	if r.After != r.Before {
		s.activityLog(ctx).Info("silver.events manifests rewritten", "before", r.Before, "after", r.After)
	}
	return r, nil
}

// ExpireSilverSnapshotsInput is the time-travel window. Zero fields take
// silver.ExpireOptions' defaults.
type ExpireSilverSnapshotsInput struct {
	Retention  time.Duration `json:"retention,omitempty"`
	RetainLast int           `json:"retain_last,omitempty"`
}

// ExpireSilverSnapshots expires the snapshots older than the window, and
// deletes the files only they referenced. Snapshots since the oldest load
// still pending for silver are kept whatever their age: the load's writer
// may have appended it and died, and the next writer finds that append in
// the table's history.
func (s *SilverMaintainer) ExpireSilverSnapshots(ctx context.Context, in ExpireSilverSnapshotsInput) (r silver.ExpireResult, err error) {
	ctx, span := tracer.Start(ctx, "silver.expire_snapshots")
	defer func() { endSpan(span, err) }()
	defer newHeartbeater(ctx, maintenanceBeat).stop()
	pending, err := s.wh.SilverPending(ctx)
	if err != nil {
		return r, err
	}
	since := pending.PendingSince
	if r, err = s.cat.ExpireSnapshots(ctx, silver.ExpireOptions{Keep: in.Retention, RetainLast: in.RetainLast, Since: since}); err != nil {
		return r, err
	}
	span.SetAttributes(attribute.Int("pipeline.silver.snapshots_before", r.Before), attribute.Int("pipeline.silver.snapshots_after", r.After))
	s.m.snapshots.Add(ctx, int64(r.Before-r.After))
	s.activityLog(ctx).Info("silver.events snapshots expired", "before", r.Before, "after", r.After, "kept_from", r.KeptFrom,
		"oldest_pending_load", since)
	return r, nil
}

// DeleteSilverOrphansInput: files unreferenced for longer than OlderThan
// go. Default silver.DefaultOrphanAge.
type DeleteSilverOrphansInput struct {
	OlderThan time.Duration `json:"older_than,omitempty"`
}

// DeleteSilverOrphansResult counts what was deleted.
type DeleteSilverOrphansResult struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// DeleteSilverOrphans deletes the table's files that nothing references:
// those of commits that failed, or whose writer died.
func (s *SilverMaintainer) DeleteSilverOrphans(ctx context.Context, in DeleteSilverOrphansInput) (r DeleteSilverOrphansResult, err error) {
	ctx, span := tracer.Start(ctx, "silver.delete_orphans")
	defer func() { endSpan(span, err) }()
	defer newHeartbeater(ctx, maintenanceBeat).stop()
	if r.Files, r.Bytes, err = s.cat.DeleteOrphans(ctx, in.OlderThan); err != nil {
		return r, err
	}
	s.m.files.Add(ctx, int64(r.Files), metric.WithAttributes(attribute.String("op", "orphaned")))
	s.activityLog(ctx).Info("silver.events orphan files deleted", "files", r.Files, "bytes", r.Bytes)
	return r, nil
}

// activityLog is the logger with the activity's workflow id.
func (s *SilverMaintainer) activityLog(ctx context.Context) *slog.Logger {
	return activityLogger(ctx, s.log)
}

// maintenanceMetrics (Prometheus names in parentheses):
//
//   - pipeline.silver.maintenance.files{op} (pipeline_silver_maintenance_files_total):
//     data files compaction replaced (op compacted) and orphan files deleted
//     (op orphaned).
//   - pipeline.silver.maintenance.snapshots (pipeline_silver_maintenance_snapshots_total):
//     snapshots expired.
type maintenanceMetrics struct {
	files     metric.Int64Counter
	snapshots metric.Int64Counter
}

func newMaintenanceMetrics() (maintenanceMetrics, error) {
	m := otel.Meter(instrumentationName)
	var ms maintenanceMetrics
	var err error
	if ms.files, err = m.Int64Counter("pipeline.silver.maintenance.files",
		metric.WithDescription("silver.events data files replaced by compaction (op compacted) or deleted as orphans (op orphaned)."),
		metric.WithUnit("{file}")); err != nil {
		return ms, err
	}
	ms.snapshots, err = m.Int64Counter("pipeline.silver.maintenance.snapshots",
		metric.WithDescription("silver.events snapshots expired."), metric.WithUnit("{snapshot}"))
	return ms, err
}
