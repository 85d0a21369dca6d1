// Command benchbackfill measures the Backfill workflow on days of 1M and 5M
// events (`make bench-backfill`, or `go run ./tests/benchbackfill -sizes
// 1000000`), with the peak memory of the batch workers.
//
// It starts the embedded stack (Temporal dev server, kfake, versitygw,
// PostgreSQL) in a temp dir on free ports and writes, for each size, one UTC
// day of N records (page views, clicks and searches; payments in five
// currencies with refunds; audit events; about 1% client retries resending an
// event_id) as bronze objects of about 10,000 records each (the size the
// stream writes), with their rows in pipeline.bronze_objects, through the
// same lake and warehouse calls the stream uses.
//
// Then, per size, a first end-to-end Backfill loads the empty day, and every
// timed run replaces the loaded day, as a real backfill does: -runs
// end-to-end runs (silver, gold, marts) with one worker process, then with
// two (this program re-executed with -worker and the stack's environment).
// The table gives each run, the median per mode, and each worker process's
// peak resident memory (VmHWM from /proc) over its runs. After every run
// gold.events, gold.payments, gold.audit_log and the marts' totals are
// checked against the generator's own tallies.
//
// Baseline in the same run: `psql \copy` of the same distinct rows (decoded
// by event.Decode, first received wins) from CSV into one plain table
// without index.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/starter"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/tests/cluster"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

const topic = "events"

var (
	sizes         = flag.String("sizes", "1000000,5000000", "records per day, one day per size (about 1% of them resend an earlier event_id)")
	partitions    = flag.Int("partitions", 12, "bronze partitions")
	objectRecords = flag.Int("object-records", 10_000, "records per bronze object")
	dupRate       = flag.Float64("dup", 0.01, "share of records that resend an earlier event of their object")
	runs          = flag.Int("runs", 2, "timed runs per size and mode (the median is reported)")
	twoProcs      = flag.Bool("two-workers", true, "also run with two worker processes")
	workerMode    = flag.Bool("worker", false, "internal: run a pipeline worker against the stack in the environment")
)

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if *workerMode {
		err = runWorker(ctx)
	} else {
		err = run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchbackfill:", err)
		os.Exit(1)
	}
}

// runWorker serves batch-jobs with a Backfiller until it is signalled, as
// `pipeline worker` does.
func runWorker(ctx context.Context) error {
	level := slog.LevelWarn
	if os.Getenv("BENCH_WORKER_LOG") == "info" {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	store, err := warehouse.Open(ctx, warehouse.Config{URL: os.Getenv("DATABASE_URL")})
	if err != nil {
		return err
	}
	defer store.Close()
	lk, err := lake.New(lake.Config{Endpoint: os.Getenv("S3_ENDPOINT"), Region: os.Getenv("AWS_REGION"),
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		Bucket: os.Getenv("S3_BUCKET"), PathStyle: true})
	if err != nil {
		return err
	}
	tc, err := starter.Dial(starter.DialConfig{Address: os.Getenv("TEMPORAL_ADDRESS"), Namespace: "default"}, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	bf, err := activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store, Running: activities.WorkflowRunning(tc),
		Silver: silver.Config{DatabaseURL: os.Getenv("DATABASE_URL"), Endpoint: os.Getenv("S3_ENDPOINT"), Region: os.Getenv("AWS_REGION"),
			AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY")}})
	if err != nil {
		return err
	}
	return worker.Run(ctx, worker.Config{Client: tc, Store: store, Backfiller: bf, Log: log})
}

type result struct {
	size     int
	mode     string
	secs     []float64
	rssMiB   []float64 // peak RSS of each worker process
	copySecs float64
	distinct int64
	units    int
}

func run(ctx context.Context) error {
	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-sizes: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	moduleRoot, err := cluster.ModuleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchbackfill-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ports := make([]int, 4)
	for i := range ports {
		if ports[i], err = devstack.FreePort(); err != nil {
			return err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dbName := fmt.Sprintf("bench_backfill_%d", time.Now().UnixNano()%1_000_000_000)
	sctx, scancel := context.WithTimeout(ctx, 2*time.Minute)
	stack, err := devstack.Start(sctx, devstack.Config{
		Dir: filepath.Join(dir, "stack"), BinDir: filepath.Join(moduleRoot, "bin"),
		TemporalPort: ports[0], TemporalUIPort: ports[1], KafkaPort: ports[2], S3Port: ports[3],
		DatabaseURL: os.Getenv("DATABASE_URL"), Database: dbName, CreateResources: true, Log: log,
	})
	scancel()
	if err != nil {
		return fmt.Errorf("start the stack (run `make tools`): %w", err)
	}
	defer func() {
		if err := stack.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "stop stack:", err)
		}
		if os.Getenv("DATABASE_URL") == "" && stack.PostgresOrigin == "local server" {
			dropDatabase(dbName)
		}
	}()
	fmt.Printf("stack up: temporal %s, s3 %s, postgres %s (%s)\n", stack.TemporalAddress, stack.S3Endpoint, dbName, stack.PostgresOrigin)
	store, err := warehouse.Open(ctx, warehouse.Config{URL: stack.DatabaseURL})
	if err != nil {
		return err
	}
	defer store.Close()
	lk, err := lake.New(lake.Config{Endpoint: stack.S3Endpoint, Region: stack.Region, AccessKeyID: stack.AccessKeyID,
		SecretAccessKey: stack.SecretAccessKey, Bucket: stack.Bucket, PathStyle: true})
	if err != nil {
		return err
	}
	if err := lk.EnsureBucket(ctx); err != nil {
		return err
	}
	tc, err := starter.Dial(starter.DialConfig{Address: stack.TemporalAddress, Namespace: "default"}, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	b := &bench{store: store, tc: tc, env: append(append(os.Environ(), stack.Env()...), "S3_BUCKET="+stack.Bucket)}

	var results []result
	for i, n := range ns {
		day := warehouse.Day{Year: 2026, Month: 11, Day: 20 + i}
		start, _ := day.Bounds(time.UTC)
		t0 := time.Now()
		csvPath := filepath.Join(dir, "wide.csv")
		tl, err := writeBronze(ctx, lk, store, start, n, int64(i)*1_000_000_000, csvPath)
		if err != nil {
			return err
		}
		fmt.Printf("\n%s: %d records (%d distinct, %d resent ids; %d payment.*, %d audit.*), %d objects, %.0f MiB of bronze, written in %.1fs\n",
			day, tl.records, tl.distinct, tl.dups, tl.payments, tl.audit, tl.objects, float64(tl.bronzeBytes)/(1<<20), time.Since(t0).Seconds())
		copySecs, err := b.baseline(ctx, stack.DatabaseURL, csvPath, tl.distinct)
		if err != nil {
			return err
		}
		os.Remove(csvPath)
		b.day, b.tl = day, tl
		modes := []int{1}
		if *twoProcs {
			modes = append(modes, 2)
		}
		for _, procs := range modes {
			r, err := b.mode(ctx, procs, procs == 1)
			if err != nil {
				return err
			}
			r.size, r.copySecs, r.distinct = n, copySecs, tl.distinct
			results = append(results, r)
		}
	}

	fmt.Printf("\nBackfill end to end (silver, gold, marts) of one day, replacing a loaded day; %d runs per row\n", *runs)
	fmt.Printf("%-10s %-9s %6s %-22s %9s %10s %9s %-18s\n", "events", "workers", "units", "runs (s)", "median s", "events/s", `\copy ×`, "peak RSS (MiB)")
	for _, r := range results {
		med := benchutil.Median(r.secs)
		var runsText, rssText []string
		for _, s := range r.secs {
			runsText = append(runsText, fmt.Sprintf("%.1f", s))
		}
		for _, m := range r.rssMiB {
			rssText = append(rssText, fmt.Sprintf("%.0f", m))
		}
		fmt.Printf("%-10d %-9s %6d %-22s %9.1f %10.0f %9.1f %-18s\n", r.size, r.mode, r.units, strings.Join(runsText, " "), med,
			float64(r.distinct)/med, med/r.copySecs, strings.Join(rssText, " "))
	}
	for _, r := range results {
		if r.mode == "1 worker" {
			fmt.Printf("baseline %d events: psql \\copy of the distinct rows into one plain table without index: %.1fs (%.0f rows/s)\n",
				r.size, r.copySecs, float64(r.distinct)/r.copySecs)
		}
	}
	fmt.Println("verified after every run: gold.events = distinct events, gold.payments, gold.audit_log and the marts' totals exact")
	return nil
}

// bench runs Backfills of one day against the stack.
type bench struct {
	store *warehouse.Store
	tc    client.Client
	env   []string
	day   warehouse.Day
	tl    tally
}

// baseline times psql \copy of the day's distinct rows into a plain table.
func (b *bench) baseline(ctx context.Context, url, csvPath string, distinct int64) (float64, error) {
	if _, err := b.store.Pool().Exec(ctx, `DROP TABLE IF EXISTS bench_wide; CREATE TABLE bench_wide (
  event_id uuid, event_type text, occurred_at timestamptz, received_at timestamptz, source text, user_id text,
  properties jsonb, amount numeric(18,6), currency text, actor text, action text, outcome text,
  kafka_partition integer, kafka_offset bigint)`); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if out, err := exec.CommandContext(ctx, "psql", url, "-v", "ON_ERROR_STOP=1", "-q",
		"-c", fmt.Sprintf(`\copy bench_wide FROM '%s' WITH (FORMAT csv)`, csvPath)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	secs := time.Since(t0).Seconds()
	var copied int64
	if err := b.store.Pool().QueryRow(ctx, "SELECT count(*) FROM bench_wide").Scan(&copied); err != nil {
		return 0, err
	}
	if copied != distinct {
		return 0, fmt.Errorf("\\copy loaded %d rows, want %d", copied, distinct)
	}
	_, err := b.store.Pool().Exec(ctx, "DROP TABLE bench_wide")
	return secs, err
}

// mode starts procs worker processes, runs -runs Backfills of the day (after
// a first load when first is set) and reads each process's peak RSS.
func (b *bench) mode(ctx context.Context, procs int, first bool) (result, error) {
	r := result{mode: fmt.Sprintf("%d worker", procs)}
	if procs > 1 {
		r.mode += "s"
	}
	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			wait := make(chan struct{})
			go func() { _ = c.Wait(); close(wait) }()
			select {
			case <-wait:
			case <-time.After(15 * time.Second):
				_ = c.Process.Kill()
				<-wait
			}
		}
	}()
	for range procs {
		cmd := exec.Command(self, "-worker")
		cmd.Env, cmd.Stdout, cmd.Stderr = b.env, os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return r, err
		}
		cmds = append(cmds, cmd)
	}
	if first {
		if _, _, err := b.backfill(ctx, "first load"); err != nil {
			return r, err
		}
	}
	for i := range *runs {
		secs, units, err := b.backfill(ctx, fmt.Sprintf("%s run %d", r.mode, i+1))
		if err != nil {
			return r, err
		}
		r.secs, r.units = append(r.secs, secs), units
	}
	for _, c := range cmds {
		kib, err := peakRSS(c.Process.Pid)
		if err != nil {
			return r, err
		}
		r.rssMiB = append(r.rssMiB, float64(kib)/1024)
	}
	return r, nil
}

// backfill runs one end-to-end Backfill of the day and checks gold and the
// marts.
func (b *bench) backfill(ctx context.Context, what string) (float64, int, error) {
	// Every timed run starts from the same table state: dead tuples of the
	// previous replacement vacuumed, statistics fresh.
	if _, err := b.store.Pool().Exec(ctx, "VACUUM ANALYZE gold.events, gold.payments, gold.audit_log, pipeline.silver_objects"); err != nil {
		return 0, 0, fmt.Errorf("vacuum: %w", err)
	}
	t0 := time.Now()
	run, err := starter.StartBackfill(ctx, b.tc, workflows.BackfillInput{From: b.day.String(), To: b.day.String(), Topic: topic, Concurrency: 4})
	if err != nil {
		return 0, 0, err
	}
	var res workflows.BackfillResult
	if err := run.Get(ctx, &res); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", what, err)
	}
	secs := time.Since(t0).Seconds()
	if len(res.Days) != 1 {
		return 0, 0, fmt.Errorf("%s: %d days reported", what, len(res.Days))
	}
	d := res.Days[0]
	if d.Rows != b.tl.distinct || d.Records != b.tl.records || d.Duplicates != b.tl.dups || d.Quarantined != 0 || d.GoldInserted != b.tl.distinct {
		return 0, 0, fmt.Errorf("%s: %+v; want %d records, %d distinct, %d duplicates", what, d, b.tl.records, b.tl.distinct, b.tl.dups)
	}
	if err := b.verify(ctx, what); err != nil {
		return 0, 0, err
	}
	fmt.Printf("  %-22s %7.2fs  %9.0f events/s  (%d units, %d silver.events rows, gold %d replaced by %d, %d mart rows)\n",
		what, secs, float64(b.tl.distinct)/secs, d.Units, d.SilverRows, d.GoldDeleted, d.GoldInserted, d.MartRows)
	return secs, d.Units, nil
}
