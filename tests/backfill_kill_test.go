package tests

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/tests/cluster"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/workflows"
)

// TestBackfillSurvivesKill9 runs a Backfill of one day of 240,000 records
// on two `pipeline worker` processes and kills -9 the one that is replacing
// the day's gold, in the middle of its transaction. The attempt's retry on
// the other worker (after the heartbeat timeout) finishes the day: gold
// holds every event of the day exactly once, with their payment rows, and
// the live silver files hold each event once.
func TestBackfillSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("worker processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "pipeline")
	if err := cluster.Build(moduleRoot, bin); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(stack.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/") + "_bk"
	u.Path = "/" + db
	t.Cleanup(func() { dropDatabase(db) })
	logDir := t.TempDir()
	procs := cluster.New(cluster.Config{Bin: bin, Root: moduleRoot, Dir: logDir, DatabaseURL: u.String(), Logf: t.Logf})
	t.Cleanup(func() {
		if t.Failed() {
			procs.DumpLogs(t.Logf)
		}
	})
	t.Cleanup(procs.Close)
	if err := procs.StartInfra(ctx); err != nil {
		t.Fatal(err)
	}
	store, err := warehouse.Open(ctx, warehouse.Config{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	lk, err := lake.New(lake.Config{Endpoint: procs.Getenv("S3_ENDPOINT"), Region: procs.Getenv("AWS_REGION"),
		AccessKeyID: procs.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: procs.Getenv("AWS_SECRET_ACCESS_KEY"),
		Bucket: "datalake", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}

	// The day in bronze: 12 partitions × 2 objects × 10,000 records, a fifth
	// of them payments.
	day := time.Date(2026, 10, 7, 0, 0, 0, 0, time.UTC)
	const topic = "events"
	var events, payments int
	for p := range int32(12) {
		for j := range 2 {
			recs := make([]lake.Record, 10_000)
			first := int64(j * len(recs))
			from := day.Add(time.Duration(j) * 12 * time.Hour)
			arrival := from.Add(12 * time.Hour)
			for i := range recs {
				occurred := from.Add(time.Duration(i) * 4 * time.Second).Add(time.Duration(p) * time.Millisecond)
				typ, props := "page_view", `{"path":"/p"}`
				if i%5 == 0 {
					typ, props = "payment.captured", `{"amount":"3.50","currency":"EUR"}`
					payments++
				}
				recs[i] = lake.Record{Offset: first + int64(i), Value: fmt.Appendf(nil,
					`{"event_id":%q,"type":%q,"occurred_at":%q,"received_at":%q,"user_id":"u-%d","properties":%s}`,
					uuid.NewString(), typ, occurred.Format(time.RFC3339Nano), occurred.Add(time.Second).Format(time.RFC3339Nano), i%300, props)}
				events++
			}
			var hours []time.Time
			for h := from; h.Before(from.Add(12 * time.Hour)); h = h.Add(time.Hour) {
				hours = append(hours, h)
			}
			putBronze(t, ctx, lk, store, topic, p, recs, arrival, len(recs), hours)
		}
	}

	for _, n := range []string{"worker-1", "worker-2"} {
		if err := procs.Start(n, append(procs.WorkerArgs(), "--task-queues", workflows.BatchQueue)...); err != nil {
			t.Fatal(err)
		}
	}
	tc := dialTemporalAt(t, procs.Getenv("TEMPORAL_ADDRESS"))
	run, err := starter.StartBackfill(ctx, tc, workflows.BackfillInput{From: day.Format(time.DateOnly), To: day.Format(time.DateOnly), Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	watch := watchActivities(tc, run.GetID())
	defer watch.stop()
	holder := waitFor(t, 2*time.Minute, "CommitBackfillGold running", func() (string, bool) {
		id := watch.current("CommitBackfillGold")
		return id, id != ""
	})
	time.Sleep(300 * time.Millisecond) // into the transaction: the delete and the inserts take seconds
	victim := procs.ByIdentity(holder)
	if victim == "" {
		t.Fatalf("CommitBackfillGold runs on %q, none of the worker processes %v", holder, procs.PIDs())
	}
	killedAt := time.Now()
	if err := procs.Kill(victim); err != nil {
		t.Fatal(err)
	}
	res, err := starter.WaitBackfill(ctx, tc, run, nil)
	if err != nil {
		t.Fatalf("backfill after the kill: %v", err)
	}
	d := res.Days[0]
	t.Logf("killed %s in CommitBackfillGold; the day finished %v later: %d units, %d rows, gold %d inserted, %d payments",
		victim, time.Since(killedAt).Round(100*time.Millisecond), d.Units, d.Rows, d.GoldInserted, d.GoldPayments)
	retried := false
	watch.mu.Lock()
	runs := append([]activityRun(nil), watch.runs...)
	watch.mu.Unlock()
	for _, r := range runs {
		if r.activity == "CommitBackfillGold" && r.attempt > 1 && procs.ByIdentity(r.identity) != victim {
			retried = true
		}
	}
	if !retried {
		t.Errorf("no retry of CommitBackfillGold on the other worker: %+v", runs)
	}

	conn := connect(t, u.String())
	var rows, distinct, pays, orphans int64
	err = conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT event_id),
		(SELECT count(*) FROM gold.payments), (SELECT count(*) FROM gold.payments p WHERE NOT EXISTS (SELECT 1 FROM gold.events e WHERE e.event_id = p.event_id))
		FROM gold.events`).Scan(&rows, &distinct, &pays, &orphans)
	if err != nil {
		t.Fatal(err)
	}
	if rows != int64(events) || distinct != int64(events) || pays != int64(payments) || orphans != 0 {
		t.Fatalf("gold: %d rows, %d distinct, %d payments (%d without event); want %d events, %d payments", rows, distinct, pays, orphans, events, payments)
	}
	// silver.events: the rows gold's commit inserted, each once, though the
	// commit ran twice.
	silverCfg := silver.Config{DatabaseURL: u.String(), Endpoint: procs.Getenv("S3_ENDPOINT"), Region: procs.Getenv("AWS_REGION"),
		AccessKeyID: procs.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: procs.Getenv("AWS_SECRET_ACCESS_KEY"), Bucket: "datalake"}
	ids := silvertest.IDs(t, silverCfg)
	if len(ids) != events {
		t.Fatalf("silver.events holds %d distinct events; want %d", len(ids), events)
	}
	silvertest.CheckSameAsGold(t, store.Pool(), silverCfg, 0)
}
