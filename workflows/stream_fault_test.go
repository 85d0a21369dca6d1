package workflows

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// TestStreamWorkerProcess is not a test: it is the worker process that
// TestStreamKillWorker starts (and kills with SIGKILL) by running the test
// binary again with STREAM_WORKER_PROCESS=1.
func TestStreamWorkerProcess(t *testing.T) {
	if os.Getenv("STREAM_WORKER_PROCESS") == "" {
		t.Skip("the worker process of TestStreamKillWorker")
	}
	ctx := context.Background()
	env := func(k string) string { return os.Getenv(k) }
	wh, err := warehouse.Open(ctx, warehouse.Config{URL: env("DATABASE_URL")})
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	acts, err := activities.NewStream(ctx, activities.StreamConfig{
		Lake: lake.Config{Endpoint: env("S3_ENDPOINT"), AccessKeyID: env("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: env("AWS_SECRET_ACCESS_KEY"), PathStyle: true},
		Silver: silver.Config{DatabaseURL: env("DATABASE_URL"), Endpoint: env("S3_ENDPOINT"), AccessKeyID: env("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: env("AWS_SECRET_ACCESS_KEY")},
		Brokers: strings.Split(env("KAFKA_BROKERS"), ","), Warehouse: wh,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: env("TEMPORAL_ADDRESS"), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := worker.New(c, env("STREAM_QUEUE"), worker.Options{})
	w.RegisterWorkflow(StreamCompaction)
	w.RegisterActivity(acts)
	fmt.Fprintln(os.Stderr, "worker process polling", env("STREAM_QUEUE"))
	if err := w.Run(worker.InterruptCh()); err != nil {
		t.Fatal(err)
	}
}

// TestStreamKillWorker sends live traffic (and poison records with kcat)
// while the worker process is killed with SIGKILL in the middle of a cycle
// and started again, on a real Temporal dev server, and checks that gold
// holds exactly the distinct events sent (STREAM_FAULT=1).
func TestStreamKillWorker(t *testing.T) {
	if os.Getenv("STREAM_FAULT") == "" {
		t.Skip("set STREAM_FAULT=1: starts a Temporal dev server and worker processes, runs about a minute")
	}
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", 3)
	lk, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	address, _ := streamtest.Temporal(t)
	silverCfg := silvertest.Table(t, dbURL, s3, "datalake")
	queue := "stream-fault-" + uuid.NewString()[:8]
	logDir := t.TempDir()
	workerEnv := append(os.Environ(), "STREAM_WORKER_PROCESS=1", "TEMPORAL_ADDRESS="+address, "STREAM_QUEUE="+queue,
		"KAFKA_BROKERS="+strings.Join(brokers, ","), "S3_ENDPOINT="+s3.Endpoint, "AWS_ACCESS_KEY_ID="+s3.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+s3.SecretAccessKey, "DATABASE_URL="+dbURL)
	startWorker := func(name string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestStreamWorkerProcess$", "-test.v", "-test.count=1")
		cmd.Env = workerEnv
		f, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}

	c, err := client.Dial(client.Options{HostPort: address, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := startWorker("worker-a")
	id := StreamWorkflowID("events", 0, 1)
	if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: queue}, StreamCompaction,
		StreamCompactionInput{CompactEvery: -1}); err != nil {
		t.Fatal(err)
	}

	// Traffic: 2,000 events/s for 20 s, as the API writes them.
	p := newProducer(t, brokers, 21)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.pace(2000, 20*time.Second) }()

	// Poison from another producer, with kcat.
	time.Sleep(3 * time.Second)
	poison := "not json\n{\"type\":\"page_view\"}\n{\"event_id\":\"" + uuid.NewString() + "\",\"type\":7}\n"
	kcat := exec.Command("kcat", "-P", "-b", brokers[0], "-t", "events", "-p", "1")
	kcat.Stdin = strings.NewReader(poison)
	if out, err := kcat.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	kcatPoison := 3

	// Kill the worker in the middle of a cycle, start another 3 s later.
	time.Sleep(4 * time.Second)
	var before int64
	_ = wh.Pool().QueryRow(ctx, "SELECT count(*) FROM gold.events").Scan(&before)
	killedAt := time.Now()
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.Wait()
	t.Logf("worker A killed with SIGKILL after %d events in gold", before)
	time.Sleep(3 * time.Second)
	startWorker("worker-b")
	restartedAt := time.Now()

	// The first load after the restart tells the recovery time.
	var resumedAt time.Time
	var lastLoad time.Time
	_ = wh.Pool().QueryRow(ctx, "SELECT max(finished_at) FROM pipeline.loads").Scan(&lastLoad)
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var n int64
		_ = wh.Pool().QueryRow(ctx, "SELECT count(*) FROM pipeline.loads WHERE started_at > $1", restartedAt).Scan(&n)
		if n > 0 {
			resumedAt = time.Now()
			break
		}
	}
	wg.Wait()
	p.expect.Poison += kcatPoison
	p.sent += kcatPoison
	waitGold(t, wh, p, 3*time.Minute)
	if err := c.SignalWorkflow(ctx, id, "", StreamStopSignal, nil); err != nil {
		t.Fatal(err)
	}
	var res StreamCompactionResult
	if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
		t.Fatal(err)
	}
	streamtest.CheckGold(t, wh.Pool(), p.expect)
	silvertest.CheckSameAsGold(t, wh.Pool(), silverCfg, time.Minute)

	// The retry shows in the history: ActivityTaskStarted with attempt > 1
	// and the heartbeat timeout as its last failure.
	h := fetchHistory(t, c, id, "")
	var retries []string
	for _, e := range h.Events {
		if e.EventType == enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED {
			at := e.GetActivityTaskStartedEventAttributes()
			if at.Attempt > 1 {
				retries = append(retries, fmt.Sprintf("attempt %d after %q", at.Attempt, at.GetLastFailure().GetMessage()))
			}
		}
	}
	if len(retries) == 0 {
		t.Error("no retried activity in the history")
	}

	// Lake: the index's bronze ranges are contiguous and every indexed
	// object exists; objects outside the index are orphans of the killed
	// attempt (harmless: readers go through the index).
	idx := map[string]bool{}
	rows, err := wh.Pool().Query(ctx, "SELECT object_key FROM pipeline.bronze_objects")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k string
		_ = rows.Scan(&k)
		idx[k] = true
	}
	rows.Close()
	objs, err := lk.List(ctx, lake.BronzePrefix)
	if err != nil {
		t.Fatal(err)
	}
	inBucket := map[string]bool{}
	orphans := 0
	for _, o := range objs {
		inBucket[o.Key] = true
		if !idx[o.Key] {
			orphans++
		}
	}
	for k := range idx {
		if !inBucket[k] {
			t.Errorf("indexed bronze object %s missing from the bucket", k)
		}
	}
	var gaps, records int64
	_ = wh.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE prev IS NOT NULL AND prev + 1 <> start_offset), sum(records) FROM (
		SELECT start_offset, records, lag(end_offset) OVER (PARTITION BY partition ORDER BY start_offset) AS prev
		FROM pipeline.bronze_objects) x`).Scan(&gaps, &records)
	if gaps != 0 || records != int64(p.sent) {
		t.Errorf("bronze index: %d gaps, %d records for %d sent", gaps, records, p.sent)
	}
	var buf bytes.Buffer
	if b, err := os.ReadFile(filepath.Join(logDir, "worker-b.log")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "reusing bronze") || strings.Contains(l, "resuming after") {
				buf.WriteString("  " + l + "\n")
			}
		}
	}
	t.Logf("\nkill -9 of the worker mid-cycle: %d events sent (%d distinct, %d poison incl. %d by kcat); gold %d rows, exact\n"+
		"  worker B started %v after the kill; first load after restart %v after the kill (heartbeat timeout 10s)\n"+
		"  retries in history: %v\n  bronze: %d objects indexed, %d orphans in the bucket, contiguous ranges\n%s  totals %+v",
		p.sent, p.expect.Distinct, p.expect.Poison, kcatPoison, p.expect.Distinct,
		restartedAt.Sub(killedAt).Round(time.Millisecond), resumedAt.Sub(killedAt).Round(time.Millisecond),
		retries, len(idx), orphans, buf.String(), res.Totals)
	_ = io.Discard
}
