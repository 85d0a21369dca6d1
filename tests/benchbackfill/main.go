// Command benchbackfill measures the Backfill workflow on one day of events
// (`make bench-backfill`, or `go run ./tests/benchbackfill -events 1000000`).
//
// It starts the embedded stack (Temporal dev server, kfake, versitygw,
// PostgreSQL) in a temp dir on free ports, writes one UTC day of N records
// (page views, clicks and searches; payments in five currencies with
// refunds; audit events; about 1% client retries resending an event_id) as
// bronze objects, partitions × objects per partition, with their rows in
// pipeline.bronze_objects, through the same lake and warehouse calls the
// stream uses. Then it runs Backfill through Temporal for that day:
//
//  1. with one in-process worker;
//  2. with two worker processes (this program re-executed with -worker and
//     the stack's environment), the in-process worker stopped.
//
// Each mode runs the layers one at a time (["silver"], then ["gold"], which
// reads the live silver files the first run wrote, then ["marts"]), and then
// all three in one Backfill (end to end). Before both modes one end-to-end
// run loads the empty day (shown as "first load"), so every later run
// replaces a loaded day, as a real backfill does; gold is vacuumed before
// each run. BackfillDay reports no per-layer
// timings, hence the separate runs. After every run that touches gold the
// day's gold.events, gold.payments and gold.audit_log counts and the marts'
// totals are checked against the generator's own tallies.
//
// Baseline in the same run: `psql \copy` of the same distinct rows (decoded
// by event.Decode, first received wins) from CSV into one plain table
// without index.
//
// One day is one BackfillDay activity, so a second worker process cannot
// speed a single day up; the two-process mode shows that nothing is lost by
// routing across processes (and the rate a scaled-out deployment runs a day
// at).
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/client"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/devstack"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/tests/cluster"
	"github.com/acme/pipeline/warehouse"
	"github.com/acme/pipeline/worker"
	"github.com/acme/pipeline/workflows"
)

const topic = "events"

var (
	nEvents    = flag.Int("events", 1_000_000, "records of the day in bronze (about 1% of them resend an earlier event_id)")
	partitions = flag.Int("partitions", 12, "bronze partitions")
	objects    = flag.Int("objects", 10, "bronze objects per partition")
	dupRate    = flag.Float64("dup", 0.01, "share of records that resend an earlier event of their object")
	dayFlag    = flag.String("day", "2026-11-20", "the UTC day written and rebuilt")
	twoProcs   = flag.Bool("two-workers", true, "also run with two worker processes")
	workerMode = flag.Bool("worker", false, "internal: run a pipeline worker against the stack in the environment")
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

// runWorker serves batch-jobs with a Backfiller until it is signalled.
func runWorker(ctx context.Context) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
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
	bf, err := activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store})
	if err != nil {
		return err
	}
	tc, err := worker.Dial(worker.DialConfig{Address: os.Getenv("TEMPORAL_ADDRESS"), Namespace: "default"}, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	return worker.Run(ctx, worker.Config{Client: tc, Store: store, Backfiller: bf, Log: log})
}

// tally is what the generator knows about the day's distinct events.
type tally struct {
	records, distinct, dups, payments, captured, audit int64
	bronzeBytes                                        int64
}

type result struct {
	mode, what string
	secs       float64
}

func run(ctx context.Context) error {
	day, err := warehouse.ParseDay(*dayFlag)
	if err != nil {
		return err
	}
	start, end := day.Bounds(time.UTC)
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

	// 1. Bronze: objects and index rows.
	t0 := time.Now()
	tl, csvPath, err := writeBronze(ctx, lk, store, start, dir)
	if err != nil {
		return err
	}
	fmt.Printf("bronze: %d records (%d distinct, %d resent ids; %d payment.*, %d audit.*), %d objects, %.0f MiB, written in %.1fs\n",
		tl.records, tl.distinct, tl.dups, tl.payments, tl.audit, *partitions**objects, float64(tl.bronzeBytes)/(1<<20), time.Since(t0).Seconds())

	// 2. Baseline: psql \copy of the distinct rows into a plain table.
	if _, err := store.Pool().Exec(ctx, `CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE bench.wide (
  event_id uuid, event_type text, occurred_at timestamptz, received_at timestamptz, source text, user_id text,
  properties jsonb, amount numeric(18,6), currency text, actor text, action text, outcome text,
  kafka_partition integer, kafka_offset bigint)`); err != nil {
		return err
	}
	t0 = time.Now()
	if out, err := exec.CommandContext(ctx, "psql", stack.DatabaseURL, "-v", "ON_ERROR_STOP=1", "-q",
		"-c", fmt.Sprintf(`\copy bench.wide FROM '%s' WITH (FORMAT csv)`, csvPath)).CombinedOutput(); err != nil {
		return fmt.Errorf("psql \\copy: %v: %s", err, out)
	}
	copySecs := time.Since(t0).Seconds()
	var copied int64
	if err := store.Pool().QueryRow(ctx, "SELECT count(*) FROM bench.wide").Scan(&copied); err != nil {
		return err
	}
	if copied != tl.distinct {
		return fmt.Errorf("\\copy loaded %d rows, want %d", copied, tl.distinct)
	}
	os.Remove(csvPath)

	// 3. Backfill through Temporal.
	tc, err := worker.Dial(worker.DialConfig{Address: stack.TemporalAddress, Namespace: "default"}, log)
	if err != nil {
		return err
	}
	defer tc.Close()
	bf, err := activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: store})
	if err != nil {
		return err
	}
	verify := func(what string, layers []string) error {
		want := map[string]int64{
			"gold.events":    tl.distinct,
			"gold.payments":  tl.payments,
			"gold.audit_log": tl.audit,
		}
		for _, table := range []string{"gold.events", "gold.payments", "gold.audit_log"} {
			var n int64
			if err := store.Pool().QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE occurred_at >= $1 AND occurred_at < $2", start, end).Scan(&n); err != nil {
				return err
			}
			if n != want[table] {
				return fmt.Errorf("%s: %s has %d rows of the day, want %d", what, table, n, want[table])
			}
		}
		if !slices.Contains(layers, activities.LayerMarts) {
			return nil
		}
		var events, payments int64
		if err := store.Pool().QueryRow(ctx, `SELECT coalesce(sum(events),0) FROM gold.daily_product_metrics WHERE day = $1::date`, day.String()).Scan(&events); err != nil {
			return err
		}
		if err := store.Pool().QueryRow(ctx, `SELECT coalesce(sum(payments),0) FROM gold.daily_revenue WHERE day = $1::date`, day.String()).Scan(&payments); err != nil {
			return err
		}
		var audit int64
		if err := store.Pool().QueryRow(ctx, `SELECT coalesce(sum(events),0) FROM gold.daily_audit_summary WHERE day = $1::date`, day.String()).Scan(&audit); err != nil {
			return err
		}
		if events != tl.distinct || payments != tl.captured || audit != tl.audit {
			return fmt.Errorf("%s: marts total %d events, %d payments, %d audit events; want %d, %d, %d",
				what, events, payments, audit, tl.distinct, tl.captured, tl.audit)
		}
		return nil
	}
	var results []result
	backfill := func(mode, what string, layers []string) error {
		// Every timed run starts from the same table state: dead tuples of
		// the previous replacement vacuumed, statistics fresh.
		if _, err := store.Pool().Exec(ctx, "VACUUM ANALYZE gold.events, gold.payments, gold.audit_log, pipeline.silver_objects"); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		t0 := time.Now()
		run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: workflows.BatchQueue,
			ID: fmt.Sprintf("bench-backfill-%s-%s-%d", mode, what, time.Now().UnixNano())},
			workflows.Backfill, workflows.BackfillInput{From: day.String(), To: day.String(), Layers: layers, Topic: topic})
		if err != nil {
			return err
		}
		var res workflows.BackfillResult
		if err := run.Get(ctx, &res); err != nil {
			return fmt.Errorf("%s %s: %w", mode, what, err)
		}
		secs := time.Since(t0).Seconds()
		if len(res.Days) != 1 {
			return fmt.Errorf("%s %s: %d days reported", mode, what, len(res.Days))
		}
		d := res.Days[0]
		if d.Rows != tl.distinct && (slices.Contains(layers, activities.LayerSilver) || slices.Contains(layers, activities.LayerGold)) {
			return fmt.Errorf("%s %s: %d rows, want %d distinct events", mode, what, d.Rows, tl.distinct)
		}
		if slices.Contains(layers, activities.LayerSilver) && (d.Records != tl.records || d.Duplicates != tl.dups || d.Quarantined != 0) {
			return fmt.Errorf("%s %s: %d records, %d duplicates, %d quarantined; want %d, %d, 0", mode, what, d.Records, d.Duplicates, d.Quarantined, tl.records, tl.dups)
		}
		if slices.Contains(layers, activities.LayerGold) {
			if d.GoldInserted != tl.distinct {
				return fmt.Errorf("%s %s: gold inserted %d, want %d", mode, what, d.GoldInserted, tl.distinct)
			}
			if err := verify(mode+" "+what, layers); err != nil {
				return err
			}
		} else if slices.Contains(layers, activities.LayerMarts) {
			if err := verify(mode+" "+what, layers); err != nil {
				return err
			}
		}
		fmt.Printf("  %-14s %-10s %7.2fs  %9.0f events/s  (silver files %d, gold inserted %d, mart rows %d)\n",
			mode, what, secs, float64(tl.distinct)/secs, len(d.SilverFiles), d.GoldInserted, d.MartRows)
		results = append(results, result{mode, what, secs})
		return nil
	}
	sequence := func(mode string) error {
		for _, s := range []struct {
			what   string
			layers []string
		}{
			{"silver", []string{activities.LayerSilver}},
			{"gold", []string{activities.LayerGold}},
			{"marts", []string{activities.LayerMarts}},
			{"end-to-end", nil},
		} {
			if err := backfill(mode, s.what, s.layers); err != nil {
				return err
			}
		}
		return nil
	}

	// 3a. One in-process worker.
	wctx, stopWorker := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- worker.Run(wctx, worker.Config{Client: tc, Store: store, Backfiller: bf, Log: log}) }()
	fmt.Println("backfill runs:")
	// The first load of the day into empty silver and gold; every later run
	// replaces the day, as a real backfill does.
	err = backfill("first load", "end-to-end", nil)
	if err == nil {
		err = sequence("1 in-process")
	}
	stopWorker()
	if werr := <-done; werr != nil && !errors.Is(werr, context.Canceled) {
		fmt.Fprintln(os.Stderr, "in-process worker:", werr)
	}
	if err != nil {
		return err
	}

	// 3b. Two worker processes.
	if *twoProcs {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		env := append(os.Environ(), stack.Env()...)
		env = append(env, "S3_BUCKET="+stack.Bucket)
		var procs []*exec.Cmd
		for range 2 {
			cmd := exec.Command(self, "-worker")
			cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stdout, os.Stderr
			if err := cmd.Start(); err != nil {
				return err
			}
			procs = append(procs, cmd)
		}
		err = sequence("2 processes")
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			wait := make(chan struct{})
			go func() { _ = p.Wait(); close(wait) }()
			select {
			case <-wait:
			case <-time.After(15 * time.Second):
				_ = p.Process.Kill()
				<-wait
			}
		}
		if err != nil {
			return err
		}
	}

	// 4. The table.
	fmt.Printf("\nBackfill of %s: %d bronze records, %d distinct events, %d objects (%d partitions x %d)\n",
		day, tl.records, tl.distinct, *partitions**objects, *partitions, *objects)
	fmt.Printf("%-14s %-10s %9s %12s\n", "workers", "layer", "seconds", "events/s")
	for _, r := range results {
		fmt.Printf("%-14s %-10s %9.2f %12.0f\n", r.mode, r.what, r.secs, float64(tl.distinct)/r.secs)
	}
	fmt.Printf("%-14s %-10s %9.2f %12.0f\n", "baseline", `\copy`, copySecs, float64(tl.distinct)/copySecs)
	fmt.Println(`baseline: psql \copy of the same distinct rows from CSV into one plain table without index`)
	fmt.Println("layers run one at a time: silver reads bronze and writes Parquet; gold reads the live silver files and replaces the day; marts rebuild from gold")
	fmt.Println("verified after every run: gold.events = distinct events, gold.payments, gold.audit_log and the marts' totals exact")
	return nil
}

var (
	pages      = []string{"/", "/pricing", "/docs", "/blog/launch", "/signup", "/checkout"}
	currencies = []string{"EUR", "USD", "GBP", "BRL", "JPY"}
	actions    = []string{"login", "logout", "role.grant", "export", "api_key.create"}
	sources    = []string{"web", "ios", "android"}
)

// writeBronze writes the day as partitions × objects bronze objects with
// their index rows, and the distinct events (first received wins, as the
// backfill decides) as a CSV for the \copy baseline.
func writeBronze(ctx context.Context, lk *lake.Store, store *warehouse.Store, start time.Time, dir string) (tally, string, error) {
	nObj := *partitions * *objects
	per := *nEvents / nObj
	window := 24 * time.Hour / time.Duration(*objects)
	type job struct{ p, j, n int }
	jobs := make(chan job)
	var mu sync.Mutex
	var tl tally
	var rows []event.Row
	var firstErr error
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for jb := range jobs {
				rng := mrand.New(mrand.NewPCG(uint64(jb.p)+1, uint64(jb.j)+7)) // the same day every run
				t, objRows, err := writeObject(ctx, lk, store, rng, start, window, int32(jb.p), jb.j, jb.n)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				tl.records += t.records
				tl.distinct += t.distinct
				tl.dups += t.dups
				tl.payments += t.payments
				tl.captured += t.captured
				tl.audit += t.audit
				tl.bronzeBytes += t.bronzeBytes
				rows = append(rows, objRows...)
				mu.Unlock()
			}
		})
	}
	for i := range nObj {
		n := per
		if i < *nEvents%nObj {
			n++
		}
		select {
		case jobs <- job{p: i % *partitions, j: i / *partitions, n: n}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return tl, "", firstErr
	}
	if ctx.Err() != nil {
		return tl, "", ctx.Err()
	}
	csvPath := filepath.Join(dir, "wide.csv")
	return tl, csvPath, benchutil.WriteCSV(csvPath, rows)
}

// writeObject writes one bronze object of n records of partition p, covering
// the j-th window of the day, and records it in the index.
func writeObject(ctx context.Context, lk *lake.Store, store *warehouse.Store, rng *mrand.Rand, start time.Time, window time.Duration,
	p int32, j, n int) (tally, []event.Row, error) {
	var t tally
	from := start.Add(time.Duration(j) * window)
	first := int64(j) * 1_000_000
	recs := make([]lake.Record, 0, n)
	rows := make([]event.Row, 0, n)
	hours := map[time.Time]bool{}
	var minOcc, maxOcc time.Time
	step := window / time.Duration(n+1)
	for i := range n {
		off := first + int64(i)
		if i > 0 && rng.Float64() < *dupRate {
			// A client retry: the same event again, received later.
			k := rng.IntN(len(recs))
			for recs[k].Value == nil {
				k = rng.IntN(len(recs))
			}
			recs = append(recs, lake.Record{Partition: p, Offset: off, Value: recs[k].Value})
			t.dups++
			continue
		}
		occ := from.Add(time.Duration(i+1) * step).Truncate(time.Microsecond)
		recv := occ.Add(time.Duration(rng.IntN(2000)) * time.Millisecond)
		val := genEvent(rng, occ, recv, &t)
		recs = append(recs, lake.Record{Partition: p, Offset: off, Value: val})
		ev, errs := event.Decode(val, event.Options{Now: recv.Add(time.Minute)})
		if len(errs) > 0 {
			return t, nil, fmt.Errorf("generated event does not decode: %v: %s", errs, val)
		}
		row, err := ev.ToRow(p, off)
		if err != nil {
			return t, nil, err
		}
		rows = append(rows, row)
		hours[occ.Truncate(time.Hour)] = true
		if minOcc.IsZero() || occ.Before(minOcc) {
			minOcc = occ
		}
		if occ.After(maxOcc) {
			maxOcc = occ
		}
	}
	t.records, t.distinct = int64(len(recs)), int64(len(rows))
	arrival := from.Add(window).Add(5 * time.Second)
	for i := range recs {
		recs[i].Time = arrival
	}
	last := recs[len(recs)-1].Offset
	key := lake.BronzeKey(topic, p, first, last, arrival)
	data := lake.EncodeBronze(recs)
	t.bronzeBytes = int64(len(data))
	if err := lk.Put(ctx, key, data, "application/x-ndjson"); err != nil {
		return t, nil, err
	}
	eh := slices.SortedFunc(func(yield func(time.Time) bool) {
		for h := range hours {
			if !yield(h) {
				return
			}
		}
	}, func(a, b time.Time) int { return a.Compare(b) })
	_, err := store.RecordBronze(ctx, warehouse.BronzeObject{Topic: topic, Partition: p, First: first, Last: last,
		Records: len(recs), Bytes: int64(len(data)), Key: key, ArrivedAt: arrival, Cleaned: len(recs),
		MinOccurred: minOcc, MaxOccurred: maxOcc, EventHours: eh})
	return t, rows, err
}

// genEvent builds one event like internal/demo's, as the API would have
// written it to the topic (received_at set).
func genEvent(r *mrand.Rand, occ, recv time.Time, t *tally) []byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], uint64(occ.UnixMilli())<<16|0x7000|r.Uint64()&0x0fff)
	binary.BigEndian.PutUint64(id[8:], r.Uint64()&0x3fffffffffffffff|0x8000000000000000)
	user := "u-" + strconv.Itoa(r.IntN(50_000))
	var typ, props string
	switch n := r.IntN(100); {
	case n < 70:
		typ = []string{"page_view", "click", "search"}[r.IntN(3)]
		props = fmt.Sprintf(`{"path":%q,"referrer":"https://www.example.com/search?q=pricing"}`, pages[r.IntN(len(pages))])
	case n < 88:
		typ = "payment.captured"
		if r.IntN(10) == 0 {
			typ = "payment.refunded"
		} else {
			t.captured++
		}
		t.payments++
		props = fmt.Sprintf(`{"amount":"%d.%02d","currency":%q,"order_id":"o-%d"}`,
			1+r.IntN(300), r.IntN(100), currencies[r.IntN(len(currencies))], r.IntN(1_000_000))
	default:
		outcome := "success"
		if r.IntN(8) == 0 {
			outcome = "denied"
		}
		typ = "audit." + []string{"auth", "admin", "data"}[r.IntN(3)]
		t.audit++
		props = fmt.Sprintf(`{"actor":%q,"action":%q,"outcome":%q}`, user, actions[r.IntN(len(actions))], outcome)
	}
	return fmt.Appendf(nil, `{"event_id":"%s","type":%q,"occurred_at":%q,"received_at":%q,"source":%q,"user_id":%q,"properties":%s}`,
		benchutil.UUIDText(id), typ, occ.UTC().Format(time.RFC3339Nano), recv.UTC().Format(time.RFC3339Nano), sources[r.IntN(3)], user, props)
}

func dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}
