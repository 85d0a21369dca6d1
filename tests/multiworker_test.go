package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/acme/pipeline/internal/devstack"
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
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pipeline").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
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

	env, key := startInfra(t, bin, logDir, u.String())
	infraUp := time.Now()

	procs := &processes{t: t, bin: bin, env: env, logDir: logDir}
	apiPort, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", apiPort)
	procs.start("api", "api", "--addr", apiAddr)
	workerArgs := []string{"worker", "--metrics-addr", "", "--state-dir", filepath.Join(logDir, "state")}
	names := []string{"worker-1", "worker-2", "worker-3"}
	for _, n := range names {
		procs.start(n, workerArgs...)
	}
	if err := devstack.WaitPort(context.Background(), apiAddr, 15*time.Second); err != nil {
		procs.dumpLogs()
		t.Fatal(err)
	}

	prov := exec.Command(bin, "provision", "--timeout", "90s", filepath.Join(moduleRoot, "deploy", "blueprint.json"))
	prov.Env = env
	out, err := prov.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Stream compaction running") {
		procs.dumpLogs()
		t.Fatalf("pipeline provision: %v\n%s", err, out)
	}
	provisioned := time.Now()

	tc, err := client.Dial(client.Options{HostPort: envValue(env, "TEMPORAL_ADDRESS"), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
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
	snd := &sender{url: "http://" + apiAddr + "/v1/events", key: key}

	// 1. 15,000 events; the stream's cycle is running on some worker.
	snd.send(t, 15_000, 0)
	holder := waitFor(t, 30*time.Second, "the first gold rows and a running CompactCycle", func() (string, bool) {
		var n int64
		_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM gold.events").Scan(&n)
		id := watch.current("CompactCycle")
		return id, n > 0 && id != ""
	})
	victim := procs.byIdentity(holder)
	if victim == "" {
		t.Fatalf("CompactCycle runs on %q, which is none of the worker processes %v", holder, procs.pids())
	}

	// 2. kill -9 that worker in the middle of its cycle while 10,000 more
	// events arrive over about 3 s, then 5,000 more, then start it again.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); snd.send(t, 10_000, 150*time.Millisecond) }()
	time.Sleep(500 * time.Millisecond)
	var goldAtKill int64
	_ = pool.QueryRow(context.Background(), "SELECT count(*) FROM gold.events").Scan(&goldAtKill)
	killedAt := time.Now()
	procs.kill(victim)
	wg.Wait()
	snd.send(t, 5_000, 0)
	time.Sleep(2 * time.Second)
	procs.start(victim+"-restarted", workerArgs...)
	restartedAt := time.Now()

	// 3. Another worker takes the cycle over.
	taker := waitFor(t, 40*time.Second, "CompactCycle to run on another worker", func() (string, bool) {
		id := watch.current("CompactCycle")
		return id, id != "" && id != holder
	})
	tookOverAt := time.Now()
	snd.send(t, 5_000, 0)

	// 4. Gold holds exactly the accepted events.
	accepted := snd.ids()
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
				on[procs.name(s.identity)] = true
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
			procs.name(s.identity), s.identity, s.at.Sub(provisioned).Round(100*time.Millisecond)))
	}
	t.Logf("\n3 worker processes, 1 API, stream as provisioned (%d shards of 4 partitions: %s)\n"+
		"  %d events accepted by the API; gold.events %d rows, %d distinct, all %d accepted ids present; bronze %d records, no gap or overlap\n"+
		"  killed %s (holding CompactCycle, %d events in gold) with SIGKILL; restarted it %v later\n"+
		"  cycle taken over by %s %v after the kill; gold complete %v after the kill\n"+
		"  activity attempts seen running (DescribeWorkflowExecution):\n%s\n"+
		"  history (completed tasks) by worker: %s\n  total %v",
		shards, strings.Join(shardLines, "; "), len(accepted), rows, distinct, present, records,
		victim, goldAtKill, restartedAt.Sub(killedAt).Round(100*time.Millisecond),
		procs.name(taker), tookOverAt.Sub(killedAt).Round(100*time.Millisecond), goldAt.Sub(killedAt).Round(100*time.Millisecond),
		strings.Join(lines, "\n"), procs.describe(hist), time.Since(started).Round(100*time.Millisecond))
	t.Logf("timeline: build %v, infra %v, provision %v", built.Sub(started).Round(100*time.Millisecond),
		infraUp.Sub(built).Round(100*time.Millisecond), provisioned.Sub(infraUp).Round(100*time.Millisecond))
}

// startInfra runs `pipeline dev --infra` on free ports with its state in a
// temp dir and returns the environment its export lines give (on top of this
// process's) and the API key.
func startInfra(t *testing.T, bin, logDir, databaseURL string) (env []string, key string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		env, key, err := tryStartInfra(t, bin, logDir, databaseURL, attempt)
		if err == nil {
			return env, key
		}
		// A free port can be taken by another process before the server
		// binds it: try again on other ports.
		if attempt == 3 || !strings.Contains(err.Error(), "is taken") {
			t.Fatal(err)
		}
		t.Logf("pipeline dev --infra, attempt %d: a port was taken; trying other ports", attempt)
	}
}

func tryStartInfra(t *testing.T, bin, logDir, databaseURL string, attempt int) (env []string, key string, err error) {
	t.Helper()
	devDir := filepath.Join(logDir, fmt.Sprintf("dev-%d", attempt))
	args := []string{"dev", "--infra", "--dir", devDir, "--bin", filepath.Join(moduleRoot, "bin"),
		"--blueprint", filepath.Join(moduleRoot, "deploy", "blueprint.json")}
	for _, name := range []string{"temporal-port", "ui-port", "kafka-port", "s3-port"} {
		p, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, fmt.Sprintf("--%s=%d", name, p))
	}
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "PIPELINE_API_KEYS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errLog, err := os.Create(filepath.Join(logDir, fmt.Sprintf("infra-%d.log", attempt)))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Ctrl-C: it stops the Temporal server and the S3 store it started.
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		errLog.Close()
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	exports := map[string]string{}
	var printed []string
	deadline := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				b, _ := os.ReadFile(errLog.Name())
				return nil, "", fmt.Errorf("pipeline dev --infra exited before it was ready; stdout:\n%s\nstderr:\n%s", strings.Join(printed, "\n"), b)
			}
			printed = append(printed, l)
			if rest, ok := strings.CutPrefix(l, "export "); ok {
				k, q, _ := strings.Cut(rest, "=")
				v, err := strconv.Unquote(q)
				if err != nil {
					t.Fatalf("export line %q: %v", l, err)
				}
				exports[k] = v
			}
			if strings.HasPrefix(l, "then `bin/pipeline api`") {
				go func() {
					for range lines {
					}
				}()
				for _, k := range []string{"TEMPORAL_ADDRESS", "KAFKA_BROKERS", "S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "PIPELINE_API_KEYS"} {
					if exports[k] == "" {
						t.Fatalf("pipeline dev --infra printed no export of %s:\n%s", k, strings.Join(printed, "\n"))
					}
				}
				env = os.Environ()
				for k, v := range exports {
					env = append(env, k+"="+v)
				}
				_, key, _ = strings.Cut(strings.Split(exports["PIPELINE_API_KEYS"], ",")[0], ":")
				return env, key, nil
			}
		case <-deadline:
			t.Fatalf("pipeline dev --infra not ready after 90s; it printed:\n%s", strings.Join(printed, "\n"))
		}
	}
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// processes are the pipeline processes a test started, by name.
type processes struct {
	t      *testing.T
	bin    string
	env    []string
	logDir string
	mu     sync.Mutex
	cmds   map[string]*exec.Cmd
	byPID  map[int]string
}

func (p *processes) start(name string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env
	f, err := os.Create(filepath.Join(p.logDir, name+".log"))
	if err != nil {
		p.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	if p.cmds == nil {
		p.cmds, p.byPID = map[string]*exec.Cmd{}, map[int]string{}
		p.t.Cleanup(func() {
			if p.t.Failed() {
				p.dumpLogs()
			}
		})
	}
	p.cmds[name] = cmd
	p.byPID[cmd.Process.Pid] = name
	p.mu.Unlock()
	p.t.Cleanup(func() {
		// SIGTERM, as an orchestrator stops a process; then the hard way.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		f.Close()
	})
}

func (p *processes) kill(name string) {
	p.mu.Lock()
	cmd := p.cmds[name]
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
}

// byIdentity maps a Temporal worker identity (pid@host@...) to a process name.
func (p *processes) byIdentity(identity string) string {
	pidText, _, _ := strings.Cut(identity, "@")
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.byPID[pid]
}

func (p *processes) name(identity string) string {
	if n := p.byIdentity(identity); n != "" {
		return n
	}
	return "?"
}

func (p *processes) pids() map[int]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[int]string{}
	for k, v := range p.byPID {
		out[k] = v
	}
	return out
}

// describe formats identity → task counts by process name.
func (p *processes) describe(counts map[string]map[string]int) string {
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
		parts = append(parts, fmt.Sprintf("%s: %s", p.name(id), strings.Join(kinds, " ")))
	}
	return strings.Join(parts, "; ")
}

func (p *processes) dumpLogs() {
	entries, _ := os.ReadDir(p.logDir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(p.logDir, e.Name()))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		p.t.Logf("--- %s (tail)\n%s", e.Name(), b)
	}
}

// sender posts events to the API in NDJSON batches of 500 with client-set
// event ids, retrying a batch (same ids) until it is accepted, and keeps
// the ids of the 202s.
type sender struct {
	url, key string
	mu       sync.Mutex
	accepted []string
	n        int
}

// send posts n events, pausing between batches (0: as fast as 4 concurrent
// requests go).
func (s *sender) send(t *testing.T, n int, pause time.Duration) {
	t.Helper()
	const batch = 500
	conc := 4
	if pause > 0 {
		conc = 1
	}
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for size := range work {
				if err := s.post(size); err != nil {
					errs <- err
					return
				}
				if pause > 0 {
					time.Sleep(pause)
				}
			}
		}()
	}
	for left := n; left > 0; left -= batch {
		select {
		case work <- min(batch, left):
		case err := <-errs:
			close(work)
			wg.Wait()
			t.Error(err)
			return
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Error(err)
	default:
	}
}

func (s *sender) post(size int) error {
	var body bytes.Buffer
	ids := make([]string, size)
	s.mu.Lock()
	base := s.n
	s.n += size
	s.mu.Unlock()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7()).String()
		k := base + i
		user := fmt.Sprintf("u-%d", k%997)
		switch {
		case k%10 == 0:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"payment.succeeded","occurred_at":%q,"source":"web","user_id":%q,"properties":{"amount":"%d.90","currency":"EUR"}}`+"\n", ids[i], now, user, k%100)
		case k%10 == 1:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"audit.login","occurred_at":%q,"source":"admin","user_id":%q,"properties":{"actor":%q,"action":"login"}}`+"\n", ids[i], now, user, user)
		default:
			fmt.Fprintf(&body, `{"event_id":%q,"type":"page_view","occurred_at":%q,"source":"web","user_id":%q,"properties":{"path":"/p/%d"}}`+"\n", ids[i], now, user, k%50)
		}
	}
	var last string
	for attempt := 0; attempt < 50; attempt++ {
		req, _ := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body.Bytes()))
		req.Header.Set("Authorization", "Bearer "+s.key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			time.Sleep(200 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			var r struct {
				Accepted int      `json:"accepted"`
				EventIDs []string `json:"event_ids"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Accepted != size || len(r.EventIDs) != size {
				return fmt.Errorf("202 with %q for %d events", b, size)
			}
			s.mu.Lock()
			s.accepted = append(s.accepted, r.EventIDs...)
			s.mu.Unlock()
			return nil
		}
		last = fmt.Sprintf("%s %s", resp.Status, b)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return fmt.Errorf("POST /v1/events: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("POST /v1/events not accepted after 50 attempts: %s", last)
}

func (s *sender) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accepted)
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
