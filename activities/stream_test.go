package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/internal/kafkaread"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/silver"
	"github.com/acme/pipeline/warehouse"
)

// stack is one test's real components: kfake, versitygw, a fresh database
// (reached through a proxy that can refuse connections), and the activities.
type stack struct {
	t         *testing.T
	topic     string
	brokers   []string
	cluster   *kfake.Cluster
	lake      *lake.Store
	s3        *streamtest.S3
	wh        *warehouse.Store
	pg        *pgProxy
	acts      *Stream
	silverCfg silver.Config
	kc        *kafkaread.Client // acts' Kafka client, for what the activities do not use of it
	suite     testsuite.WorkflowTestSuite
}

func newStack(t *testing.T, partitions int32) *stack {
	t.Helper()
	s := &stack{t: t, topic: "events"}
	s.cluster, s.brokers = streamtest.Kafka(t, s.topic, partitions)
	var cfgS3 *streamtest.S3
	s.lake, cfgS3 = streamtest.Lake(t)
	s.s3 = cfgS3
	_, dbURL := streamtest.Database(t)
	// The activities reach PostgreSQL through a proxy the test can close.
	s.pg = newPGProxy(t, dbURL)
	u, _ := url.Parse(dbURL)
	u.Host = s.pg.addr
	wh, err := warehouse.Open(context.Background(), warehouse.Config{URL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wh.Close)
	s.wh = wh
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s.silverCfg = silvertest.Table(t, dbURL, cfgS3, "datalake")
	s.acts, err = NewStream(context.Background(), StreamConfig{Lake: cfgS3.LakeConfig("datalake"), Silver: s.silverCfg, Brokers: s.brokers,
		Warehouse: wh, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	s.kc = s.acts.kafka.(*kafkaread.Client)
	return s
}

// run executes one activity in a test activity environment.
func (s *stack) run(fn any, in any, out any) error {
	env := s.suite.NewTestActivityEnvironment()
	env.RegisterActivity(s.acts)
	v, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return err
	}
	return v.Get(out)
}

func (s *stack) cycle(in CompactCycleInput) (CompactCycleResult, error) {
	var res CompactCycleResult
	err := s.run(s.acts.CompactCycle, in, &res)
	return res, err
}

// count runs a query returning one number.
func (s *stack) count(sql string, args ...any) int64 {
	s.t.Helper()
	var n int64
	if err := s.wh.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (s *stack) strings(sql string, args ...any) []string {
	s.t.Helper()
	rows, err := s.wh.Pool().Query(context.Background(), sql, args...)
	if err != nil {
		s.t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			s.t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, " | "))
	}
	return out
}

// drain runs cycles until every partition reached the end of what was
// produced.
func (s *stack) drain(offsets map[int32]int64, in CompactCycleInput, total int) (map[int32]int64, CompactCycleResult) {
	s.t.Helper()
	var sum CompactCycleResult
	for i := 0; i < 100; i++ {
		in.Offsets = offsets
		res, err := s.cycle(in)
		// Like Temporal: retry a retryable failure with the same input.
		for attempt := 2; err != nil && attempt <= 5; attempt++ {
			var appErr *temporal.ApplicationError
			if errors.As(err, &appErr) && appErr.NonRetryable() {
				break
			}
			s.t.Logf("cycle %d attempt %d after: %.200s", i, attempt, err)
			time.Sleep(100 * time.Millisecond)
			res, err = s.cycle(in)
		}
		if err != nil {
			s.t.Fatalf("cycle %d: %v", i, err)
		}
		offsets = res.Offsets
		sum.Records += res.Records
		sum.Inserted += res.Inserted
		sum.Quarantined += res.Quarantined
		sum.Duplicates += res.Duplicates
		sum.SilverLoads += res.SilverLoads
		var at int64
		for _, o := range offsets {
			at += o
		}
		if at >= int64(total) {
			return offsets, sum
		}
	}
	s.t.Fatalf("not drained after 100 cycles: %v", offsets)
	return nil, sum
}

// checkLake checks that the bucket holds exactly the indexed bronze objects,
// no duplicate ranges, and that silver.events holds the distinct events,
// each once, as gold does.
func (s *stack) checkLake(total int, distinct int) {
	s.t.Helper()
	ctx := context.Background()
	objs, err := s.lake.List(ctx, lake.BronzePrefix)
	if err != nil {
		s.t.Fatal(err)
	}
	idx := s.strings(`SELECT object_key FROM pipeline.bronze_objects ORDER BY object_key`)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if !slices.Equal(keys, idx) {
		s.t.Errorf("bronze objects in the bucket differ from the index:\nbucket %q\nindex  %q", keys, idx)
	}
	if n := s.count(`SELECT coalesce(sum(records), 0) FROM pipeline.bronze_objects`); n != int64(total) {
		s.t.Errorf("bronze holds %d records, want %d", n, total)
	}
	// Ranges are contiguous per partition: no gap, no overlap.
	if gaps := s.strings(`SELECT partition, start_offset FROM (SELECT partition, start_offset,
		lag(end_offset) OVER (PARTITION BY partition ORDER BY start_offset) AS prev FROM pipeline.bronze_objects) x
		WHERE prev IS NOT NULL AND prev + 1 <> start_offset`); len(gaps) > 0 {
		s.t.Errorf("bronze ranges not contiguous at %v", gaps)
	}
	// Silver is silver.events: gold's events, each once; no Parquet file
	// is written beside the table any more.
	if ids := silvertest.IDs(s.t, s.silverCfg); len(ids) != distinct {
		s.t.Errorf("silver.events holds %d distinct events, want %d", len(ids), distinct)
	}
	silvertest.CheckSameAsGold(s.t, s.wh.Pool(), s.silverCfg, 0)
	if old, err := s.lake.List(ctx, lake.SilverPrefix+"dt="); err != nil || len(old) > 0 {
		s.t.Errorf("%d objects under %sdt= (%v): the stream wrote hour files", len(old), lake.SilverPrefix, err)
	}
}

func startOffsets(n int32) map[int32]int64 {
	m := map[int32]int64{}
	for p := range n {
		m[p] = 0
	}
	return m
}

// TestCompactCycleExactlyOnce runs the stream over a realistic mix with
// duplicates and poison, crashing cycles at every stage, and checks exact
// counts in every layer.
func TestCompactCycleExactlyOnce(t *testing.T) {
	s := newStack(t, 3)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	msgs, ex := streamtest.Mix(3000, 3, hour, 1)
	streamtest.Produce(s.t, s.brokers, s.topic, msgs)
	t.Logf("%d records: %d distinct events (%d payments, %d audit), %d retries, %d poison",
		len(msgs), ex.Distinct, ex.Payments, ex.Audit, ex.Duplicates, ex.Poison)

	in := CompactCycleInput{Topic: s.topic, MaxRecords: 300, FlushWait: 100 * time.Millisecond, MaxFlushes: 1}
	offsets := startOffsets(3)
	// The test's activity environment never retries: sweep at once, as a
	// retried attempt does.
	s.acts.silver.sweepAfter = time.Millisecond

	// Crash after each stage in turn; the retry (same input) must not add or
	// lose anything.
	for _, stage := range []string{"bronze", "gold"} {
		var crashed atomic.Bool
		s.acts.hook = func(st string, p int32) error {
			if st == stage && (p == 1 || p == -1) && !crashed.Swap(true) {
				return fmt.Errorf("simulated crash after %s", st)
			}
			return nil
		}
		in.Offsets = offsets
		if _, err := s.cycle(in); err == nil || !strings.Contains(err.Error(), "simulated crash after "+stage) {
			t.Fatalf("crash after %s: %v", stage, err)
		}
		res, err := s.cycle(in) // the retry
		if err != nil {
			t.Fatalf("retry after %s crash: %v", stage, err)
		}
		reused := 0
		for _, pp := range res.Partitions {
			reused += pp.Reused
		}
		switch stage {
		case "bronze":
			if reused < 1 {
				t.Errorf("retry after %s crash reused %d bronze objects, want at least 1", stage, reused)
			}
		case "gold":
			// The load committed: the retry resumes after it (from
			// pipeline.stream_offsets) instead of redoing it.
			stored, _ := s.wh.StreamOffsets(context.Background(), s.topic)
			if reused != 0 {
				t.Errorf("retry after the gold load reused %d bronze objects, want 0 (resume after the load)", reused)
			}
			// The crashed attempt's load never reached silver: the retry
			// sweeps it (rows rebuilt from bronze) before its own flush.
			if res.SilverLoads < 1 {
				t.Errorf("retry after the gold load appended %d loads to silver, want the crashed one swept", res.SilverLoads)
			}
			for p, o := range in.Offsets {
				if res.Partitions[p].Records > 0 && o >= stored[p] {
					t.Errorf("partition %d: stored offset %d not beyond %d", p, stored[p], o)
				}
			}
		}
		offsets = res.Offsets
	}
	s.acts.hook = nil
	offsets, _ = s.drain(offsets, in, len(msgs))

	streamtest.CheckGold(s.t, s.wh.Pool(), ex)
	// silver.events: the load the gold crash left pending was swept (its
	// rows rebuilt from bronze) by the first cycle after; every gold id is
	// in silver once.
	if n := s.count(`SELECT count(*) FROM pipeline.loads WHERE silver_pending`); n != 0 {
		t.Errorf("%d loads still pending for silver", n)
	}
	if n := s.count(`SELECT count(*) FROM pipeline.loads WHERE kind = 'live' AND rows_inserted > 0 AND silver_snapshot_id IS NULL`); n != 0 {
		t.Errorf("%d loads with rows recorded without a silver snapshot", n)
	}
	silvertest.CheckSameAsGold(t, s.wh.Pool(), s.silverCfg, 0)
	s.checkLake(len(msgs), ex.Distinct)
	stored, err := s.wh.StreamOffsets(context.Background(), s.topic)
	if err != nil || !mapsEqual(stored, offsets) {
		t.Errorf("stored offsets %v, workflow offsets %v (%v)", stored, offsets, err)
	}
	committed, err := s.kc.Committed(context.Background(), DefaultGroup, s.topic, []int32{0, 1, 2})
	if err != nil || !mapsEqual(committed, offsets) {
		t.Errorf("committed offsets %v, want %v (%v)", committed, offsets, err)
	}
	// Poison records are in quarantine with their reason and raw bytes.
	reasons := s.strings(`SELECT DISTINCT reason FROM pipeline.quarantine ORDER BY 1`)
	t.Logf("quarantine reasons: %q", reasons)
	if len(reasons) == 0 {
		t.Fatal("no quarantine reasons")
	}
	qobjs, _ := s.lake.List(context.Background(), lake.QuarantinePrefix)
	nq := 0
	for _, o := range qobjs {
		data, _ := s.lake.Get(context.Background(), o.Key)
		qs, err := lake.DecodeQuarantine(data)
		if err != nil {
			t.Fatal(err)
		}
		nq += len(qs)
		for _, q := range qs {
			if q.Reason == "" {
				t.Errorf("%s offset %d: no reason", o.Key, q.Record.Offset)
			}
		}
	}
	if nq != ex.Poison {
		t.Errorf("quarantine objects hold %d records, want %d", nq, ex.Poison)
	}

	// A rerun of an old cycle (e.g. a zombie attempt) changes nothing.
	before := s.count(`SELECT count(*) FROM gold.events`)
	in.Offsets = startOffsets(3)
	res, err := s.cycle(in)
	if err != nil || res.Inserted != 0 || s.count(`SELECT count(*) FROM gold.events`) != before {
		t.Errorf("rerun from offset 0: inserted %d (%v)", res.Inserted, err)
	}
}

// TestOutages makes S3, then PostgreSQL, refuse service in the middle of the
// stream: cycles fail with errors that name what failed, and once the
// component is back the retries end with exact counts.
func TestOutages(t *testing.T) {
	s := newStack(t, 2)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	msgs, ex := streamtest.Mix(2000, 2, hour, 5)
	streamtest.Produce(s.t, s.brokers, s.topic, msgs)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 250, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}
	offsets := startOffsets(2)
	res, err := s.cycle(withOffsets(in, offsets))
	if err != nil {
		t.Fatal(err)
	}
	offsets = res.Offsets

	s.s3.Stop()
	_, err = s.cycle(withOffsets(in, offsets))
	if err == nil || !strings.Contains(err.Error(), "bronze partition") {
		t.Fatalf("cycle with S3 down: %v", err)
	}
	t.Logf("S3 down: %v", err)
	s.s3.Start(t)

	s.pg.refuse(true)
	_, err = s.cycle(withOffsets(in, offsets))
	if err == nil {
		t.Fatal("cycle with PostgreSQL down succeeded")
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		t.Fatalf("a PostgreSQL outage is not retryable: %v", err)
	}
	t.Logf("PostgreSQL down: %v", err)
	s.pg.refuse(false)

	s.drain(offsets, in, len(msgs))
	streamtest.CheckGold(s.t, s.wh.Pool(), ex)
	s.checkLake(len(msgs), ex.Distinct)
}

// TestStreamStart picks carried, stored and earliest offsets, and only the
// shard's partitions.
func TestStreamStart(t *testing.T) {
	s := newStack(t, 4)
	ctx := context.Background()
	if _, err := s.wh.LoadLive(ctx, warehouse.LoadInput{Topic: s.topic, Offsets: map[int32]int64{3: 0}}); err != nil {
		t.Fatal(err)
	}
	var res StreamStartResult
	err := s.run(s.acts.StreamStart, StreamStartInput{Topic: s.topic, Shard: 1, Shards: 2, Known: map[int32]int64{1: 0}}, &res)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Partitions, []int32{1, 3}) || res.Sources[1] != "carried" || res.Sources[3] != "stored" {
		t.Fatalf("%+v", res)
	}
	err = s.run(s.acts.StreamStart, StreamStartInput{Topic: s.topic, Shard: 0, Shards: 2}, &res)
	if err != nil || !slices.Equal(res.Partitions, []int32{0, 2}) || res.Sources[0] != "earliest" {
		t.Fatalf("%+v %v", res, err)
	}
	err = s.run(s.acts.StreamStart, StreamStartInput{Topic: s.topic, Shard: 2, Shards: 2}, &res)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() {
		t.Fatalf("shard 2 of 2: %v", err)
	}
}

func withOffsets(in CompactCycleInput, o map[int32]int64) CompactCycleInput {
	in.Offsets = o
	return in
}

func mapsEqual(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// pgProxy forwards TCP connections to PostgreSQL; refuse(true) closes every
// open connection and refuses new ones (an outage).
type pgProxy struct {
	addr    string
	target  string
	mu      sync.Mutex
	refused bool
	conns   map[net.Conn]bool
}

func newPGProxy(t *testing.T, dbURL string) *pgProxy {
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{addr: l.Addr().String(), target: u.Host, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { l.Close(); p.refuse(true) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.refused {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.mu.Unlock()
			go p.forward(c)
		}
	}()
	return p
}

func (p *pgProxy) forward(c net.Conn) {
	d, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[d] = true, true
	p.mu.Unlock()
	go func() { io.Copy(d, c); d.Close() }()
	io.Copy(c, d)
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, d)
	p.mu.Unlock()
}

func (p *pgProxy) refuse(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = on
	if on {
		for c := range p.conns {
			c.Close()
		}
	}
}
