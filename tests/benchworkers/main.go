// Command benchworkers measures the live stream end to end with 1, 2 and 3
// `pipeline worker` processes (`make bench-workers`, or
// `go run ./tests/benchworkers -events 200000`).
//
// Each run is what an operator does on one machine: `pipeline dev --infra`
// on free ports with a fresh state dir and database, one `pipeline api` and
// N `pipeline worker` processes with its export lines, then the stream
// started on task queue `pipeline` as `pipeline provision` starts it
// (starter.StartStream). Once every shard's CompactCycle is running, the
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
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"

	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/tests/cluster"
	"github.com/acme/pipeline/workflows"
)

var (
	nEvents     = flag.Int("events", 200_000, "events sent through the API per run")
	workersF    = flag.String("workers", "1,2,3", "worker process counts, comma-separated")
	shardsF     = flag.String("shards", "1,3", "stream shard counts, comma-separated (1 = as `pipeline provision` starts it)")
	binF        = flag.String("bin", "", "the pipeline binary (default: built into a temp dir from ./cmd/pipeline)")
	batchSize   = flag.Int("batch", 1000, "events per API request")
	inflight    = flag.Int("inflight", 4, "API requests in flight")
	realistic   = flag.Bool("realistic", false, "events of about 230 bytes over the last 24 hours, 5% of them sent twice (cluster.Sender.Realistic)")
	pprofDir    = flag.String("pprof", "", "write CPU profiles of worker-1 and the API (their --pprof) for -pprof-seconds from the first send into this directory")
	pprofSecs   = flag.Int("pprof-seconds", 10, "length of the -pprof profile")
	niceWorkers = flag.Int("nice-workers", 0, "run the workers at this CPU priority (nice -n): does the API's latency hold when the stream yields it the CPU?")
	freshSecs   = flag.Int("fresh-seconds", 20, "after the capacity run, send -fresh-rate events/s for this long and measure freshness (0: skip)")
	freshRate   = flag.Int("fresh-rate", 10_000, "events/s of the freshness phase, in -batch requests")
)

type result struct {
	workers, shards int
	send, total     time.Duration
	cycleWorkers    int
	rows            int64
	usage           []benchutil.Usage  // CPU and peak RSS per process over total
	p50, p99        time.Duration      // API request latency (batches of -batch events)
	stages          map[string]float64 // worker-1's stage seconds over the run (summed over partitions but gold)
	readRate        float64            // a plain kafka-go reader over the topic, records/s
	parquetRate     float64            // the run's gold rows written as one plain Parquet file, rows/s
	fresh           freshResult        // the -fresh-seconds phase at -fresh-rate
	copyRate        float64            // psql \copy of the run's gold.events rows, rows/s
	kcatRate        float64            // kcat producing the same events, records/s
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
	root, err := cluster.ModuleRoot()
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
		if err := cluster.Build(root, bin); err != nil {
			return err
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
			fmt.Printf("  %d worker(s), %d shard(s): %.0f events/s end to end (%.1fs; API send %.1fs), cycles on %d worker(s); "+
				"API p50 %v p99 %v; psql \\copy %.0f rows/s (end to end %.2fx); kcat %.0f records/s (API send %.2fx)\n",
				n, shards, float64(*nEvents)/r.total.Seconds(), r.total.Seconds(), r.send.Seconds(), r.cycleWorkers,
				r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.copyRate, float64(*nEvents)/r.total.Seconds()/r.copyRate, r.kcatRate, float64(*nEvents)/r.send.Seconds()/r.kcatRate)
			fmt.Print(benchutil.UsageTable(r.usage, r.total, numCPU()))
			fmt.Print(stageTable(r))
			results = append(results, r)
		}
	}
	fmt.Printf("\n| workers | shards | events | API send s | first send → last gold row s | events/s | workers that ran cycles | API p50 ms | API p99 ms | psql \\copy rows/s | end to end / \\copy | kcat records/s | API send / kcat |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		rate := float64(r.rows) / r.total.Seconds()
		fmt.Printf("| %d | %d | %d | %.1f | %.1f | %.0f | %d | %d | %d | %.0f | %.2f | %.0f | %.2f |\n", r.workers, r.shards, r.rows, r.send.Seconds(), r.total.Seconds(),
			rate, r.cycleWorkers, r.p50.Milliseconds(), r.p99.Milliseconds(), r.copyRate, rate/r.copyRate, r.kcatRate, float64(r.rows)/r.send.Seconds()/r.kcatRate)
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

	procs := cluster.New(cluster.Config{Bin: bin, Root: root, Dir: dir, DatabaseURL: u.String()})
	defer procs.Close()
	if err := procs.StartInfra(ctx); err != nil {
		return res, err
	}
	var apiExtra []string
	var apiAdmin string
	if *pprofDir != "" {
		port, err := devstack.FreePort()
		if err != nil {
			return res, err
		}
		apiAdmin = fmt.Sprintf("127.0.0.1:%d", port)
		apiExtra = []string{"--admin-addr", apiAdmin, "--pprof"}
	}
	apiAddr, err := procs.StartAPI("api", apiExtra...)
	if err != nil {
		return res, err
	}
	// worker-1 serves its metrics (the stream's stage durations) and, with
	// -pprof, its profiles.
	var pprofAddr, metricsAddr string
	for i := range nWorkers {
		args := procs.WorkerArgs()
		if i == 0 {
			port, err := devstack.FreePort()
			if err != nil {
				return res, err
			}
			metricsAddr = fmt.Sprintf("127.0.0.1:%d", port)
			args = append(args, "--metrics-addr", metricsAddr) // the last --metrics-addr wins
			if *pprofDir != "" {
				pprofAddr = metricsAddr
				args = append(args, "--pprof")
			}
		}
		if err := procs.StartNice(fmt.Sprintf("worker-%d", i+1), *niceWorkers, args...); err != nil {
			return res, err
		}
	}
	if err := devstack.WaitPort(ctx, apiAddr, 20*time.Second); err != nil {
		return res, err
	}
	tc, err := client.Dial(client.Options{HostPort: procs.Getenv("TEMPORAL_ADDRESS"), Logger: log.NewStructuredLogger(slog.New(slog.DiscardHandler))})
	if err != nil {
		return res, err
	}
	defer tc.Close()
	runs, err := starter.StartStream(ctx, tc, workflows.StreamCompactionInput{Topic: "events", Shards: shards})
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

	stagesBefore, err := benchutil.StageSeconds(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return res, err
	}
	before := benchutil.Procs()
	t0 := time.Now()
	profiled := make(chan error, 2)
	if pprofAddr != "" {
		for name, addr := range map[string]string{"worker": pprofAddr, "api": apiAdmin} {
			go func() {
				err := benchutil.FetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, *pprofSecs),
					filepath.Join(*pprofDir, fmt.Sprintf("%s-w%d-s%d.pprof", name, nWorkers, shards)))
				if err == nil { // and what it allocated since it started
					err = benchutil.FetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/allocs", addr),
						filepath.Join(*pprofDir, fmt.Sprintf("%s-w%d-s%d.allocs.pprof", name, nWorkers, shards)))
				}
				profiled <- err
			}()
		}
	} else {
		profiled <- nil
		profiled <- nil
	}
	sent := make(chan error, 1)
	var sendDur time.Duration
	go func() {
		snd := &cluster.Sender{URL: "http://" + apiAddr + "/v1/events", Key: procs.APIKey, Batch: *batchSize, Inflight: *inflight, Realistic: *realistic}
		err := snd.Send(ctx, *nEvents, 0)
		sendDur = time.Since(t0)
		res.p50, res.p99 = snd.Latency()
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
	res.usage = benchutil.CPUUsage(before, benchutil.Procs(), processGroups(procs.PIDs()))
	res.send = sendDur
	// silver.events takes the loads beside the flushes, after gold: its
	// stage is complete once no load is pending for it.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var pending int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pipeline.loads WHERE silver_pending").Scan(&pending); err != nil {
			return res, err
		}
		if pending == 0 {
			break
		}
	}
	stagesAfter, err := benchutil.StageSeconds(ctx, "http://"+metricsAddr+"/metrics")
	if err != nil {
		return res, err
	}
	res.stages = map[string]float64{}
	for k, v := range stagesAfter {
		res.stages[k] = v - stagesBefore[k]
	}
	collect()
	var distinct int64
	if err := conn.QueryRow(ctx, "SELECT count(*), count(DISTINCT event_id) FROM gold.events").Scan(&rows, &distinct); err != nil {
		return res, err
	}
	if rows != int64(*nEvents) || distinct != rows {
		return res, fmt.Errorf("gold.events: %d rows, %d distinct, want %d", rows, distinct, *nEvents)
	}
	res.rows = rows
	// Baselines on the same machine and stack, after the run: psql \copy
	// of the rows gold holds, and kcat producing the same events (one
	// record a line, acks=all) into a topic of its own.
	if res.copyRate, _, err = benchutil.PsqlCopy(ctx, u.String(), dir); err != nil {
		return res, err
	}
	gen := &cluster.Sender{Realistic: *realistic}
	var lines [][]byte
	for first := 0; first < *nEvents; first += *batchSize {
		lines = append(lines, bytes.SplitAfter(gen.Body(first, min(*batchSize, *nEvents-first)), []byte("\n"))...)
	}
	brokers := strings.Split(procs.Getenv("KAFKA_BROKERS"), ",")
	if res.kcatRate, err = benchutil.Kcat(ctx, brokers, "kcat-baseline", 12, lines, dir); err != nil {
		return res, err
	}
	if res.readRate, _, err = benchutil.PlainRead(ctx, brokers, "events", 12); err != nil {
		return res, err
	}
	if res.parquetRate, err = benchutil.PlainParquet(ctx, u.String()); err != nil {
		return res, err
	}
	if *freshSecs > 0 {
		if res.fresh, err = freshness(ctx, conn, "http://"+apiAddr+"/v1/events", procs.APIKey, int64(*nEvents)); err != nil {
			return res, err
		}
	}
	for range 2 {
		if err := <-profiled; err != nil {
			return res, fmt.Errorf("CPU profile: %w", err)
		}
	}
	delete(cycleIDs, "")
	res.cycleWorkers = len(cycleIDs)
	return res, nil
}
