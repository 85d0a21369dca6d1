package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

// martsHarness is an in-process worker on batch-jobs with the warehouse and
// the starter's activities (for EnsureSchedule).
type martsHarness struct {
	store *warehouse.Store
	tc    client.Client
	ens   *starter.Ensurer
}

func startMartsWorker(ctx context.Context, t *testing.T) martsHarness {
	t.Helper()
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close) // after the worker stops
	tc := dialTemporal(t)
	prov, err := activities.NewProvisioner(activities.ProvisionerConfig{
		Store: store, KafkaBrokers: stack.KafkaBrokers, S3: devstack.S3Client(stack.S3Endpoint, stack.Region, stack.AccessKeyID, stack.SecretAccessKey),
		S3Endpoint: stack.S3Endpoint,
	})
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, worker.Config{Client: tc, Store: store, Provisioner: prov})
	ens, err := starter.NewEnsurer(tc)
	if err != nil {
		t.Fatal(err)
	}
	return martsHarness{store: store, tc: tc, ens: ens}
}

func (h martsHarness) load(ctx context.Context, t *testing.T, typ string, at ...string) {
	t.Helper()
	var rows []event.Row
	for _, a := range at {
		ts, err := time.Parse(time.RFC3339, a)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, event.Row{EventID: uuid.Must(uuid.NewV7()), Type: typ, OccurredAt: ts.UnixMicro(), ReceivedAt: ts.UnixMicro(), Properties: "{}"})
	}
	if _, err := h.store.LoadLive(ctx, warehouse.LoadInput{Rows: rows}); err != nil {
		t.Fatal(err)
	}
}

func (h martsHarness) events(ctx context.Context, t *testing.T, day, typ string) int64 {
	t.Helper()
	var n int64
	err := h.store.Pool().QueryRow(ctx, `SELECT coalesce(sum(events), 0)::bigint FROM gold.daily_product_metrics WHERE day = $1::date AND event_type = $2`, day, typ).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNightlyScheduleCatchUp creates the nightly schedule as provisioning
// does, on the real Temporal server, and has the server start a run for a
// nominal time in the past (a schedule backfill: what a catch-up after an
// outage does). The run aggregates the day before its nominal time, not the
// day before today.
func TestNightlyScheduleCatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startMartsWorker(ctx, t)
	typ := fmt.Sprintf("catchup_%d", time.Now().UnixNano()%1_000_000_000)
	// 2026-10-14 has 4 events of typ in UTC, 3 in Tokyo (16:00 UTC on the
	// 13th is 01:00 on the 14th there; 16:00 and 20:00 UTC on the 14th are
	// the 15th).
	h.load(ctx, t, typ, "2026-10-13T16:00:00Z", "2026-10-14T01:00:00Z", "2026-10-14T09:00:00Z", "2026-10-14T16:00:00Z", "2026-10-14T20:00:00Z")

	for _, tc := range []struct {
		zone    string
		nominal time.Time // 02:00 on the 15th in zone
		want    int64
	}{
		{"", time.Date(2026, 10, 15, 2, 0, 0, 0, time.UTC), 4},
		{"Asia/Tokyo", time.Date(2026, 10, 14, 17, 0, 0, 0, time.UTC), 3},
	} {
		t.Run("zone "+tc.zone, func(t *testing.T) {
			id := fmt.Sprintf("nightly-catchup-%d", time.Now().UnixNano())
			res, err := h.ens.EnsureSchedule(ctx, activities.ScheduleInput{ID: id, Workflow: "NightlyAggregation", TaskQueue: workflows.BatchQueue,
				Hour: workflows.NightlyHour, Zone: tc.zone, CatchupWindow: workflows.NightlyCatchupWindow})
			if err != nil || !res.Created {
				t.Fatalf("EnsureSchedule: %+v, %v", res, err)
			}
			sh := h.tc.ScheduleClient().GetHandle(ctx, id)
			t.Cleanup(func() { _ = sh.Delete(context.Background()) })
			if err := sh.Backfill(ctx, client.ScheduleBackfillOptions{Backfill: []client.ScheduleBackfill{{
				Start: tc.nominal.Add(-time.Minute), End: tc.nominal.Add(time.Minute), Overlap: enums.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
			}}}); err != nil {
				t.Fatal(err)
			}
			var run string
			for run == "" && ctx.Err() == nil {
				desc, err := sh.Describe(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range desc.Info.RecentActions {
					if a.ScheduleTime.Equal(tc.nominal) && a.StartWorkflowResult != nil {
						run = a.StartWorkflowResult.WorkflowID
					}
				}
				time.Sleep(100 * time.Millisecond)
			}
			var out workflows.NightlyAggregationResult
			if err := h.tc.GetWorkflow(ctx, run, "").Get(ctx, &out); err != nil {
				t.Fatalf("run %s: %v", run, err)
			}
			zone := tc.zone
			if zone == "" {
				zone = "UTC"
			}
			if out.Day != "2026-10-14" || out.Zone != zone {
				t.Fatalf("run %s aggregated %s (%s), want 2026-10-14 (%s): the day before the nominal time", run, out.Day, out.Zone, zone)
			}
			if n := h.events(ctx, t, "2026-10-14", typ); n != tc.want {
				t.Fatalf("marts of 2026-10-14 count %d %s events, want %d", n, typ, tc.want)
			}
		})
	}
}

// TestRefreshMartsOnTemporal: a late event of a built day leaves it pending
// until RefreshMarts (what the marts-refresh schedule runs) rebuilds it.
func TestRefreshMartsOnTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := startMartsWorker(ctx, t)
	typ := fmt.Sprintf("refresh_%d", time.Now().UnixNano()%1_000_000_000)
	const day = "2026-10-20"
	h.load(ctx, t, typ, "2026-10-20T10:00:00Z")
	run, err := h.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.BatchQueue},
		workflows.NightlyAggregation, workflows.NightlyAggregationInput{Date: day})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	h.load(ctx, t, typ, "2026-10-20T23:59:59Z") // late
	pending := func() bool {
		days, _, err := h.store.PendingMartDays(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range days {
			if d.Day.String() == day {
				return true
			}
		}
		return false
	}
	if !pending() || h.events(ctx, t, day, typ) != 1 {
		t.Fatalf("after the late event: pending %v, %d events in the marts", pending(), h.events(ctx, t, day, typ))
	}
	run, err = h.tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.BatchQueue},
		workflows.RefreshMarts, workflows.RefreshMartsInput{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.RefreshMartsResult
	if err := run.Get(ctx, &res); err != nil {
		t.Fatalf("RefreshMarts: %v", err)
	}
	if pending() || h.events(ctx, t, day, typ) != 2 {
		t.Fatalf("after RefreshMarts (%+v): pending %v, %d events in the marts", res, pending(), h.events(ctx, t, day, typ))
	}
}

// TestEnsureSchedules: the nightly schedule follows the recorded zone (an
// existing one in another zone is updated, its input too), and marts-refresh
// runs at an interval, skipping overlaps.
func TestEnsureSchedules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := startMartsWorker(ctx, t)
	suffix := fmt.Sprint(time.Now().UnixNano())
	nightly := activities.ScheduleInput{ID: "nightly-" + suffix, Workflow: "NightlyAggregation", TaskQueue: workflows.BatchQueue,
		Hour: workflows.NightlyHour, CatchupWindow: workflows.NightlyCatchupWindow}
	refresh := activities.ScheduleInput{ID: "refresh-" + suffix, Workflow: "RefreshMarts", TaskQueue: workflows.BatchQueue,
		Every: workflows.RefreshEvery, CatchupWindow: workflows.RefreshCatchupWindow}
	for _, id := range []string{nightly.ID, refresh.ID} {
		sh := h.tc.ScheduleClient().GetHandle(ctx, id)
		t.Cleanup(func() { _ = sh.Delete(context.Background()) })
	}
	tokyo := nightly
	tokyo.Zone = "Asia/Tokyo"
	for _, step := range []struct {
		in   activities.ScheduleInput
		want activities.ScheduleResult
		zone string
	}{
		{nightly, activities.ScheduleResult{ID: nightly.ID, Created: true}, ""},
		{nightly, activities.ScheduleResult{ID: nightly.ID}, ""},
		{tokyo, activities.ScheduleResult{ID: nightly.ID, Updated: true}, "Asia/Tokyo"},
		{tokyo, activities.ScheduleResult{ID: nightly.ID}, "Asia/Tokyo"},
		{refresh, activities.ScheduleResult{ID: refresh.ID, Created: true}, ""},
		{refresh, activities.ScheduleResult{ID: refresh.ID}, ""},
	} {
		res, err := h.ens.EnsureSchedule(ctx, step.in)
		if err != nil || res != step.want {
			t.Fatalf("EnsureSchedule(%s, zone %q): %+v, %v; want %+v", step.in.ID, step.in.Zone, res, err, step.want)
		}
		desc, err := h.tc.ScheduleClient().GetHandle(ctx, step.in.ID).Describe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if desc.Schedule.Spec.TimeZoneName != step.zone || desc.Schedule.Policy.Overlap != enums.SCHEDULE_OVERLAP_POLICY_SKIP {
			t.Fatalf("%s: zone %q, policy %+v", step.in.ID, desc.Schedule.Spec.TimeZoneName, desc.Schedule.Policy)
		}
		act := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
		var args workflows.NightlyAggregationInput
		if len(act.Args) != 1 || converter.GetDefaultDataConverter().FromPayload(act.Args[0].(*commonpb.Payload), &args) != nil || args.Zone != step.zone {
			t.Fatalf("%s: args %v, want zone %q", step.in.ID, act.Args, step.zone)
		}
		if step.in.Every > 0 && (len(desc.Schedule.Spec.Intervals) != 1 || desc.Schedule.Spec.Intervals[0].Every != workflows.RefreshEvery) {
			t.Fatalf("%s: spec %+v", step.in.ID, desc.Schedule.Spec)
		}
	}
}
