package workflows

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
)

// streamHistories are real histories of StreamCompaction recorded by
// TestRecordStreamHistory on the Temporal dev server: a run that compacts
// hours beside its cycles and continues as new, and the next run, stopped by
// the stop signal.
var streamHistories = []string{"testdata/stream_compaction_run1.json", "testdata/stream_compaction_run2.json"}

// TestStreamReplay replays the checked-in histories with the current
// workflow code: a change that breaks determinism fails here. Put such a
// change behind workflow.GetVersion, or record new histories
// (STREAM_RECORD_HISTORY=1) when the old ones no longer matter.
func TestStreamReplay(t *testing.T) {
	for _, file := range streamHistories {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(StreamCompaction)
			if err := r.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRecordStreamHistory runs StreamCompaction on a real dev server and
// writes its histories to testdata (STREAM_RECORD_HISTORY=1).
func TestRecordStreamHistory(t *testing.T) {
	if os.Getenv("STREAM_RECORD_HISTORY") == "" {
		t.Skip("set STREAM_RECORD_HISTORY=1 to record testdata/stream_compaction_run*.json on a Temporal dev server")
	}
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 2)
	_, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	address, _ := streamtest.Temporal(t)
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silvertest.Table(t, dbURL, s3, "datalake"), Brokers: brokers,
		Warehouse: wh, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	msgs, ex := streamtest.Mix(2000, 2, time.Now().UTC().Truncate(time.Hour).Add(-2*time.Hour), 9)
	streamtest.Produce(t, brokers, "events", msgs)

	c, err := client.Dial(client.Options{HostPort: address, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	queue := "stream-history-" + uuid.NewString()[:8]
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(StreamCompaction)
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	id := StreamWorkflowID("events", 0, 1)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, StreamCompaction,
		StreamCompactionInput{MaxRecords: 300, FlushWait: 200 * time.Millisecond, FlushesPerCycle: 3, CycleDuration: time.Second,
			CyclesPerRun: 3, CompactEvery: time.Millisecond, AllowedLateness: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Let the first run continue as new and the second make a few cycles.
	deadline := time.Now().Add(time.Minute)
	for {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if d.WorkflowExecutionInfo.Execution.RunId != run.GetRunID() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no continue-as-new within a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	if err := c.SignalWorkflow(ctx, id, "", StreamStopSignal, nil); err != nil {
		t.Fatal(err)
	}
	var res StreamCompactionResult
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	streamtest.CheckGold(t, wh.Pool(), ex)
	t.Logf("totals %+v", res.Totals)

	second := fetchHistory(t, c, id, "")
	first := fetchHistory(t, c, id, run.GetRunID())
	for i, file := range streamHistories {
		h := first
		if i == 1 {
			h = second
		}
		b, err := historyJSON(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d events", file, len(h.Events))
	}
}
