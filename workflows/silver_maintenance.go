package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/silver"
)

// The maintenance of silver.events, run by two schedules that Provision
// creates: every SilverMaintenanceEvery, compaction, manifests and
// snapshot expiry; daily, orphan files (which lists the table's prefix, so
// it runs rarely).
const (
	SilverMaintenanceScheduleID = "silver-maintenance"
	SilverMaintenanceEvery      = 15 * time.Minute
	SilverOrphansScheduleID     = "silver-orphans"
	// SilverOrphansHour is the hour (UTC) of the daily orphan cleanup.
	SilverOrphansHour = 4
	// silverCatchupWindow: a missed run is replaced by the next.
	silverCatchupWindow = 5 * time.Minute
)

// SilverMaintenanceInput configures a run. Every field is optional; zero
// values take the defaults of the activities (silver/maintain.go).
// Durations are JSON integers in nanoseconds.
type SilverMaintenanceInput struct {
	// Orphans runs the orphan cleanup alone (the daily schedule's run).
	Orphans bool `json:"orphans,omitempty"`
	// Lateness keeps the last hours out of compaction while late events
	// may still reach them. Default the stream's allowed lateness, 10m.
	Lateness time.Duration `json:"lateness,omitempty"`
	// TargetFileBytes is the size of compacted files. Default 128 MiB.
	TargetFileBytes int64 `json:"target_file_bytes,omitempty"`
	// Retention is the time-travel window: snapshots younger are kept.
	// Default 1h.
	Retention time.Duration `json:"retention,omitempty"`
	// RetainLast keeps this many snapshots however old. Default 20.
	RetainLast int `json:"retain_last,omitempty"`
	// OrphanAge: unreferenced files older than this are deleted. Default 24h.
	OrphanAge time.Duration `json:"orphan_age,omitempty"`
}

// SilverMaintenanceResult says what the run did.
type SilverMaintenanceResult struct {
	Compaction *activities.CompactSilverResult          `json:"compaction,omitempty"`
	Manifests  *activities.RewriteSilverManifestsResult `json:"manifests,omitempty"`
	Expiry     *silver.ExpireResult                     `json:"expiry,omitempty"`
	Orphans    *activities.DeleteSilverOrphansResult    `json:"orphans,omitempty"`
}

// SilverMaintenance compacts the closed hours of silver.events, rewrites
// its manifests and expires its old snapshots, one activity each; with
// Orphans set it deletes orphan files instead. Each step is one commit (or
// a few bounded ones) that readers see whole; a failed step fails the run,
// whose history shows the step and its retries, and the next run starts
// over from the table as it is.
func SilverMaintenance(ctx workflow.Context, in SilverMaintenanceInput) (SilverMaintenanceResult, error) {
	var res SilverMaintenanceResult
	var m *activities.SilverMaintainer
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		// The activities heartbeat every 10 s: a killed worker's step is
		// retried elsewhere within a minute (its session's locks die with it).
		HeartbeatTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: time.Minute, MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrTypeInvalidInput}},
	})
	if in.Orphans {
		var o activities.DeleteSilverOrphansResult
		if err := workflow.ExecuteActivity(ctx, m.DeleteSilverOrphans, activities.DeleteSilverOrphansInput{OlderThan: in.OrphanAge}).Get(ctx, &o); err != nil {
			return res, fmt.Errorf("delete orphan files of silver.events: %w", err)
		}
		res.Orphans = &o
		return res, nil
	}
	var c activities.CompactSilverResult
	err := workflow.ExecuteActivity(ctx, m.CompactSilver, activities.CompactSilverInput{
		Now: workflow.Now(ctx), Lateness: in.Lateness, TargetFileBytes: in.TargetFileBytes}).Get(ctx, &c)
	if err != nil {
		return res, fmt.Errorf("compact silver.events: %w", err)
	}
	res.Compaction = &c
	var mf activities.RewriteSilverManifestsResult
	if err := workflow.ExecuteActivity(ctx, m.RewriteSilverManifests, activities.RewriteSilverManifestsInput{}).Get(ctx, &mf); err != nil {
		return res, fmt.Errorf("rewrite the manifests of silver.events: %w", err)
	}
	res.Manifests = &mf
	var ex silver.ExpireResult
	err = workflow.ExecuteActivity(ctx, m.ExpireSilverSnapshots, activities.ExpireSilverSnapshotsInput{
		Retention: in.Retention, RetainLast: in.RetainLast}).Get(ctx, &ex)
	if err != nil {
		return res, fmt.Errorf("expire the snapshots of silver.events: %w", err)
	}
	res.Expiry = &ex
	return res, nil
}
