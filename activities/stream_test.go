package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/streamtest"
	"github.com/acme/pipeline/lake"
	"github.com/acme/pipeline/warehouse"
)

// stack is one test's real components: kfake, versitygw, a fresh database
// (reached through a proxy that can refuse connections), and the activities.
type stack struct {
	t       *testing.T
	topic   string
	brokers []string
	cluster *kfake.Cluster
	lake    *lake.Store
	s3      *streamtest.S3
	wh      *warehouse.Store
	pg      *pgProxy
	acts    *Activities
	suite   testsuite.WorkflowTestSuite
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
	s.acts, err = NewActivities(context.Background(), StreamConfig{Lake: cfgS3.LakeConfig("datalake"), Brokers: s.brokers,
		Warehouse: wh, TempDir: t.TempDir(), RowGroupRows: 1000, Log: log})
	if err != nil {
		t.Fatal(err)
	}
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

// msg is a record to produce to one partition.
type msg struct {
	partition int
	key       []byte
	value     []byte
}

func (s *stack) produce(msgs []msg) {
	s.t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(s.brokers...), Topic: s.topic, BatchSize: 1000, RequiredAcks: kafka.RequireAll,
		Balancer: kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { p, _ := strconv.Atoi(string(m.Headers[0].Value)); return p })}
	defer w.Close()
	kms := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = kafka.Message{Key: m.key, Value: m.value, Headers: []kafka.Header{{Key: "p", Value: []byte(strconv.Itoa(m.partition))}}}
	}
	if err := w.WriteMessages(context.Background(), kms...); err != nil {
		s.t.Fatal(err)
	}
}

// mix generates a realistic stream: page views, payments in three currencies
// (some refunds), audit events, client retries (same event_id again, same
// partition) and a few poison records. It returns the records and what gold
// must hold.
type expect struct {
	distinct   int
	payments   int
	audit      int
	poison     int
	sums       map[string]int64 // currency → net micros (refunds negative)
	duplicates int
}

func mix(n int, partitions int, hour time.Time, seed uint64) ([]msg, expect) {
	r := rand.New(rand.NewPCG(seed, 1))
	ex := expect{sums: map[string]int64{}}
	var out []msg
	var sent []msg
	currencies := []string{"EUR", "USD", "JPY"}
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u-%d", r.IntN(500))
		p := int(crc(user)) % partitions
		occurred := hour.Add(time.Duration(r.Int64N(int64(time.Hour))))
		ev := event.Event{
			EventID:    uuid.Must(uuid.NewV7()).String(),
			OccurredAt: occurred, ReceivedAt: occurred.Add(time.Second),
			Source: "web", UserID: user,
		}
		switch k := r.IntN(100); {
		case k < 70:
			ev.Type = "page_view"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"path":"/p/%d"}`, r.IntN(50)))
		case k < 85:
			cur := currencies[r.IntN(3)]
			micros := int64(r.IntN(100000)) * 10_000 // two decimals
			ev.Type = "payment.succeeded"
			if r.IntN(10) == 0 {
				ev.Type = "payment.refunded"
				ex.sums[cur] -= micros
			} else {
				ex.sums[cur] += micros
			}
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"amount":"%s","currency":"%s"}`, event.FormatMicros(micros), cur))
			ex.payments++
		default:
			ev.Type = "audit.login"
			ev.Properties = json.RawMessage(fmt.Sprintf(`{"actor":"%s","action":"login","outcome":"success"}`, user))
			ex.audit++
		}
		b, err := ev.Marshal()
		if err != nil {
			panic(err)
		}
		m := msg{partition: p, key: []byte(user), value: b}
		out = append(out, m)
		sent = append(sent, m)
		ex.distinct++
		// 5% client retries: the same event again, a little later.
		if r.IntN(20) == 0 && len(sent) > 0 {
			out = append(out, sent[r.IntN(len(sent))])
			ex.duplicates++
		}
		// ~1% poison records from other producers.
		if r.IntN(100) == 0 {
			out = append(out, msg{partition: p, value: poison(r.IntN(6), occurred)})
			ex.poison++
		}
	}
	return out, ex
}

func poison(kind int, at time.Time) []byte {
	ts := at.Format(time.RFC3339)
	switch kind {
	case 0:
		return []byte(`not json at all`)
	case 1:
		return []byte(`{"type":"page_view","occurred_at":"` + ts + `"}`) // no event_id, no received_at
	case 2:
		return []byte{0xff, 0xfe, '{', '}'}
	case 3:
		return []byte(`{"event_id":"` + uuid.NewString() + `","type":"payment.succeeded","occurred_at":"` + ts +
			`","received_at":"` + ts + `","properties":{"amount":"lots","currency":"EUR"}}`)
	case 4:
		return []byte(`{"event_id":"` + uuid.NewString() + `","type":"Bad Type!","occurred_at":"` + ts + `","received_at":"` + ts + `"}`)
	default:
		return []byte{}
	}
}

func crc(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
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

// checkGold compares gold with the expectation.
func (s *stack) checkGold(ex expect) {
	s.t.Helper()
	if got := s.count(`SELECT count(*) FROM gold.events`); got != int64(ex.distinct) {
		s.t.Errorf("gold.events has %d rows, want %d distinct events", got, ex.distinct)
	}
	if got := s.count(`SELECT count(DISTINCT event_id) FROM gold.events`); got != int64(ex.distinct) {
		s.t.Errorf("gold.events has %d distinct ids, want %d", got, ex.distinct)
	}
	if got := s.count(`SELECT count(*) FROM gold.payments`); got != int64(ex.payments) {
		s.t.Errorf("gold.payments has %d rows, want %d", got, ex.payments)
	}
	if got := s.count(`SELECT count(*) FROM gold.audit_log`); got != int64(ex.audit) {
		s.t.Errorf("gold.audit_log has %d rows, want %d", got, ex.audit)
	}
	for cur, want := range ex.sums {
		got := s.count(`SELECT coalesce(sum(CASE WHEN is_refund THEN -amount ELSE amount END) * 1000000, 0)::bigint
			FROM gold.payments WHERE currency = $1`, cur)
		if got != want {
			s.t.Errorf("net %s = %s, want %s", cur, event.FormatMicros(got), event.FormatMicros(want))
		}
	}
	if got := s.count(`SELECT count(*) FROM pipeline.quarantine`); got != int64(ex.poison) {
		s.t.Errorf("pipeline.quarantine has %d rows, want %d poison records", got, ex.poison)
	}
}

// checkLake checks that the bucket holds exactly the indexed bronze objects,
// no duplicate ranges, and that the live silver files hold the distinct events
// of the hour.
func (s *stack) checkLake(total int, distinct int, compacted bool) {
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
	live, err := s.wh.LiveSilverBetween(ctx, time.Unix(0, 0), time.Now().Add(48*time.Hour))
	if err != nil {
		s.t.Fatal(err)
	}
	ids := map[[16]byte]int{}
	rows := 0
	for _, o := range live {
		data, err := s.lake.Get(ctx, o.Key)
		if err != nil {
			s.t.Fatal(err)
		}
		rs, err := lake.DecodeRows(data)
		if err != nil {
			s.t.Fatal(err)
		}
		if int64(len(rs)) != o.Rows {
			s.t.Errorf("%s: %d rows, index says %d", o.Key, len(rs), o.Rows)
		}
		for _, r := range rs {
			ids[r.EventID]++
			if hourOf(&r) != o.Hour {
				s.t.Errorf("%s holds a row of hour %s", o.Key, hourOf(&r))
			}
		}
		rows += len(rs)
	}
	if len(ids) != distinct {
		s.t.Errorf("silver holds %d distinct events, want %d", len(ids), distinct)
	}
	if compacted && rows != distinct {
		s.t.Errorf("compacted silver holds %d rows for %d distinct events", rows, distinct)
	}
	sil, err := s.lake.List(ctx, lake.SilverPrefix)
	if err != nil {
		s.t.Fatal(err)
	}
	if len(sil) != len(live) {
		s.t.Errorf("bucket has %d silver objects, index %d live", len(sil), len(live))
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
	msgs, ex := mix(3000, 3, hour, 1)
	s.produce(msgs)
	t.Logf("%d records: %d distinct events (%d payments, %d audit), %d retries, %d poison",
		len(msgs), ex.distinct, ex.payments, ex.audit, ex.duplicates, ex.poison)

	in := CompactCycleInput{Topic: s.topic, MaxRecords: 300, FlushWait: 100 * time.Millisecond, MaxFlushes: 1}
	offsets := startOffsets(3)

	// Crash after each stage in turn; the retry (same input) must not add or
	// lose anything.
	for _, stage := range []string{"bronze", "silver", "gold"} {
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
		if want := map[string]int{"bronze": 1, "silver": 1, "gold": 3}[stage]; reused < want {
			t.Errorf("retry after %s crash reused %d bronze objects, want at least %d", stage, reused, want)
		}
		if stage == "gold" && res.Inserted != 0 {
			t.Errorf("retry after the gold load inserted %d rows again", res.Inserted)
		}
		offsets = res.Offsets
	}
	s.acts.hook = nil
	offsets, _ = s.drain(offsets, in, len(msgs))

	s.checkGold(ex)
	s.checkLake(len(msgs), ex.distinct, false)
	stored, err := s.wh.StreamOffsets(context.Background(), s.topic)
	if err != nil || !mapsEqual(stored, offsets) {
		t.Errorf("stored offsets %v, workflow offsets %v (%v)", stored, offsets, err)
	}
	committed, err := s.acts.kafka.Committed(context.Background(), DefaultGroup, s.topic, []int32{0, 1, 2})
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
	if nq != ex.poison {
		t.Errorf("quarantine objects hold %d records, want %d", nq, ex.poison)
	}

	// A rerun of an old cycle (e.g. a zombie attempt) changes nothing.
	before := s.count(`SELECT count(*) FROM gold.events`)
	in.Offsets = startOffsets(3)
	res, err := s.cycle(in)
	if err != nil || res.Inserted != 0 || s.count(`SELECT count(*) FROM gold.events`) != before {
		t.Errorf("rerun from offset 0: inserted %d (%v)", res.Inserted, err)
	}
}

// TestCompactHours compacts closed hours, dedupes across files, leaves open
// hours alone, reopens an hour for a late file, and is idempotent.
func TestCompactHours(t *testing.T) {
	s := newStack(t, 2)
	now := time.Date(2026, 11, 24, 14, 30, 0, 0, time.UTC)
	h11 := time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)
	h14 := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	msgs, ex := mix(1500, 2, h11, 2)
	open, ex14 := mix(200, 2, h14, 3)
	msgs = append(msgs, open...)
	s.produce(msgs)
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 100, FlushWait: 50 * time.Millisecond, MaxFlushes: 5}
	offsets, _ := s.drain(startOffsets(2), in, len(msgs))
	small := s.count(`SELECT count(*) FROM pipeline.silver_objects WHERE hour = $1`, h11)
	t.Logf("hour 11: %d small files", small)

	var res CompactHoursResult
	if err := s.run(s.acts.CompactHours, CompactHoursInput{Now: now, MaxRows: 400}, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("compaction: %+v", res)
	if len(res.Hours) != 2 {
		t.Fatalf("compacted %d partition-hours, want 2 (hour 11, partitions 0 and 1)", len(res.Hours))
	}
	var dups int64
	for _, h := range res.Hours {
		if !h.Hour.Equal(h11) || h.FilesOut < 2 || h.RowsIn != h.RowsOut+h.Duplicates {
			t.Errorf("hour %+v", h)
		}
		dups += h.Duplicates
	}
	if int(res.Deleted) != int(small) {
		t.Errorf("deleted %d objects, want the %d small files", res.Deleted, small)
	}
	if got := s.count(`SELECT count(*) FROM pipeline.silver_objects WHERE hour = $1 AND state = 'live' AND rows > 400`, h11); got != 0 {
		t.Errorf("%d compacted files over MaxRows", got)
	}
	// Hour 14 is open: untouched.
	if got := s.count(`SELECT count(*) FROM pipeline.silver_objects WHERE hour = $1 AND compacted`, h14); got != 0 {
		t.Errorf("open hour compacted (%d files)", got)
	}
	s.checkLake(len(msgs), ex.distinct+ex14.distinct, false)
	if rows := s.count(`SELECT sum(rows) FROM pipeline.silver_objects WHERE hour = $1 AND state = 'live'`, h11); rows != int64(ex.distinct) {
		t.Errorf("hour 11 holds %d rows after compaction, want %d distinct", rows, ex.distinct)
	}

	// Again: nothing to do.
	res = CompactHoursResult{}
	if err := s.run(s.acts.CompactHours, CompactHoursInput{Now: now, MaxRows: 400}, &res); err != nil || len(res.Hours) != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}

	// A late event for hour 11 (and a retry of one already there) reopens it.
	late, exLate := mix(5, 2, h11, 4)
	late = append(late, msgs[0])
	s.produce(late)
	var total int64
	for _, o := range offsets {
		total += o
	}
	s.drain(offsets, in, int(total)+len(late))
	res = CompactHoursResult{}
	if err := s.run(s.acts.CompactHours, CompactHoursInput{Now: now, MaxRows: 400}, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Hours) == 0 {
		t.Fatal("late file did not reopen the hour")
	}
	if got := s.strings(`SELECT DISTINCT substring(object_key from '-(g[0-9]+)\.parquet$') FROM pipeline.silver_objects
		WHERE hour = $1 AND state = 'live' AND compacted ORDER BY 1`, h11); len(got) == 0 {
		t.Errorf("no compacted generation: %v", got)
	}
	if rows := s.count(`SELECT sum(rows) FROM pipeline.silver_objects WHERE hour = $1 AND state = 'live'`, h11); rows != int64(ex.distinct+exLate.distinct) {
		t.Errorf("hour 11 holds %d rows after the late compaction, want %d", rows, ex.distinct+exLate.distinct)
	}
	s.checkLake(len(msgs)+len(late), ex.distinct+ex14.distinct+exLate.distinct, false)

	// After the hour closes, hour 14 compacts too and silver is exact.
	res = CompactHoursResult{}
	if err := s.run(s.acts.CompactHours, CompactHoursInput{Now: h14.Add(2 * time.Hour)}, &res); err != nil {
		t.Fatal(err)
	}
	s.checkLake(len(msgs)+len(late), ex.distinct+ex14.distinct+exLate.distinct, true)
}

// TestOutages makes S3, then PostgreSQL, refuse service in the middle of the
// stream: cycles fail with errors that name what failed, and once the
// component is back the retries end with exact counts.
func TestOutages(t *testing.T) {
	s := newStack(t, 2)
	hour := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	msgs, ex := mix(2000, 2, hour, 5)
	s.produce(msgs)
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
	s.checkGold(ex)
	s.checkLake(len(msgs), ex.distinct, false)
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
