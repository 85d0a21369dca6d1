package workflows

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/tests/benchutil"
	"github.com/acme/pipeline/warehouse"
)

// TestStreamBench measures the stream on a real Temporal dev server, kfake,
// versitygw and PostgreSQL (make bench-stream):
//
//   - capacity: a backlog of STREAM_BENCH_BACKLOG events (default 200,000) is
//     drained; events/s end to end and per stage;
//   - live: STREAM_BENCH_RATE events/s (default 5,000) for
//     STREAM_BENCH_SECONDS (default 30), freshness from the producer's ack
//     (the API's 202) to the load's commit in gold, p50/p95;
//   - Temporal history events per 1,000 events processed;
//   - baselines in the same run: a plain kafka-go reader over the same
//     records, and psql \copy of the same gold.events rows.
//
// Both phases check exact counts. STREAM_BENCH_PARTITIONS (default 12, the
// blueprint's) and STREAM_BENCH_SHARDS (default 1) shape the stream.
func TestStreamBench(t *testing.T) {
	if os.Getenv("STREAM_BENCH") == "" {
		t.Skip("set STREAM_BENCH=1 (make bench-stream): starts a Temporal dev server and runs for a few minutes")
	}
	var (
		backlog    = envInt("STREAM_BENCH_BACKLOG", 200_000)
		rate       = envInt("STREAM_BENCH_RATE", 5000)
		seconds    = envInt("STREAM_BENCH_SECONDS", 30)
		partitions = envInt("STREAM_BENCH_PARTITIONS", 12)
		shards     = envInt("STREAM_BENCH_SHARDS", 1)
		maxRecords = envInt("STREAM_BENCH_MAX_RECORDS", activities.DefaultMaxRecords)
	)
	ctx := context.Background()
	_, brokers := streamtest.Kafka(t, "events", int32(partitions))
	_, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	address, _ := streamtest.Temporal(t)
	silverCfg := silvertest.Table(t, dbURL, s3, "datalake")
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silverCfg, Brokers: brokers,
		Warehouse: wh, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: address, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	queue := "stream-bench-" + uuid.NewString()[:8]
	w := worker.New(c, queue, worker.Options{})
	w.RegisterWorkflow(StreamCompaction)
	w.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	p := newProducer(t, brokers, 11)
	cfg := StreamCompactionInput{Shards: shards, MaxRecords: maxRecords, CycleDuration: 15 * time.Second, CompactEvery: -1}

	// Phase 1: capacity, draining a backlog.
	p.send(backlog, nil)
	t0 := time.Now()
	runs := startShards(t, c, queue, cfg, "capacity")
	waitGold(t, wh, p, 10*time.Minute)
	drain := time.Since(t0)
	capTotals, capHist := stopShards(t, c, runs)
	capSilver := silvertest.Stats(t, silverCfg)

	// Phase 2: live traffic at rate.
	vis := newVisibility(wh)
	go vis.poll(ctx)
	runs = startShards(t, c, queue, cfg, "live")
	time.Sleep(3 * time.Second) // the shards are polling
	liveStart := time.Now()
	acks := p.pace(rate, time.Duration(seconds)*time.Second)
	liveSent := time.Since(liveStart)
	waitGold(t, wh, p, 5*time.Minute)
	liveTotals, liveHist := stopShards(t, c, runs)
	liveDur := time.Since(liveStart)
	vis.stop()
	streamtest.CheckGold(t, wh.Pool(), p.expect)
	liveSilver := silvertest.Stats(t, silverCfg)

	// silver.events' small files, compacted as SilverMaintenance does.
	compactTook, compacted := compactSilver(t, wh, silverCfg)
	silvertest.CheckSameAsGold(t, wh.Pool(), silverCfg, 30*time.Second)
	hours := count(t, wh, "SELECT count(DISTINCT date_trunc('hour', occurred_at)) FROM gold.events")

	fresh := vis.freshness(t, acks)

	// Baselines.
	readRate := plainRead(t, brokers, partitions, p.sent)
	batchRate := batchRead(t, brokers, partitions, p.sent)
	copyRate, copyRows := psqlCopy(t, wh, dbURL)

	// Report.
	var b strings.Builder
	fmt.Fprintf(&b, "\nstream bench: %d partitions, %d shard(s), flush wait %v, up to %d records per partition and flush, cycles of %v\n",
		partitions, shards, activities.DefaultFlushWait, maxRecords, cfg.CycleDuration)
	fmt.Fprintf(&b, "capacity: %d records drained in %v: %.0f events/s end to end\n", capTotals.Records, drain.Round(time.Millisecond),
		float64(capTotals.Records)/drain.Seconds())
	tm := capTotals.Times
	stage := func(name string, d time.Duration, note string) {
		fmt.Fprintf(&b, "  %-22s %9.0f events/s  (%v summed over partitions%s)\n", name, float64(capTotals.Records)/d.Seconds(), d.Round(time.Millisecond), note)
	}
	fmt.Fprintf(&b, "  %-22s %9.0f events/s  (kafkaread batches of 20,000, the activity's reader, one partition after another)\n",
		"consume (Kafka fetch)", batchRate)
	stage("  in the stream", tm.Read, ", waits for new records included")
	stage("→ bronze (S3 + index)", tm.Bronze, "")
	stage("bronze → clean", tm.Clean, "")
	fmt.Fprintf(&b, "  %-22s %9.0f rows/s    (%v wall, %d loads%s)\n", "clean → gold (LoadLive)", float64(capTotals.Records)/tm.Gold.Seconds(),
		tm.Gold.Round(time.Millisecond), capTotals.Flushes, map[bool]string{true: ", walls of concurrent shards summed"}[shards > 1])
	fmt.Fprintf(&b, "  %-22s %9.0f rows/s    (%v wall, appends to the Iceberg table after gold)\n", "gold → silver.events", float64(capTotals.Records)/tm.Silver.Seconds(),
		tm.Silver.Round(time.Millisecond))
	fmt.Fprintf(&b, "baselines: plain kafka-go reader %.0f msgs/s; psql \\copy of %d gold.events rows %.0f rows/s; gold load / \\copy = %.2f\n",
		readRate, copyRows, copyRate, float64(capTotals.Records)/tm.Gold.Seconds()/copyRate)
	fmt.Fprintf(&b, "live: %d events sent at %.0f/s for %v; freshness (ack → visible in gold) p50 %v p95 %v max %v over %d events\n",
		len(acks), float64(len(acks))/liveSent.Seconds(), liveSent.Round(time.Millisecond),
		fresh[0].Round(time.Millisecond), fresh[1].Round(time.Millisecond), fresh[2].Round(time.Millisecond), fresh[3])
	perHour := func(n int64) float64 { return float64(n) / float64(max(hours, 1)) }
	fmt.Fprintf(&b, "silver.events: capacity %d commits in %v (%.1f per minute); live %d commits in %v (%.1f per minute)\n",
		capSilver.Snapshots, drain.Round(time.Second), float64(capSilver.Snapshots)/drain.Minutes(),
		liveSilver.Snapshots-capSilver.Snapshots, liveDur.Round(time.Second), float64(liveSilver.Snapshots-capSilver.Snapshots)/liveDur.Minutes())
	fmt.Fprintf(&b, "  files: %d over %d event hour(s), %.0f per hour, mean %d KiB; after CompactSilver (%v): %d, %.1f per hour, mean %d KiB\n",
		liveSilver.Files, hours, perHour(liveSilver.Files), liveSilver.MeanFileBytes()>>10, compactTook.Round(time.Millisecond),
		compacted.Files, perHour(compacted.Files), compacted.MeanFileBytes()>>10)
	fmt.Fprintf(&b, "history: capacity %d events for %d records (%.3f per 1,000); live %d events for %d records (%.3f per 1,000)\n",
		capHist, capTotals.Records, 1000*float64(capHist)/float64(capTotals.Records),
		liveHist, liveTotals.Records, 1000*float64(liveHist)/float64(max(1, liveTotals.Records)))
	fmt.Fprintf(&b, "exact: gold.events %d = distinct sent %d; quarantine %d = poison sent %d\n",
		count(t, wh, "SELECT count(*) FROM gold.events"), p.expect.Distinct, count(t, wh, "SELECT count(*) FROM pipeline.quarantine"), p.expect.Poison)
	t.Log(b.String())
	if out := os.Getenv("STREAM_BENCH_OUT"); out != "" {
		_ = os.WriteFile(out, []byte(b.String()), 0o644)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func count(t *testing.T, wh *warehouse.Store, sql string) int64 {
	t.Helper()
	var n int64
	if err := wh.Pool().QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// producer writes realistic events as the API does (murmur2 on the user,
// acks=all), with 5% client retries and 1% poison, and keeps what gold must
// hold.
type producer struct {
	t      *testing.T
	w      *kafka.Writer
	r      *rand.Rand
	sent   int // records written
	expect streamtest.Expect
	prev   []kafka.Message
}

func newProducer(t *testing.T, brokers []string, seed uint64) *producer {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: "events", Balancer: kafka.Murmur2Balancer{Consistent: true},
		RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { w.Close() })
	return &producer{t: t, w: w, r: rand.New(rand.NewPCG(seed, 2)), expect: streamtest.Expect{Net: map[string]int64{}}}
}

// batch makes n events received now; ids lists the new events' ids.
func (p *producer) batch(n int) (msgs []kafka.Message, ids [][16]byte) {
	now := time.Now().UTC()
	for range n {
		user := fmt.Sprintf("u-%d", p.r.IntN(5000))
		id := uuid.Must(uuid.NewV7())
		ev := event.Event{EventID: id.String(), OccurredAt: now.Add(-time.Duration(p.r.IntN(5000)) * time.Millisecond),
			ReceivedAt: now, Source: "web", UserID: user}
		switch k := p.r.IntN(100); {
		case k < 70:
			ev.Type = "page_view"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"path":"/p/%d","ref":"https://example.com/?q=%d"}`, p.r.IntN(50), p.r.IntN(1000)))
		case k < 85:
			cur := []string{"EUR", "USD", "JPY"}[p.r.IntN(3)]
			micros := int64(p.r.IntN(100000)) * 10_000
			ev.Type = "payment.succeeded"
			if p.r.IntN(10) == 0 {
				ev.Type = "payment.refunded"
				p.expect.Net[cur] -= micros
			} else {
				p.expect.Net[cur] += micros
			}
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"amount":"%s","currency":"%s"}`, event.FormatMicros(micros), cur))
			p.expect.Payments++
		default:
			ev.Type = "audit.login"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"actor":"%s","action":"login","outcome":"success"}`, user))
			p.expect.Audit++
		}
		b, _ := ev.Marshal()
		m := kafka.Message{Key: []byte(user), Value: b}
		msgs = append(msgs, m)
		ids = append(ids, id)
		p.expect.Distinct++
		if len(p.prev) < 10000 {
			p.prev = append(p.prev, m)
		} else {
			p.prev[p.r.IntN(len(p.prev))] = m
		}
		if p.r.IntN(20) == 0 {
			msgs = append(msgs, p.prev[p.r.IntN(len(p.prev))])
			p.expect.Duplicates++
		}
		if p.r.IntN(100) == 0 {
			msgs = append(msgs, kafka.Message{Key: []byte(user), Value: streamtest.Poison(p.r.IntN(6), now)})
			p.expect.Poison++
		}
	}
	return msgs, ids
}

// send writes n events as fast as the broker takes them; acks, when not
// nil, gets each new event's ack time.
func (p *producer) send(n int, acks map[[16]byte]time.Time) {
	for n > 0 {
		k := min(n, 5000)
		msgs, ids := p.batch(k)
		if err := p.w.WriteMessages(context.Background(), msgs...); err != nil {
			p.t.Fatal(err)
		}
		now := time.Now()
		for _, id := range ids {
			if acks != nil {
				acks[id] = now
			}
		}
		p.sent += len(msgs)
		n -= k
	}
}

// pace sends rate events/s for d, in 20 ms ticks, and returns the ack times.
func (p *producer) pace(rate int, d time.Duration) map[[16]byte]time.Time {
	acks := map[[16]byte]time.Time{}
	tick := 20 * time.Millisecond
	perTick := float64(rate) * tick.Seconds()
	start := time.Now()
	due := 0.0
	for time.Since(start) < d {
		due += perTick
		if n := int(due); n > 0 {
			p.send(n, acks)
			due -= float64(n)
		}
		if sleep := time.Until(start.Add(time.Duration(float64(len(acks)) / float64(rate) * float64(time.Second)))); sleep > 0 {
			time.Sleep(sleep)
		}
	}
	return acks
}

func startShards(t *testing.T, c client.Client, queue string, cfg StreamCompactionInput, phase string) []client.WorkflowRun {
	t.Helper()
	var runs []client.WorkflowRun
	for shard := range cfg.Shards {
		in := cfg
		in.Shard = shard
		run, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
			ID: fmt.Sprintf("bench-%s-%s", phase, StreamWorkflowID("events", shard, cfg.Shards)), TaskQueue: queue,
		}, StreamCompaction, in)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

// stopShards signals stop, waits, and returns the summed totals and history
// lengths (all runs of each workflow).
func stopShards(t *testing.T, c client.Client, runs []client.WorkflowRun) (StreamTotals, int) {
	t.Helper()
	ctx := context.Background()
	var tot StreamTotals
	events := 0
	for _, run := range runs {
		if err := c.SignalWorkflow(ctx, run.GetID(), "", StreamStopSignal, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range runs {
		var res StreamCompactionResult
		// Get follows continue-as-new to the last run.
		if err := c.GetWorkflow(ctx, run.GetID(), "").Get(ctx, &res); err != nil {
			t.Fatal(err)
		}
		tot.Records += res.Totals.Records
		tot.Inserted += res.Totals.Inserted
		tot.Flushes += res.Totals.Flushes
		tot.Cycles += res.Totals.Cycles
		tot.Times.Add(res.Totals.Times)
		events += historyLength(t, c, run.GetID())
	}
	return tot, events
}

// historyLength counts the history events of every run of a workflow id.
func historyLength(t *testing.T, c client.Client, id string) int {
	t.Helper()
	n := 0
	runID := ""
	for i := 0; i < 100; i++ {
		h := fetchHistory(t, c, id, runID)
		n += len(h.Events)
		first := h.Events[0].GetWorkflowExecutionStartedEventAttributes()
		if first.GetContinuedExecutionRunId() == "" {
			return n
		}
		runID = first.GetContinuedExecutionRunId()
	}
	return n
}

func fetchHistory(t *testing.T, c client.Client, id, runID string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		h.Events = append(h.Events, e)
	}
	return h
}

// waitGold waits until gold holds every distinct event sent.
func waitGold(t *testing.T, wh *warehouse.Store, p *producer, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := count(t, wh, "SELECT count(*) FROM gold.events")
		if n >= int64(p.expect.Distinct) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gold holds %d of %d events after %v", n, p.expect.Distinct, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// visibility records when each load became visible (committed), by polling
// pipeline.loads every 20 ms.
type visibility struct {
	wh   *warehouse.Store
	mu   sync.Mutex
	seen map[int64]time.Time
	last int64
	done chan struct{}
	wg   sync.WaitGroup
}

func newVisibility(wh *warehouse.Store) *visibility {
	v := &visibility{wh: wh, seen: map[int64]time.Time{}, done: make(chan struct{})}
	_ = wh.Pool().QueryRow(context.Background(), "SELECT coalesce(max(load_id), 0) FROM pipeline.loads").Scan(&v.last)
	return v
}

func (v *visibility) poll(ctx context.Context) {
	v.wg.Add(1)
	defer v.wg.Done()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-v.done:
			return
		case <-tk.C:
		}
		// Loads commit out of id order when shards load concurrently:
		// look at every load of the phase, not only ids above the last.
		rows, err := v.wh.Pool().Query(ctx, "SELECT load_id FROM pipeline.loads WHERE load_id > $1", v.last)
		if err != nil {
			continue
		}
		now := time.Now()
		for rows.Next() {
			var id int64
			if rows.Scan(&id) == nil {
				v.mu.Lock()
				if _, ok := v.seen[id]; !ok {
					v.seen[id] = now
				}
				v.mu.Unlock()
			}
		}
		rows.Close()
	}
}

func (v *visibility) stop() { close(v.done); v.wg.Wait() }

// freshness returns p50, p95, max and the number of events measured.
func (v *visibility) freshness(t *testing.T, acks map[[16]byte]time.Time) [4]time.Duration {
	t.Helper()
	rows, err := v.wh.Pool().Query(context.Background(), "SELECT event_id, load_id FROM gold.events")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var ds []time.Duration
	for rows.Next() {
		var id [16]byte
		var load int64
		if err := rows.Scan(&id, &load); err != nil {
			t.Fatal(err)
		}
		ack, ok := acks[id]
		if !ok {
			continue
		}
		vis, ok := v.seen[load]
		if !ok {
			continue
		}
		ds = append(ds, vis.Sub(ack))
	}
	if len(ds) == 0 {
		t.Fatal("no freshness measured")
	}
	slices.Sort(ds)
	return [4]time.Duration{ds[len(ds)/2], ds[len(ds)*95/100], ds[len(ds)-1], time.Duration(len(ds))}
}

// plainRead is benchutil.PlainRead, checking that it read n records.
func plainRead(t *testing.T, brokers []string, partitions, n int) float64 {
	t.Helper()
	rate, total, err := benchutil.PlainRead(context.Background(), brokers, "events", partitions)
	if err != nil {
		t.Fatal(err)
	}
	if total != n {
		t.Errorf("plain reader read %d records, %d were sent", total, n)
	}
	return rate
}

// batchRead reads every partition with kafkaread, the activities' reader,
// one partition after another, and returns records per second.
func batchRead(t *testing.T, brokers []string, partitions, n int) float64 {
	t.Helper()
	c, err := kafkaread.New(kafkaread.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	total := 0
	for p := range partitions {
		next := int64(0)
		for {
			b, err := c.Read(context.Background(), kafkaread.ReadRequest{Topic: "events", Partition: int32(p), Offset: next,
				MaxRecords: 20_000, Wait: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			total += len(b.Records)
			next = b.Next
			if next >= b.HighWatermark {
				break
			}
		}
	}
	if total != n {
		t.Errorf("kafkaread read %d records, %d were sent", total, n)
	}
	return float64(total) / time.Since(t0).Seconds()
}

// psqlCopy is benchutil.PsqlCopy, failing the test on an error.
func psqlCopy(t *testing.T, wh *warehouse.Store, dbURL string) (float64, int64) {
	t.Helper()
	rate, rows, err := benchutil.PsqlCopy(context.Background(), dbURL, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return rate, rows
}

// historyJSON renders a history as `temporal workflow show -o json` does.
func historyJSON(h *historypb.History) ([]byte, error) {
	return protojson.MarshalOptions{Indent: "  "}.Marshal(h)
}

// compactSilver runs SilverMaintenance's compaction over every hour (all
// closed two hours from now) and returns how long it took and the table
// after it.
func compactSilver(t *testing.T, wh *warehouse.Store, cfg silver.Config) (time.Duration, silver.Stats) {
	t.Helper()
	sm, err := activities.NewSilverMaintainer(activities.SilverMaintainerConfig{Silver: cfg, Store: wh})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(sm)
	t0 := time.Now()
	if _, err := env.ExecuteActivity(sm.CompactSilver, activities.CompactSilverInput{Now: time.Now().Add(2 * time.Hour), MaxCommits: 100}); err != nil {
		t.Fatal(err)
	}
	return time.Since(t0), silvertest.Stats(t, cfg)
}
