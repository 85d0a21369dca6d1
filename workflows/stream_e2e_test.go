package workflows

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
)

// TestStreamEndToEnd runs two shards of the workflow, with the real
// activities, against kfake, versitygw and PostgreSQL, across several
// continue-as-new runs each, then SilverMaintenance, and checks exact counts
// in gold and silver.events.
func TestStreamEndToEnd(t *testing.T) {
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 3)
	lk, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	silverCfg := silvertest.Table(t, dbURL, s3, "datalake")
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silverCfg, Brokers: brokers,
		Warehouse: wh, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	msgs, ex := streamtest.Mix(4000, 3, hour, 7)
	streamtest.Produce(t, brokers, "events", msgs)

	inputs := []StreamCompactionInput{
		{Shard: 0, Shards: 2, MaxRecords: 100, FlushWait: 100 * time.Millisecond, FlushesPerCycle: 1, CyclesPerRun: 2,
			CompactEvery: time.Millisecond, AllowedLateness: time.Minute},
		{Shard: 1, Shards: 2, MaxRecords: 100, FlushWait: 100 * time.Millisecond, FlushesPerCycle: 1, CyclesPerRun: 2},
	}
	done := func() bool {
		var n int64
		for _, in := range inputs {
			for _, o := range in.Offsets {
				n += o
			}
		}
		return n >= int64(len(msgs))
	}
	runs := 0
	for !done() {
		if runs++; runs > 40 {
			t.Fatalf("not done after %d runs: %+v", runs, inputs)
		}
		for i := range inputs {
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.RegisterActivity(acts)
			env.ExecuteWorkflow(StreamCompaction, inputs[i])
			var can *workflow.ContinueAsNewError
			if err := env.GetWorkflowError(); !errors.As(err, &can) {
				t.Fatalf("shard %d: want continue-as-new, got %v", i, err)
			}
			var next StreamCompactionInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatal(err)
			}
			inputs[i] = next
		}
	}
	owned := map[int]map[int32]bool{0: {0: true, 2: true}, 1: {1: true}}
	for i, in := range inputs {
		for p := range in.Offsets {
			if !owned[i][p] {
				t.Errorf("shard %d holds partition %d", i, p)
			}
		}
	}
	t.Logf("runs %d; shard 0 %+v; shard 1 %+v", runs, inputs[0].Totals, inputs[1].Totals)
	streamtest.CheckGold(t, wh.Pool(), ex)
	if got := inputs[0].Totals.Inserted + inputs[1].Totals.Inserted; got != int64(ex.Distinct) {
		t.Errorf("totals say %d inserted, want %d", got, ex.Distinct)
	}
	if got := inputs[0].Totals.Quarantined + inputs[1].Totals.Quarantined; got != int64(ex.Poison) {
		t.Errorf("totals say %d quarantined, want %d", got, ex.Poison)
	}
	silvertest.CheckSameAsGold(t, wh.Pool(), silverCfg, 0)

	// SilverMaintenance, with its real activities, compacts the closed
	// hour's small files into one and expires the snapshots before it.
	sm, err := activities.NewSilverMaintainer(activities.SilverMaintainerConfig{Silver: silverCfg, Store: wh})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(sm)
	env.ExecuteWorkflow(SilverMaintenance, SilverMaintenanceInput{Retention: time.Millisecond, RetainLast: 1})
	var res SilverMaintenanceResult
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	t.Logf("maintenance: compaction %+v, manifests %+v, expiry %+v", *res.Compaction, *res.Manifests, *res.Expiry)
	if res.Compaction.Added != 1 || res.Compaction.Removed < 10 || res.Expiry.After != 1 {
		t.Errorf("maintenance: %d files replaced by %d, %d snapshots left; want the hour in one file, one snapshot",
			res.Compaction.Removed, res.Compaction.Added, res.Expiry.After)
	}
	if ids := silvertest.IDs(t, silverCfg); len(ids) != ex.Distinct {
		t.Errorf("silver.events holds %d events after maintenance, want %d", len(ids), ex.Distinct)
	}
	silvertest.CheckSameAsGold(t, wh.Pool(), silverCfg, 0)
	if objs, err := lk.List(ctx, "silver/events/dt="); err != nil || len(objs) > 0 {
		t.Errorf("%d hour files beside silver.events (%v)", len(objs), err)
	}
}
