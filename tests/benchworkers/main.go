// Command benchworkers measures the live stream end to end with 1, 2 and 3
// `pipeline worker` processes (`make bench-workers`, or
// `go run ./tests/benchworkers -events 200000`).
//
// Each run is what an operator does on one machine: `pipeline dev --infra`
// on free ports with a fresh state dir and database, one `pipeline api` and
// N `pipeline worker` processes with its export lines, then the stream
// started on task queue `pipeline` as `pipeline provision` starts it
// (workflows.StartStream). Once every shard's CompactCycle is running, the
// program sends -events events through the API (NDJSON batches of 1,000,
// 4 requests in flight) and measures from the first send to the moment
// gold.events holds them all (polled every 50 ms), then checks gold
// (count = distinct = sent).
//
// Every worker count runs with each -shards value: 1 shard is the
// provisioned layout (one StreamCompaction workflow whose CompactCycle takes
// all 12 partitions, so one worker holds the stream and the others stand by);
// 3 shards are three workflows of 4 partitions each, whose cycles Temporal
// hands to whichever worker polls. The table says on how many distinct
// worker processes the cycles ran.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/workflows"
)

var (
	nEvents   = flag.Int("events", 200_000, "events sent through the API per run")
	workersF  = flag.String("workers", "1,2,3", "worker process counts, comma-separated")
	shardsF   = flag.String("shards", "1,3", "stream shard counts, comma-separated (1 = as `pipeline provision` starts it)")
	binF      = flag.String("bin", "", "the pipeline binary (default: built into a temp dir from ./cmd/pipeline)")
	batchSize = flag.Int("batch", 1000, "events per API request")
	inflight  = flag.Int("inflight", 4, "API requests in flight")
)

type result struct {
	workers, shards int
	send, total     time.Duration
	cycleWorkers    int
	rows            int64
}

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "benchworkers:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q: want positive integers", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func run(ctx context.Context) error {
	workerCounts, err := ints(*workersF)
	if err != nil {
		return fmt.Errorf("-workers %w", err)
	}
	shardCounts, err := ints(*shardsF)
	if err != nil {
		return fmt.Errorf("-shards %w", err)
	}
	root, err := findModuleRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchworkers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := *binF
	if bin == "" {
		bin = filepath.Join(tmp, "pipeline")
		if out, err := exec.Command("go", "build", "-o", bin, filepath.Join(root, "cmd", "pipeline")).CombinedOutput(); err != nil {
			return fmt.Errorf("build: %v\n%s", err, out)
		}
	}
	fmt.Printf("%d events per run through the API (batches of %d, %d in flight); %d CPUs\n", *nEvents, *batchSize, *inflight, numCPU())
	var results []result
	for _, shards := range shardCounts {
		for _, n := range workerCounts {
			r, err := runOnce(ctx, root, bin, tmp, n, shards)
			if err != nil {
				return fmt.Errorf("%d workers, %d shards: %w", n, shards, err)
			}
			fmt.Printf("  %d worker(s), %d shard(s): %.0f events/s end to end (%.1fs; API send %.1fs), cycles on %d worker(s)\n",
				n, shards, float64(*nEvents)/r.total.Seconds(), r.total.Seconds(), r.send.Seconds(), r.cycleWorkers)
			results = append(results, r)
		}
	}
	fmt.Printf("\n| workers | shards | events | API send s | first send → last gold row s | events/s | workers that ran cycles |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Printf("| %d | %d | %d | %.1f | %.1f | %.0f | %d |\n", r.workers, r.shards, r.rows, r.send.Seconds(), r.total.Seconds(),
			float64(r.rows)/r.total.Seconds(), r.cycleWorkers)
	}
	return nil
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}

// runOnce runs one configuration on its own infrastructure.
func runOnce(ctx context.Context, root, bin, tmp string, nWorkers, shards int) (result, error) {
	res := result{workers: nWorkers, shards: shards}
	dir, err := os.MkdirTemp(tmp, fmt.Sprintf("w%d-s%d-", nWorkers, shards))
	if err != nil {
		return res, err
	}
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/pipeline?sslmode=disable"
	}
	u, err := url.Parse(base)
	if err != nil {
		return res, err
	}
	db := fmt.Sprintf("bench_workers_%d", time.Now().UnixNano()%1_000_000_000)
	u.Path = "/" + db
	defer dropDatabase(u)

	var procs procSet
	defer procs.stopAll()
	var env []string
	var key string
	for attempt := 1; ; attempt++ {
		env, key, err = startInfra(ctx, &procs, root, bin, filepath.Join(dir, fmt.Sprintf("try%d", attempt)), u.String())
		// A free port can be taken by another process before the server
		// binds it: try again on other ports.
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "is taken") {
			break
		}
	}
	if err != nil {
		return res, err
	}
	apiPort, err := devstack.FreePort()
	if err != nil {
		return res, err
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", apiPort)
	if err := procs.start(bin, env, dir, "api", "api", "--addr", apiAddr); err != nil {
		return res, err
	}
	for i := range nWorkers {
		if err := procs.start(bin, env, dir, fmt.Sprintf("worker-%d", i+1), "worker", "--metrics-addr", "",
			"--state-dir", filepath.Join(dir, "state")); err != nil {
			return res, err
		}
	}
	if err := devstack.WaitPort(ctx, apiAddr, 20*time.Second); err != nil {
		return res, err
	}
	tc, err := client.Dial(client.Options{HostPort: envValue(env, "TEMPORAL_ADDRESS"), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return res, err
	}
	defer tc.Close()
	runs, err := workflows.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: "events", Shards: shards})
	if err != nil {
		return res, err
	}
	defer func() {
		for _, r := range runs {
			_ = tc.TerminateWorkflow(context.Background(), r.GetID(), "", "benchmark done")
		}
	}()
	// Every shard's cycle running: the workers are polling and the
	// stream's start-up is done.
	cycleIDs := map[string]bool{}
	collect := func() int {
		running := 0
		for _, r := range runs {
			d, err := tc.DescribeWorkflowExecution(ctx, r.GetID(), "")
			if err != nil {
				continue
			}
			for _, pa := range d.GetPendingActivities() {
				if pa.GetActivityType().GetName() == "CompactCycle" && pa.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED {
					running++
					cycleIDs[pa.GetLastWorkerIdentity()] = true
				}
			}
		}
		return running
	}
	for deadline := time.Now().Add(60 * time.Second); collect() < shards; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the stream's %d CompactCycle activities not all running after 60s", shards)
		}
	}

	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return res, err
	}
	defer conn.Close(context.Background())

	t0 := time.Now()
	sent := make(chan error, 1)
	var sendDur time.Duration
	go func() {
		err := send(ctx, "http://"+apiAddr+"/v1/events", key, *nEvents)
		sendDur = time.Since(t0)
		sent <- err
	}()
	var rows int64
	lastCollect := time.Now()
	for done := false; ; time.Sleep(50 * time.Millisecond) {
		if !done {
			select {
			case err := <-sent:
				if err != nil {
					return res, err
				}
				done = true
			default:
			}
		}
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM gold.events").Scan(&rows); err != nil {
			return res, err
		}
		if done && rows >= int64(*nEvents) {
			break
		}
		if time.Since(lastCollect) > time.Second {
			collect()
			lastCollect = time.Now()
		}
		if time.Since(t0) > 10*time.Minute {
			return res, fmt.Errorf("gold.events holds %d of %d after 10 minutes", rows, *nEvents)
		}
	}
	res.total = time.Since(t0)
	res.send = sendDur
	collect()
	var distinct int64
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT event_id) FROM gold.events").Scan(&rows, &distinct); err != nil {
		return res, err
	}
	if rows != int64(*nEvents) || distinct != rows {
		return res, fmt.Errorf("gold.events: %d rows, %d distinct, want %d", rows, distinct, *nEvents)
	}
	res.rows = rows
	delete(cycleIDs, "")
	res.cycleWorkers = len(cycleIDs)
	return res, nil
}

// send posts n events as NDJSON batches with client-set event ids; a batch
// is retried (same ids) until the API accepts it.
func send(ctx context.Context, endpoint, key string, n int) error {
	work := make(chan int)
	errc := make(chan error, *inflight)
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 30 * time.Second}
	for range *inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body bytes.Buffer
			for first := range work {
				body.Reset()
				now := time.Now().UTC().Format(time.RFC3339Nano)
				size := min(*batchSize, n-first)
				for i := range size {
					k := first + i
					id := uuid.Must(uuid.NewV7()).String()
					user := fmt.Sprintf("u-%d", k%997)
					switch k % 10 {
					case 0:
						fmt.Fprintf(&body, `{"event_id":%q,"type":"payment.succeeded","occurred_at":%q,"source":"web","user_id":%q,"properties":{"amount":"%d.90","currency":"EUR"}}`+"\n", id, now, user, k%100)
					case 1:
						fmt.Fprintf(&body, `{"event_id":%q,"type":"audit.login","occurred_at":%q,"source":"admin","user_id":%q,"properties":{"actor":%q,"action":"login"}}`+"\n", id, now, user, user)
					default:
						fmt.Fprintf(&body, `{"event_id":%q,"type":"page_view","occurred_at":%q,"source":"web","user_id":%q,"properties":{"path":"/p/%d"}}`+"\n", id, now, user, k%50)
					}
				}
				if err := post(ctx, hc, endpoint, key, body.Bytes(), size); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
loop:
	for first := 0; first < n; first += *batchSize {
		select {
		case work <- first:
		case err = <-errc:
			break loop
		case <-ctx.Done():
			err = ctx.Err()
			break loop
		}
	}
	close(work)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func post(ctx context.Context, hc *http.Client, endpoint, key string, body []byte, size int) error {
	var last string
	for range 100 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			last = err.Error()
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusAccepted:
			var r struct {
				Accepted int `json:"accepted"`
			}
			if err := json.Unmarshal(b, &r); err != nil || r.Accepted != size {
				return fmt.Errorf("202 with %q for %d events", b, size)
			}
			return nil
		case http.StatusServiceUnavailable:
			last = resp.Status
			time.Sleep(100 * time.Millisecond)
		default:
			return fmt.Errorf("POST /v1/events: %s %s", resp.Status, b)
		}
	}
	return fmt.Errorf("POST /v1/events not accepted after 100 attempts: %s", last)
}

// procSet holds the processes of one run, stopped in reverse order.
type procSet struct {
	stops []func()
}

func (p *procSet) stopAll() {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	p.stops = nil
}

func (p *procSet) start(bin string, env []string, dir, name string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	p.stops = append(p.stops, func() { stopProcess(cmd, syscall.SIGTERM, 10*time.Second); f.Close() })
	return nil
}

func stopProcess(cmd *exec.Cmd, sig os.Signal, grace time.Duration) {
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// startInfra runs `pipeline dev --infra` on free ports and returns the
// environment its export lines give and the API key.
func startInfra(ctx context.Context, procs *procSet, root, bin, dir, databaseURL string) ([]string, string, error) {
	args := []string{"dev", "--infra", "--dir", filepath.Join(dir, "dev"), "--bin", filepath.Join(root, "bin"),
		"--blueprint", filepath.Join(root, "deploy", "blueprint.json")}
	for _, name := range []string{"temporal-port", "ui-port", "kafka-port", "s3-port"} {
		p, err := devstack.FreePort()
		if err != nil {
			return nil, "", err
		}
		args = append(args, fmt.Sprintf("--%s=%d", name, p))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL, "PIPELINE_API_KEYS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	errLog, err := os.Create(filepath.Join(dir, "infra.log"))
	if err != nil {
		return nil, "", err
	}
	cmd.Stderr = errLog
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	procs.stops = append(procs.stops, func() { stopProcess(cmd, syscall.SIGINT, 30*time.Second); errLog.Close() })
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
				return nil, "", fmt.Errorf("pipeline dev --infra exited before it was ready:\n%s\n%s", strings.Join(printed, "\n"), b)
			}
			printed = append(printed, l)
			if rest, ok := strings.CutPrefix(l, "export "); ok {
				k, q, _ := strings.Cut(rest, "=")
				if v, err := strconv.Unquote(q); err == nil {
					exports[k] = v
				}
			}
			if strings.HasPrefix(l, "then `bin/pipeline api`") {
				go func() {
					for range lines {
					}
				}()
				env := os.Environ()
				for k, v := range exports {
					env = append(env, k+"="+v)
				}
				_, key, _ := strings.Cut(strings.Split(exports["PIPELINE_API_KEYS"], ",")[0], ":")
				if key == "" || exports["TEMPORAL_ADDRESS"] == "" {
					return nil, "", fmt.Errorf("pipeline dev --infra printed no API key or Temporal address:\n%s", strings.Join(printed, "\n"))
				}
				return env, key, nil
			}
		case <-deadline:
			return nil, "", fmt.Errorf("pipeline dev --infra not ready after 90s:\n%s", strings.Join(printed, "\n"))
		case <-ctx.Done():
			return nil, "", ctx.Err()
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

func findModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// dropDatabase drops the run's database (u's path) through the server's
// postgres database.
func dropDatabase(u *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := strings.TrimPrefix(u.Path, "/")
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
