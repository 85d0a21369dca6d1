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
// continue-as-new runs each, and checks exact counts in gold and the lake.
func TestStreamEndToEnd(t *testing.T) {
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 3)
	lk, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silvertest.Table(t, dbURL, s3, "datalake"), Brokers: brokers,
		Warehouse: wh, TempDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	msgs, ex := streamtest.Mix(4000, 3, hour, 7)
	streamtest.Produce(t, brokers, "events", msgs)

	inputs := []StreamCompactionInput{
		{Shard: 0, Shards: 2, MaxRecords: 400, FlushWait: 100 * time.Millisecond, FlushesPerCycle: 3, CyclesPerRun: 2,
			CompactEvery: time.Millisecond, AllowedLateness: time.Minute},
		{Shard: 1, Shards: 2, MaxRecords: 400, FlushWait: 100 * time.Millisecond, FlushesPerCycle: 3, CyclesPerRun: 2},
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
	for !done() || inputs[0].Totals.Compactions < 2 {
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
	if inputs[1].Totals.Compactions != 0 {
		t.Errorf("shard 1 ran %d compactions", inputs[1].Totals.Compactions)
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
	// The closed hour was compacted: one file per partition (rows < 1M),
	// holding each event once.
	var live, rows, small int64
	err = wh.Pool().QueryRow(ctx, `SELECT count(*), coalesce(sum(rows), 0), count(*) FILTER (WHERE NOT compacted)
		FROM pipeline.silver_objects WHERE state = 'live'`).Scan(&live, &rows, &small)
	if err != nil {
		t.Fatal(err)
	}
	if live != 3 || rows != int64(ex.Distinct) || small != 0 {
		t.Errorf("silver: %d live files (%d not compacted) with %d rows; want 3 compacted files with %d rows", live, small, rows, ex.Distinct)
	}
	objs, err := lk.List(ctx, "silver/events/dt=") // not silver.events' data/ and metadata/
	if err != nil || int64(len(objs)) != live {
		t.Errorf("bucket has %d silver objects, index %d live (%v)", len(objs), live, err)
	}
}
