package activities

import (
	"context"
	"time"
)

// The Provisioner's last steps: the marts' zone, and the inputs of the
// Lane's schedules, the stream and the SLO monitor, which starter.Ensurer
// creates or starts (starting a workflow needs the workflows package, which
// imports this one, so those activities live in starter).

// Names of the activities starter.Ensurer registers, for the Provision
// workflow, which calls them by name.
const (
	EnsureScheduleActivity   = "EnsureSchedule"
	EnsureStreamActivity     = "EnsureStream"
	EnsureSLOMonitorActivity = "EnsureSLOMonitor"
)

// StreamEnsureInput is the stream to run: Shards StreamCompaction
// workflows over Topic's partitions.
type StreamEnsureInput struct {
	Topic  string `json:"topic"`
	Shards int    `json:"shards"`
}

// StreamEnsureResult names the shards' workflows, all running.
type StreamEnsureResult struct {
	WorkflowIDs []string `json:"workflow_ids"`
}

// ScheduleInput describes a schedule of the Lane: the nightly aggregation
// (daily at Hour) or the marts refresher (every Every). All fields are
// required except Zone, and Hour when Every is set.
type ScheduleInput struct {
	ID        string `json:"id"`         // schedule id, "nightly-aggregation"
	Workflow  string `json:"workflow"`   // workflow type, "NightlyAggregation"
	TaskQueue string `json:"task_queue"` // "batch-jobs"
	Hour      int    `json:"hour"`       // hour of the day it runs, in Zone
	// Every, when set, runs the workflow at this interval instead of daily
	// at Hour.
	Every time.Duration `json:"every,omitempty"`
	// Zone is the IANA zone of Hour and of the day aggregated, passed to the
	// workflow as its "zone". Default UTC.
	Zone string `json:"zone,omitempty"`
	// CatchupWindow is how late a missed run may still start (after the
	// server was down).
	CatchupWindow time.Duration `json:"catchup_window"`
	// Args are more fields of the workflow's input, next to "zone".
	Args map[string]any `json:"args,omitempty"`
}

// ScheduleResult says whether the schedule was created, or changed to
// follow Zone, or already existed as it should.
type ScheduleResult struct {
	ID      string `json:"id"`
	Created bool   `json:"created"`
	Updated bool   `json:"updated,omitempty"`
}

// MartZoneInput is the zone to record. Zone empty keeps the recorded one.
type MartZoneInput struct {
	Zone string `json:"zone,omitempty"` // IANA name
}

// RecordMartZone records the zone the marts' days are cut in
// (pipeline.settings), for every path that builds marts (nightly,
// refresher, backfill, `pipeline aggregate`), and returns the zone in
// force, which the nightly schedule then gets. Days built in another zone
// become pending, and the refresher rebuilds them.
func (p *Provisioner) RecordMartZone(ctx context.Context, in MartZoneInput) (MartZoneResult, error) {
	zone, err := p.cfg.Store.SetMartZone(ctx, in.Zone)
	if err != nil {
		return MartZoneResult{}, martError("record the mart zone", err)
	}
	return MartZoneResult{Zone: zone}, nil
}
