package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/blueprint"
	"github.com/acme/pipeline/slo"
)

// seed returns deploy/blueprint.json, parsed, and its raw bytes.
func seed(t *testing.T) (*blueprint.Blueprint, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := blueprint.Parse(raw, "deploy/blueprint.json")
	if err != nil {
		t.Fatal(err)
	}
	return bp, raw
}

// withPartitions returns the seed with the conduit's particoes set to n.
func withPartitions(t *testing.T, raw []byte, n int) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc["recursos"].([]any) {
		r := r.(map[string]any)
		if r["tipo"] == "conduit" {
			r["config"].(map[string]any)["particoes"] = n
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type provisionEnv struct {
	env       *testsuite.TestWorkflowEnvironment
	order     []string // "kind/name" of every resource activity run
	schedules []string // ids of the schedules ensured
	zone      string   // the zone the nightly schedule must get; default UTC
	brokers   int      // what DescribeCluster returns; default 1
	stream    []activities.StreamEnsureInput
	monitor   []slo.Config
}

// newProvisionEnv stubs every Provisioner activity: the catalog returns
// catalog, resource activities record their order and succeed unless fail
// names the resource ("kind/name").
func newProvisionEnv(t *testing.T, catalog []blueprint.CatalogEntry, fail map[string]error) *provisionEnv {
	var s testsuite.WorkflowTestSuite
	pe := &provisionEnv{env: s.NewTestWorkflowEnvironment(), zone: "UTC", brokers: 1}
	var p *activities.Provisioner
	pe.env.RegisterActivity(p)
	pe.env.RegisterActivityWithOptions(
		func(_ context.Context, in activities.ScheduleInput) (activities.ScheduleResult, error) {
			nightly := in.ID == NightlyScheduleID && in.Workflow == "NightlyAggregation" && in.Hour == 2 && in.Every == 0 && in.Zone == pe.zone
			refresh := in.ID == RefreshScheduleID && in.Workflow == "RefreshMarts" && in.Every == RefreshEvery
			maintain := in.ID == SilverMaintenanceScheduleID && in.Workflow == "SilverMaintenance" && in.Every == SilverMaintenanceEvery && len(in.Args) == 0
			orphans := in.ID == SilverOrphansScheduleID && in.Workflow == "SilverMaintenance" && in.Every == 0 && in.Args["orphans"] == true
			if !(nightly || refresh || maintain || orphans) || in.TaskQueue != BatchQueue || in.CatchupWindow <= 0 {
				return activities.ScheduleResult{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("bad schedule input %+v", in), "Test", nil)
			}
			pe.schedules = append(pe.schedules, in.ID)
			return activities.ScheduleResult{ID: in.ID, Created: true}, nil
		}, activity.RegisterOptions{Name: activities.EnsureScheduleActivity})
	pe.env.RegisterActivityWithOptions(
		func(_ context.Context, in activities.StreamEnsureInput) (activities.StreamEnsureResult, error) {
			pe.stream = append(pe.stream, in)
			var res activities.StreamEnsureResult
			for i := range in.Shards {
				res.WorkflowIDs = append(res.WorkflowIDs, StreamWorkflowID(in.Topic, i, in.Shards))
			}
			return res, nil
		}, activity.RegisterOptions{Name: activities.EnsureStreamActivity})
	pe.env.RegisterActivityWithOptions(
		func(_ context.Context, cfg slo.Config) (string, error) {
			pe.monitor = append(pe.monitor, cfg)
			return SLOMonitorWorkflowID, nil
		}, activity.RegisterOptions{Name: activities.EnsureSLOMonitorActivity})
	pe.env.OnActivity(p.LoadCatalog, mock.Anything).Return(activities.LoadCatalogResult{Entries: catalog}, nil)
	pe.env.OnActivity(p.DescribeCluster, mock.Anything).Return(
		func(context.Context) (blueprint.Cluster, error) { return blueprint.Cluster{Brokers: pe.brokers}, nil })
	for _, fn := range []any{p.ApplyDatastore, p.ApplyArchive, p.ApplyConduit, p.ApplyLane, p.ApplyInsight, p.ApplyGateway, p.ApplyCompute} {
		pe.env.OnActivity(fn, mock.Anything, mock.Anything).Return(
			func(_ context.Context, in activities.ResourceInput) (activities.ResourceResult, error) {
				id := string(in.Kind) + "/" + in.Name
				pe.order = append(pe.order, id)
				if err := fail[id]; err != nil {
					return activities.ResourceResult{}, err
				}
				return activities.ResourceResult{Kind: in.Kind, Name: in.Name, Detail: "ok"}, nil
			})
	}
	pe.env.OnActivity(p.RecordMartZone, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.MartZoneInput) (activities.MartZoneResult, error) {
			if in.Zone == "" {
				return activities.MartZoneResult{Zone: "UTC"}, nil
			}
			return activities.MartZoneResult(in), nil
		})
	return pe
}

func (pe *provisionEnv) run(t *testing.T, in ProvisionInput) (ProvisionResult, error) {
	t.Helper()
	pe.env.ExecuteWorkflow(Provision, in)
	if !pe.env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	if err := pe.env.GetWorkflowError(); err != nil {
		return ProvisionResult{}, err
	}
	var res ProvisionResult
	if err := pe.env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestProvisionFromNothingRunsEveryResourceInDependencyOrder(t *testing.T) {
	_, raw := seed(t)
	pe := newProvisionEnv(t, nil, nil)
	res, err := pe.run(t, ProvisionInput{Blueprint: raw})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"datastore/warehouse", "archive/datalake", "conduit/events", "lane/batch-jobs",
		"insight/pipeline-obs", "gateway/ingest-dns", "compute/ingest-api", "compute/etl-worker",
	}
	if strings.Join(pe.order, " ") != strings.Join(want, " ") {
		t.Fatalf("order %v\nwant  %v", pe.order, want)
	}
	if len(res.Applied) != len(want) || res.Schedule != "created" || res.Plan.Count(blueprint.ActionCreate) != len(want) {
		t.Fatalf("result %+v", res)
	}
	if strings.Join(pe.schedules, " ") != NightlyScheduleID+" "+RefreshScheduleID+" "+SilverMaintenanceScheduleID+" "+SilverOrphansScheduleID ||
		res.RefreshSchedule != "created" || len(res.SilverSchedules) != 2 || res.MartZone != "UTC" {
		t.Fatalf("schedules %v, result %+v", pe.schedules, res)
	}
	if !strings.Contains(res.PlanText, "+ create conduit events") {
		t.Fatalf("plan text:\n%s", res.PlanText)
	}
}

// TestProvisionRecordsTheMartZone: the zone is recorded in the warehouse
// and the nightly schedule gets the zone in force.
func TestProvisionRecordsTheMartZone(t *testing.T) {
	bp, raw := seed(t)
	pe := newProvisionEnv(t, provisioned(bp, 1), nil)
	pe.zone = "Asia/Tokyo"
	res, err := pe.run(t, ProvisionInput{Blueprint: raw, ScheduleZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	if res.MartZone != "Asia/Tokyo" || !strings.Contains(res.Summary(), "Marts: days cut in Asia/Tokyo.") ||
		!strings.Contains(res.Summary(), "Schedule marts-refresh: created") {
		t.Fatalf("result %+v\n%s", res, res.Summary())
	}
}

// provisioned is the catalog after bp was applied on a cluster of brokers.
func provisioned(bp *blueprint.Blueprint, brokers int) []blueprint.CatalogEntry {
	var out []blueprint.CatalogEntry
	for _, ch := range blueprint.DiffCluster(bp, nil, blueprint.Cluster{Brokers: brokers}).Changes {
		out = append(out, blueprint.CatalogEntry{Kind: ch.Kind, Name: ch.Name, Config: ch.Desired})
	}
	return out
}

// The conduit's replication comes from the cluster DescribeCluster sees:
// the plan and ApplyConduit's input carry it, and a declared replicacao
// the cluster cannot hold refuses the plan before anything runs.
func TestProvisionConduitReplicationFollowsTheCluster(t *testing.T) {
	cases := []struct {
		name     string
		brokers  int
		declared string // replaces "particoes": 12, in the seed
		rf, isr  int
		plan     string
		refused  string
	}{
		{name: "one broker", brokers: 1, rf: 1, isr: 1, plan: "note: replicacao 1: the cluster has 1 broker"},
		{name: "three brokers", brokers: 3, rf: 3, isr: 2, plan: "replicacao=3, min_sincronas=2)"},
		{name: "declared 3 on one broker", brokers: 1, declared: `"particoes": 12, "replicacao": 3,`,
			refused: "conduit events: replicacao 3: the cluster has 1 broker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, raw := seed(t)
			if tc.declared != "" {
				raw = []byte(strings.Replace(string(raw), `"particoes": 12,`, tc.declared, 1))
			}
			pe := newProvisionEnv(t, nil, nil)
			pe.brokers = tc.brokers
			var got blueprint.ConduitConfig
			pe.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
				if info.ActivityType.Name == "ApplyConduit" {
					var in activities.ResourceInput
					if err := args.Get(&in); err == nil {
						_ = json.Unmarshal(in.Config, &got)
					}
				}
			})
			res, err := pe.run(t, ProvisionInput{Blueprint: raw})
			if tc.refused != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refused) || len(pe.order) != 0 {
					t.Fatalf("error %v, ran %v; want %q and nothing run", err, pe.order, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Replication != tc.rf || got.MinInsync != tc.isr {
				t.Errorf("ApplyConduit got replicacao %d, min_sincronas %d; want %d, %d", got.Replication, got.MinInsync, tc.rf, tc.isr)
			}
			if res.Cluster.Brokers != tc.brokers || !strings.Contains(res.PlanText, tc.plan) {
				t.Errorf("cluster %+v, plan:\n%s", res.Cluster, res.PlanText)
			}
		})
	}
}

func TestProvisionUnchangedPlanRunsNoResourceActivity(t *testing.T) {
	bp, raw := seed(t)
	pe := newProvisionEnv(t, provisioned(bp, 1), nil)
	res, err := pe.run(t, ProvisionInput{Blueprint: raw})
	if err != nil {
		t.Fatal(err)
	}
	if len(pe.order) != 0 || len(res.Applied) != 0 || res.Plan.HasChanges() {
		t.Fatalf("ran %v, applied %v", pe.order, res.Applied)
	}
	if !strings.Contains(res.Summary(), "No changes") {
		t.Fatalf("summary %q", res.Summary())
	}
}

func TestProvisionAppliesOnlyWhatChanged(t *testing.T) {
	bp, raw := seed(t)
	pe := newProvisionEnv(t, provisioned(bp, 1), nil)
	res, err := pe.run(t, ProvisionInput{Blueprint: withPartitions(t, raw, 24)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pe.order, " ") != "conduit/events" || len(res.Applied) != 1 {
		t.Fatalf("ran %v", pe.order)
	}
	if !strings.Contains(res.PlanText, "particoes 12 → 24") {
		t.Fatalf("plan text:\n%s", res.PlanText)
	}
}

func TestProvisionRefusalsFailNonRetryablyBeforeAnyChange(t *testing.T) {
	bp, raw := seed(t)
	// The lane is missing from the catalog: a create that must not run either.
	var catalog []blueprint.CatalogEntry
	for _, e := range provisioned(bp, 1) {
		if e.Kind != blueprint.KindLane {
			catalog = append(catalog, e)
		}
	}
	pe := newProvisionEnv(t, catalog, nil)
	_, err := pe.run(t, ProvisionInput{Blueprint: withPartitions(t, raw, 6)})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypePlanRefused {
		t.Fatalf("error %v, want a non-retryable %s", err, ErrTypePlanRefused)
	}
	if !strings.Contains(err.Error(), "conduit events") || !strings.Contains(err.Error(), "12 → 6") {
		t.Fatalf("message does not list the refusal: %v", err)
	}
	if len(pe.order) != 0 {
		t.Fatalf("ran %v despite the refusal", pe.order)
	}
	var res ProvisionResult
	if err := appErr.Details(&res); err != nil || !strings.Contains(res.PlanText, "! refused conduit events") {
		t.Fatalf("details: %v %q", err, res.PlanText)
	}
}

func TestProvisionDryRunChangesNothing(t *testing.T) {
	_, raw := seed(t)
	pe := newProvisionEnv(t, nil, nil)
	res, err := pe.run(t, ProvisionInput{Blueprint: raw, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(pe.order) != 0 || res.Schedule != "" || !res.DryRun || res.Plan.Count(blueprint.ActionCreate) != 8 {
		t.Fatalf("ran %v, result %+v", pe.order, res)
	}
}

func TestProvisionInvalidBlueprintFailsNonRetryably(t *testing.T) {
	pe := newProvisionEnv(t, nil, nil)
	_, err := pe.run(t, ProvisionInput{Blueprint: json.RawMessage(`{"nome":"x","recursos":[{"tipo":"conduit","nome":"events","config":{"particoes":0}}]}`)})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != ErrTypeInvalidBlueprint {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(err.Error(), "particoes") {
		t.Fatalf("message does not name the field: %v", err)
	}
}

func TestProvisionFailureNamesTheResourceAndStops(t *testing.T) {
	_, raw := seed(t)
	pe := newProvisionEnv(t, nil, map[string]error{
		"conduit/events": temporal.NewNonRetryableApplicationError("conduit events: particoes 6: the topic has 12 partitions", activities.ErrTypeRefused, nil),
	})
	_, err := pe.run(t, ProvisionInput{Blueprint: raw})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || appErr.Type() != activities.ErrTypeRefused {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(appErr.Error(), "conduit events (create) failed: particoes 6") {
		t.Fatalf("message %q", appErr.Error())
	}
	if strings.Join(pe.order, " ") != "datastore/warehouse archive/datalake conduit/events" {
		t.Fatalf("ran %v, want it to stop at the conduit", pe.order)
	}
	var res ProvisionResult
	if err := appErr.Details(&res); err != nil || len(res.Applied) != 2 {
		t.Fatalf("details: %v %+v", err, res.Applied)
	}
}

// TestProvisionStartsTheStreamAndTheMonitor: Provision's last steps start
// the stream's shards (the count from the input, else one per 4 partitions
// within replicas_max) and the SLO monitor with the insight resource's
// configuration; a dry run starts neither.
func TestProvisionStartsTheStreamAndTheMonitor(t *testing.T) {
	bp, raw := seed(t)
	topic, parts, _ := bp.Topic()
	_, ins, _ := bp.Insight()
	tests := []struct {
		name   string
		in     ProvisionInput
		shards int
	}{
		{"default shard count", ProvisionInput{Blueprint: raw}, StreamShards(bp, 0)},
		{"shards given", ProvisionInput{Blueprint: raw, StreamShards: 5}, 5},
		{"dry run", ProvisionInput{Blueprint: raw, DryRun: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pe := newProvisionEnv(t, nil, nil)
			res, err := pe.run(t, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.shards == 0 {
				if len(pe.stream)+len(pe.monitor) != 0 || len(res.Stream) != 0 || res.Monitor != "" {
					t.Fatalf("a dry run started %v %v", pe.stream, pe.monitor)
				}
				return
			}
			if len(pe.stream) != 1 || pe.stream[0] != (activities.StreamEnsureInput{Topic: topic, Shards: tt.shards}) || len(res.Stream) != tt.shards {
				t.Fatalf("stream started %+v (result %v); want %d shards of %s (%d partitions)", pe.stream, res.Stream, tt.shards, topic, parts)
			}
			if len(pe.monitor) != 1 || pe.monitor[0].Topic != topic || pe.monitor[0].Alerts != ins.Alerts || res.Monitor != SLOMonitorWorkflowID {
				t.Fatalf("monitor started %+v (%q)", pe.monitor, res.Monitor)
			}
			if !strings.Contains(res.Summary(), "Stream compaction running") || !strings.Contains(res.Summary(), "SLO monitor running") {
				t.Fatalf("summary:\n%s", res.Summary())
			}
		})
	}
}

func TestStreamShards(t *testing.T) {
	bp, raw := seed(t)
	_, w, _ := bp.Worker()
	tests := []struct {
		partitions, want, expect int
	}{
		{1, 0, 1},
		{4, 0, 1},
		{5, 0, 2},
		{12, 0, min(3, max(1, w.ReplicasMax))},
		{12, 7, 7},
	}
	for _, tt := range tests {
		b, err := blueprint.Parse(withPartitions(t, raw, tt.partitions), "bp")
		if err != nil {
			t.Fatal(err)
		}
		if got := StreamShards(b, tt.want); got != tt.expect {
			t.Errorf("StreamShards(%d partitions, want %d) = %d, expect %d", tt.partitions, tt.want, got, tt.expect)
		}
	}
}
