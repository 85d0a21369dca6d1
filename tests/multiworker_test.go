package tests

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/tests/cluster"
	"github.com/acme/pipeline/workflows"
)

// TestMultiWorker is the issue's scenario as an operator runs it: `pipeline
// dev --infra` (its own Temporal, broker, S3 store and database on free
// ports), then one `pipeline api` and three `pipeline worker` processes with
// the printed export lines, `pipeline provision deploy/blueprint.json`
// (which starts the stream), events through the API, kill -9 of the worker
// running the stream's CompactCycle in the middle of its cycle while events
// keep coming, more events, the killed worker started again; then gold must
// hold exactly the accepted events.
//
// The provisioned stream is one StreamCompaction workflow (shard 0 of 1)
// whose CompactCycle activity takes all 12 partitions: at any moment one
// worker process holds the whole stream, the others stand by. What this test
// proves is the take-over: the cycle's retry lands on another worker, within
// the 10 s heartbeat timeout, and nothing is lost or loaded twice. Which
// worker runs which activity attempt is read from Temporal
// (DescribeWorkflowExecution's pending activities while they run, the
// history's ActivityTaskStarted/WorkflowTaskStarted identities after).
func TestMultiWorker(t *testing.T) {
	started := time.Now()
	logDir := t.TempDir()
	bin := filepath.Join(t.TempDir(), "pipeline")
	if err := cluster.Build(moduleRoot, bin); err != nil {
		t.Fatal(err)
	}
	built := time.Now()

	// Its own database: the provision writes the catalog and the stream owns
	// gold.events there.
	u, err := url.Parse(stack.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	db := strings.TrimPrefix(u.Path, "/") + "_mw"
	u.Path = "/" + db
	t.Cleanup(func() { dropDatabase(db) })

	procs := cluster.New(cluster.Config{Bin: bin, Root: moduleRoot, Dir: logDir, DatabaseURL: u.String(), Logf: t.Logf})
	// Clean-ups run last first: stop the processes, then show their logs.
	t.Cleanup(func() {
		if t.Failed() {
			procs.DumpLogs(t.Logf)
		}
	})
	t.Cleanup(procs.Close)
	if err := procs.StartInfra(context.Background()); err != nil {
		t.Fatal(err)
	}
	infraUp := time.Now()

	apiAddr, err := procs.StartAPI("api")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"worker-1", "worker-2", "worker-3"}
	for _, n := range names {
		if err := procs.Start(n, procs.WorkerArgs()...); err != nil {
			t.Fatal(err)
		}
	}
	if err := devstack.WaitPort(context.Background(), apiAddr, 15*time.Second); err != nil {
		t.Fatal(err)
	}

	prov := exec.Command(bin, "provision", "--timeout", "90s", filepath.Join(moduleRoot, "deploy", "blueprint.json"))
	prov.Env = procs.Env
	out, err := prov.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Stream compaction running") {
		t.Fatalf("pipeline provision: %v\n%s", err, out)
	}
	provisioned := time.Now()

	tc, err := client.Dial(client.Options{HostPort: procs.Getenv("TEMPORAL_ADDRESS"), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	// The seed's 12 partitions run as 3 shards (one per 4 partitions), each
	// its own StreamCompaction workflow whose cycles any worker may take.
	const shards = 3
	if !strings.Contains(string(out), fmt.Sprintf("%d shard(s)", shards)) {
		t.Fatalf("pipeline provision did not start %d shards:\n%s", shards, out)
	}
	wfID := workflows.StreamWorkflowID("events", 0, shards)
	watch := watchActivities(tc, wfID)
	defer watch.stop()
	var others []*activityWatch
	for shard := 1; shard < shards; shard++ {
		w := watchActivities(tc, workflows.StreamWorkflowID("events", shard, shards))
		defer w.stop()
		others = append(others, w)
	}

	pool := connect(t, u.String())
	// Batches of 500, each retried every 200 ms for 10 s while the API
	// answers 503.
	snd := &cluster.Sender{URL: "http://" + apiAddr + "/v1/events", Key: procs.APIKey, Batch: 500, Attempts: 50, RetryWait: 200 * time.Millisecond}
	send := func(n int, pause time.Duration) {
		if err := snd.Send(context.Background(), n, pause); err != nil {
			t.Error(err)
		}
	}

	// 1. 15,000 events; the stream's cycle is running on some worker.
	send(15_000, 0)
	// The API and the workers connect with their own roles
	// (016_process_roles), not the owner's: the API once it has
	// accepted events to count.
	waitFor(t, 30*time.Second, "sessions of pipeline_api and pipeline_worker", func() (string, bool) {
		var roles []string
		rows, _ := pool.Query(context.Background(), `SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = $1 ORDER BY 1`, db)
		roles, _ = pgx.CollectRows(rows, pgx.RowTo[string])
		return strings.Join(roles, ","), slices.Contains(roles, "pipeline_api") && slices.Contains(roles, "pipeline_worker")
	})
	holder := waitFor(t, 30*time.Second, "the first gold rows and a running CompactCycle", func() (string, bool) {
		var n int64
		_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM gold.events").Scan(&n)
		id := watch.current("CompactCycle")
		return id, n > 0 && id != ""
	})
	victim := procs.ByIdentity(holder)
	if victim == "" {
		t.Fatalf("CompactCycle runs on %q, which is none of the worker processes %v", holder, procs.PIDs())
	}

	// 2. kill -9 that worker in the middle of its cycle while 10,000 more
	// events arrive over about 3 s, then 5,000 more, then start it again.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); send(10_000, 150*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	var goldAtKill int64
	_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM gold.events").Scan(&goldAtKill)
	killedAt := time.Now()
	if err := procs.Kill(victim); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	send(5_000, 0)
	time.Sleep(2 * time.Second)
	if err := procs.Start(victim+"-restarted", procs.WorkerArgs()...); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()

	// 3. Another worker takes the cycle over.
	taker := waitFor(t, 40*time.Second, "CompactCycle to run on another worker", func() (string, bool) {
		id := watch.current("CompactCycle")
		return id, id != "" && id != holder
	})
	tookOverAt := time.Now()
	send(5_000, 0)

	// 4. Gold holds exactly the accepted events.
	accepted := snd.IDs()
	waitFor(t, 60*time.Second, fmt.Sprintf("gold.events to hold the %d accepted events", len(accepted)), func() (string, bool) {
		var n int64
		_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM gold.events").Scan(&n)
		return strconv.FormatInt(n, 10), n >= int64(len(accepted))
	})
	goldAt := time.Now()
	time.Sleep(2 * time.Second) // a late duplicate load would show now
	var rows, distinct, present int64
	ctx := context.Background()
	if err := pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT event_id) FROM gold.events").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM gold.events WHERE event_id = ANY($1::uuid[])", accepted).Scan(&present); err != nil {
		t.Fatal(err)
	}
	if rows != int64(len(accepted)) || distinct != rows || present != rows {
		t.Errorf("gold.events: %d rows, %d distinct, %d of the %d accepted ids present; want all equal", rows, distinct, present, len(accepted))
	}
	// Consumed once: the bronze index covers every partition's offsets
	// without gap or overlap, one record per accepted event, nothing
	// quarantined.
	var gaps, overlaps, records, quarantined int64
	if err := pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE prev IS NOT NULL AND prev + 1 < start_offset),
			count(*) FILTER (WHERE prev IS NOT NULL AND prev + 1 > start_offset),
			coalesce(sum(records), 0), coalesce(sum(quarantined), 0)
		FROM (SELECT start_offset, records, quarantined,
			lag(end_offset) OVER (PARTITION BY topic, partition ORDER BY start_offset) AS prev
			FROM pipeline.bronze_objects WHERE topic = 'events') x`).Scan(&gaps, &overlaps, &records, &quarantined); err != nil {
		t.Fatal(err)
	}
	if gaps != 0 || overlaps != 0 || records != int64(len(accepted)) || quarantined != 0 {
		t.Errorf("bronze index: %d gaps, %d overlaps, %d records, %d quarantined; want 0, 0, %d, 0", gaps, overlaps, records, quarantined, len(accepted))
	}

	// Who ran what: the live view and the history.
	watch.stop()
	seen := watch.seen()
	cycleWorkers := map[string]bool{}
	var shardLines []string
	for i, w := range append([]*activityWatch{watch}, others...) {
		w.stop()
		on := map[string]bool{}
		for _, s := range w.seen() {
			if s.activity == "CompactCycle" {
				cycleWorkers[s.identity] = true
				on[processName(procs, s.identity)] = true
			}
		}
		shardLines = append(shardLines, fmt.Sprintf("shard %d on %v", i, slices.Sorted(maps.Keys(on))))
	}
	if len(cycleWorkers) < 2 {
		t.Errorf("CompactCycle of the %d shards ran on %d worker(s), want at least 2: %v", shards, len(cycleWorkers), shardLines)
	}
	// The take-over is the retry of the killed attempt, not a later cycle.
	retried := false
	for _, s := range seen {
		retried = retried || (s.activity == "CompactCycle" && s.attempt > 1 && s.identity != holder)
	}
	if !retried {
		t.Errorf("no retry of the killed CompactCycle on another worker: %v", seen)
	}
	hist := historyIdentities(t, tc, wfID)
	var lines []string
	for _, s := range seen {
		lines = append(lines, fmt.Sprintf("    %-13s attempt %d on %-9s (%s) from +%v", s.activity, s.attempt,
			processName(procs, s.identity), s.identity, s.at.Sub(provisioned).Round(100*time.Millisecond)))
	}
	t.Logf("\n3 worker processes, 1 API, stream as provisioned (%d shards of 4 partitions: %s)\n"+
		"  %d events accepted by the API; gold.events %d rows, %d distinct, all %d accepted ids present; bronze %d records, no gap or overlap\n"+
		"  killed %s (holding CompactCycle, %d events in gold) with SIGKILL; restarted it %v later\n"+
		"  cycle taken over by %s %v after the kill; gold complete %v after the kill\n"+
		"  activity attempts seen running (DescribeWorkflowExecution):\n%s\n"+
		"  history (completed tasks) by worker: %s\n  total %v",
		shards, strings.Join(shardLines, "; "), len(accepted), rows, distinct, present, records,
		victim, goldAtKill, restartedAt.Sub(killedAt).Round(100*time.Millisecond),
		processName(procs, taker), tookOverAt.Sub(killedAt).Round(100*time.Millisecond), goldAt.Sub(killedAt).Round(100*time.Millisecond),
		strings.Join(lines, "\n"), describe(procs, hist), time.Since(started).Round(100*time.Millisecond))
	t.Logf("timeline: build %v, infra %v, provision %v", built.Sub(started).Round(100*time.Millisecond),
		infraUp.Sub(built).Round(100*time.Millisecond), provisioned.Sub(infraUp).Round(100*time.Millisecond))
}

// processName is the name of the process with that Temporal worker
// identity, "?" for none.
func processName(c *cluster.Cluster, identity string) string {
	if n := c.ByIdentity(identity); n != "" {
		return n
	}
	return "?"
}

// describe formats identity → task counts by process name.
func describe(c *cluster.Cluster, counts map[string]map[string]int) string {
	var ids []string
	for id := range counts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		var kinds []string
		for k, n := range counts[id] {
			kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
		}
		slices.Sort(kinds)
		parts = append(parts, fmt.Sprintf("%s: %s", processName(c, id), strings.Join(kinds, " ")))
	}
	return strings.Join(parts, "; ")
}

// activityRun is one activity attempt seen running on a worker.
type activityRun struct {
	activity string
	attempt  int32
	identity string
	at       time.Time
}

// activityWatch polls DescribeWorkflowExecution every 100 ms and records
// each (activity, attempt, worker) it sees running: a retried attempt's
// worker is visible there only, since the history keeps one
// ActivityTaskStarted per activity (that of the last attempt).
type activityWatch struct {
	mu     sync.Mutex
	runs   []activityRun
	now    map[string]string // activity type → identity of the running attempt
	cancel context.CancelFunc
	done   chan struct{}
}

func watchActivities(tc client.Client, wfID string) *activityWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &activityWatch{cancel: cancel, done: make(chan struct{}), now: map[string]string{}}
	go func() {
		defer close(w.done)
		type key struct {
			activity string
			attempt  int32
			identity string
		}
		seen := map[key]bool{}
		for ctx.Err() == nil {
			d, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
			if err == nil {
				now := map[string]string{}
				w.mu.Lock()
				for _, pa := range d.GetPendingActivities() {
					id := pa.GetLastWorkerIdentity()
					if pa.GetState() != enumspb.PENDING_ACTIVITY_STATE_STARTED || id == "" {
						continue
					}
					typ := pa.GetActivityType().GetName()
					now[typ] = id
					k := key{typ, pa.GetAttempt(), id}
					if !seen[k] {
						seen[k] = true
						w.runs = append(w.runs, activityRun{typ, pa.GetAttempt(), id, time.Now()})
					}
				}
				w.now = now
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *activityWatch) current(activity string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now[activity]
}

func (w *activityWatch) seen() []activityRun {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.runs)
}

func (w *activityWatch) stop() {
	w.cancel()
	<-w.done
}

// historyIdentities counts the started tasks of the workflow's history
// (every run of its chain so far) by worker identity and kind.
func historyIdentities(t *testing.T, tc client.Client, wfID string) map[string]map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out := map[string]map[string]int{}
	scheduled := map[int64]string{}
	it := tc.GetWorkflowHistory(ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		var id, kind string
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[e.GetEventId()] = e.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			a := e.GetActivityTaskStartedEventAttributes()
			id, kind = a.GetIdentity(), scheduled[a.GetScheduledEventId()]
			if a.GetAttempt() > 1 {
				kind += fmt.Sprintf("(attempt %d)", a.GetAttempt())
			}
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_STARTED:
			id, kind = e.GetWorkflowTaskStartedEventAttributes().GetIdentity(), "WorkflowTask"
		}
		if id == "" {
			continue
		}
		if out[id] == nil {
			out[id] = map[string]int{}
		}
		out[id][kind]++
	}
	return out
}

// waitFor polls cond every 100 ms until it holds, failing the test after
// timeout; it returns cond's value.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (string, bool)) string {
	t.Helper()
	var v string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if v, ok = cond(); ok {
			return v
		}
	}
	t.Fatalf("waited %v for %s; last %q", timeout, what, v)
	return ""
}

func connect(t *testing.T, databaseURL string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}
