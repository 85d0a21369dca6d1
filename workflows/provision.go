package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/slo"
)

// Nightly aggregation schedule created by Provision.
const (
	// NightlyScheduleID is the contract's schedule id.
	NightlyScheduleID = "nightly-aggregation"
	// NightlyHour is the hour (in the schedule's zone) the aggregation of the
	// previous day starts.
	NightlyHour = 2
	// NightlyCatchupWindow is how late a missed nightly run may still start.
	NightlyCatchupWindow = 24 * time.Hour
)

// Error types of the Provision workflow (activities/errtypes.go holds them
// all).
const (
	ErrTypeInvalidBlueprint = activities.ErrTypeInvalidBlueprint
	ErrTypePlanRefused      = activities.ErrTypePlanRefused
)

// ProvisionInput is the Provision workflow's input.
type ProvisionInput struct {
	// Blueprint is the blueprint document exactly as blueprint.json spells it
	// (Portuguese keys). Required. It is validated by the workflow, so an
	// invalid one fails the workflow at once with every problem listed.
	Blueprint json.RawMessage `json:"blueprint"`
	// DryRun computes and returns the plan and changes nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// ScheduleZone is the IANA zone of the nightly schedule and of the days
	// of the marts, recorded in the warehouse for every path that builds
	// them. Empty keeps the recorded zone (UTC the first time).
	ScheduleZone string `json:"schedule_zone,omitempty"`
	// StreamShards is how many StreamCompaction workflows split the topic's
	// partitions; 0: StreamShards' default. A change reshards the running
	// stream.
	StreamShards int `json:"stream_shards,omitempty"`
}

// ProvisionResult reports the plan and what was applied.
type ProvisionResult struct {
	// Name is the blueprint's nome.
	Name string `json:"name"`
	// Plan is the plan against the catalog at the start, and PlanText its
	// rendering for a terminal.
	Plan     blueprint.Plan `json:"plan"`
	PlanText string         `json:"plan_text"`
	DryRun   bool           `json:"dry_run"`
	// Cluster is the Kafka cluster as the plan saw it (zero in runs from
	// before conduitReplication).
	Cluster blueprint.Cluster `json:"cluster,omitzero"`
	// Applied lists the resources created or updated, in the order applied.
	Applied []activities.ResourceResult `json:"applied"`
	// Schedule is the nightly schedule: "created", "exists", "zone
	// updated" or "" (dry run); RefreshSchedule likewise for marts-refresh.
	Schedule        string `json:"schedule,omitempty"`
	RefreshSchedule string `json:"refresh_schedule,omitempty"`
	// SilverSchedules say what became of the schedules of silver.events'
	// maintenance ("silver-maintenance: created", ...).
	SilverSchedules []string `json:"silver_schedules,omitempty"`
	// MartZone is the zone the marts' days are cut in, as recorded.
	MartZone string `json:"mart_zone,omitempty"`
	// Stream names the stream's shard workflows, all running; Monitor the
	// SLO monitor's workflow and MonitorConfig its configuration ("" and
	// zero without an insight resource, or on a dry run).
	Stream        []string   `json:"stream,omitempty"`
	Monitor       string     `json:"monitor,omitempty"`
	MonitorConfig slo.Config `json:"monitor_config,omitzero"`
}

// Summary renders the outcome in one line per applied resource.
func (r ProvisionResult) Summary() string {
	var b strings.Builder
	switch {
	case r.DryRun:
		b.WriteString("Dry run: nothing changed.\n")
	case len(r.Applied) == 0:
		b.WriteString("No changes: the pipeline already matches the blueprint.\n")
	default:
		fmt.Fprintf(&b, "Applied %d resources:\n", len(r.Applied))
		for _, a := range r.Applied {
			fmt.Fprintf(&b, "  %s %s: %s\n", a.Kind, a.Name, a.Detail)
		}
	}
	if r.Schedule != "" {
		fmt.Fprintf(&b, "Schedule %s: %s.\n", NightlyScheduleID, r.Schedule)
	}
	if r.RefreshSchedule != "" {
		fmt.Fprintf(&b, "Schedule %s: %s (rebuilds the marts of days whose gold changed, every %s).\n", RefreshScheduleID, r.RefreshSchedule, RefreshEvery)
	}
	for _, s := range r.SilverSchedules {
		fmt.Fprintf(&b, "Schedule %s (silver.events maintenance).\n", s)
	}
	if r.MartZone != "" {
		fmt.Fprintf(&b, "Marts: days cut in %s.\n", r.MartZone)
	}
	if len(r.Stream) > 0 {
		fmt.Fprintf(&b, "Stream compaction running: %d shard(s) on task queue %s: %s.\n", len(r.Stream), StreamQueue, strings.Join(r.Stream, ", "))
	}
	if r.Monitor != "" {
		c := r.MonitorConfig
		fmt.Fprintf(&b, "SLO monitor running: workflow %s on task queue %s (every %s; alerts %v; measurements kept %d days).\n",
			r.Monitor, BatchQueue, c.Interval, c.Alerts, c.RetentionDays)
	}
	return b.String()
}

// Provision makes the pipeline match a blueprint: it reads the catalog of
// provisioned resources and the Kafka cluster's broker count, plans
// (blueprint.DiffCluster, deterministic, in the workflow), refuses a plan with refusals as a whole, then applies every
// created or changed resource with one activity each, in dependency order
// (datastore, archive, conduit, lane, insight, gateway, compute), and finally
// records the marts' zone, creates the nightly-aggregation and
// marts-refresh schedules if they are absent, and starts the stream's
// shards and the SLO monitor (provision_runtime.go). Each activity
// records its resource in the catalog on success, so a rerun after a failure
// plans only what is left.
func Provision(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	bp, err := blueprint.Parse(in.Blueprint, "blueprint")
	if err != nil {
		return ProvisionResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidBlueprint, err)
	}
	if in.ScheduleZone != "" {
		if _, err := time.LoadLocation(in.ScheduleZone); err != nil {
			return ProvisionResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("schedule_zone: %q is not an IANA time zone", in.ScheduleZone), activities.ErrTypeInvalidInput, err)
		}
	}
	log := workflow.GetLogger(ctx)
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{activities.ErrTypeRefused, activities.ErrTypeInvalid},
		},
	})
	var p *activities.Provisioner

	var cat activities.LoadCatalogResult
	if err := workflow.ExecuteActivity(ctx, p.LoadCatalog).Get(ctx, &cat); err != nil {
		return ProvisionResult{}, fmt.Errorf("load catalog: %w", err)
	}
	// The conduit's replication follows the cluster: the plan needs its
	// broker count.
	var cluster blueprint.Cluster
	if workflow.GetVersion(ctx, conduitReplication, workflow.DefaultVersion, 1) == 1 {
		if err := workflow.ExecuteActivity(ctx, p.DescribeCluster).Get(ctx, &cluster); err != nil {
			return ProvisionResult{}, fmt.Errorf("describe the Kafka cluster: %w", err)
		}
	}
	plan := blueprint.DiffCluster(bp, cat.Entries, cluster)
	res := ProvisionResult{Name: bp.Name, Plan: plan, PlanText: plan.String(), DryRun: in.DryRun, Cluster: cluster}
	if err := plan.Err(); err != nil {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the plan has refused changes; nothing was applied:\n%s", refusalList(plan)), ErrTypePlanRefused, err, res)
	}
	if in.DryRun {
		return res, nil
	}

	for _, ch := range plan.Changes {
		if ch.Action != blueprint.ActionCreate && ch.Action != blueprint.ActionUpdate {
			continue
		}
		fn := applyActivity(p, ch.Kind)
		if fn == nil {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s %s: no activity for kind %q", ch.Kind, ch.Name, ch.Kind), ErrTypeInvalidBlueprint, nil)
		}
		actx := workflow.WithActivityOptions(ctx, withID(ctx, fmt.Sprintf("%s/%s", ch.Kind, ch.Name)))
		log.Info("applying resource", "kind", ch.Kind, "name", ch.Name, "action", ch.Action)
		var r activities.ResourceResult
		err := workflow.ExecuteActivity(actx, fn, activities.ResourceInput{Kind: ch.Kind, Name: ch.Name, Config: ch.Desired}).Get(ctx, &r)
		if err != nil {
			return res, resourceError(ch, err, res)
		}
		res.Applied = append(res.Applied, r)
	}

	zone := in.ScheduleZone
	marts := workflow.GetVersion(ctx, martsFollowGold, workflow.DefaultVersion, 1) == 1
	if marts {
		// The zone goes into the warehouse first, so that the schedules
		// and every other path agree on it.
		var z activities.MartZoneResult
		if err := workflow.ExecuteActivity(ctx, p.RecordMartZone, activities.MartZoneInput{Zone: in.ScheduleZone}).Get(ctx, &z); err != nil {
			return res, fmt.Errorf("record the mart zone: %w", err)
		}
		zone, res.MartZone = z.Zone, z.Zone
	}
	if res.Schedule, err = ensureSchedule(ctx, activities.ScheduleInput{
		ID: NightlyScheduleID, Workflow: "NightlyAggregation", TaskQueue: BatchQueue,
		Hour: NightlyHour, Zone: zone, CatchupWindow: NightlyCatchupWindow,
	}); err != nil {
		return res, err
	}
	if marts {
		if res.RefreshSchedule, err = ensureSchedule(ctx, activities.ScheduleInput{
			ID: RefreshScheduleID, Workflow: "RefreshMarts", TaskQueue: BatchQueue,
			Every: RefreshEvery, CatchupWindow: RefreshCatchupWindow,
		}); err != nil {
			return res, err
		}
	}
	if workflow.GetVersion(ctx, silverMaintenance, workflow.DefaultVersion, 1) == 1 {
		if res.SilverSchedules, err = ensureSilverSchedules(ctx); err != nil {
			return res, err
		}
	}
	if err := ensureRuntime(ctx, bp, in, &res); err != nil {
		return res, err
	}
	return res, nil
}

// conduitReplication versions Provision's step that asks the Kafka cluster
// for its brokers, so that the plan resolves the conduit's replication.
const conduitReplication = "conduit-replication"

// silverMaintenance versions Provision's step that creates the schedules of
// silver.events' maintenance.
const silverMaintenance = "silver-maintenance"

// ensureSilverSchedules creates the schedules of SilverMaintenance: every
// SilverMaintenanceEvery, and daily for orphan files.
func ensureSilverSchedules(ctx workflow.Context) ([]string, error) {
	var out []string
	for _, in := range []activities.ScheduleInput{
		{ID: SilverMaintenanceScheduleID, Workflow: "SilverMaintenance", TaskQueue: BatchQueue,
			Every: SilverMaintenanceEvery, CatchupWindow: silverCatchupWindow},
		{ID: SilverOrphansScheduleID, Workflow: "SilverMaintenance", TaskQueue: BatchQueue,
			Hour: SilverOrphansHour, CatchupWindow: time.Hour, Args: map[string]any{"orphans": true}},
	} {
		what, err := ensureSchedule(ctx, in)
		if err != nil {
			return out, err
		}
		out = append(out, in.ID+": "+what)
	}
	return out, nil
}

// martsFollowGold versions Provision's steps that record the mart zone and
// create the marts-refresh schedule.
const martsFollowGold = "marts-follow-gold"

// ensureSchedule runs EnsureSchedule and says what it did: "created",
// "zone updated" or "exists".
func ensureSchedule(ctx workflow.Context, in activities.ScheduleInput) (string, error) {
	var sr activities.ScheduleResult
	if err := workflow.ExecuteActivity(ctx, activities.EnsureScheduleActivity, in).Get(ctx, &sr); err != nil {
		return "", fmt.Errorf("schedule %s: %w", in.ID, err)
	}
	switch {
	case sr.Created:
		return "created", nil
	case sr.Updated:
		return "zone updated to " + in.Zone, nil
	}
	return "exists", nil
}

// applyActivity returns the activity that applies resources of kind k.
func applyActivity(p *activities.Provisioner, k blueprint.Kind) any {
	switch k {
	case blueprint.KindDatastore:
		return p.ApplyDatastore
	case blueprint.KindArchive:
		return p.ApplyArchive
	case blueprint.KindConduit:
		return p.ApplyConduit
	case blueprint.KindLane:
		return p.ApplyLane
	case blueprint.KindInsight:
		return p.ApplyInsight
	case blueprint.KindGateway:
		return p.ApplyGateway
	case blueprint.KindCompute:
		return p.ApplyCompute
	}
	return nil
}

// withID returns the context's activity options with the activity id set, so
// the history names each resource's step.
func withID(ctx workflow.Context, id string) workflow.ActivityOptions {
	o := workflow.GetActivityOptions(ctx)
	o.ActivityID = id
	return o
}

// resourceError names the resource in the workflow's failure and carries
// the result so far (the plan, what was applied before) as its details; a
// non-retryable cause stays non-retryable.
func resourceError(ch blueprint.Change, err error, res ProvisionResult) error {
	typ, cause := "ResourceFailed", err.Error()
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		cause = appErr.Error() // without the activity error's ids
	}
	nonRetryable := appErr != nil && appErr.NonRetryable()
	if nonRetryable {
		typ = appErr.Type()
	}
	cause = strings.TrimPrefix(cause, fmt.Sprintf("%s %s: ", ch.Kind, ch.Name))
	msg := fmt.Sprintf("%s %s (%s) failed: %s", ch.Kind, ch.Name, ch.Action, cause)
	return temporal.NewApplicationErrorWithOptions(msg, typ, temporal.ApplicationErrorOptions{
		NonRetryable: nonRetryable, Cause: err, Details: []any{res},
	})
}

func refusalList(p blueprint.Plan) string {
	var b strings.Builder
	for _, ch := range p.Refusals() {
		fmt.Fprintf(&b, "  ! %s %s: %s\n", ch.Kind, ch.Name, strings.Join(ch.Reasons, "; "))
	}
	return strings.TrimRight(b.String(), "\n")
}
