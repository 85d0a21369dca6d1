package workflows

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"go.temporal.io/sdk/testsuite"

	"github.com/acme/pipeline/activities"
	"github.com/acme/pipeline/event"
	"github.com/acme/pipeline/internal/silvertest"
	"github.com/acme/pipeline/internal/streamtest"
)

// TestBackfillWhileTheStreamLoadsLateEvents is issue 12's coexistence proof:
// the live stream (CompactCycle, as the worker runs it) keeps loading late
// events of one day while Backfills of that same day run, round after round
// with the start of the backfill moved against the traffic, with an hour
// compaction between rounds and a gold-only backfill in one of them. At the
// end every accepted event id of the day is in gold.events exactly once, in
// the live silver files exactly once, and payments exactly once and only
// for events in gold.events.
func TestBackfillWhileTheStreamLoadsLateEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("real components")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic, partitions = "events", 3
	_, brokers := streamtest.Kafka(t, topic, partitions)
	lk, s3 := streamtest.Lake(t)
	wh, dbURL := streamtest.Database(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	silverCfg := silvertest.Table(t, dbURL, s3, "datalake")
	acts, err := activities.NewStream(ctx, activities.StreamConfig{Lake: s3.LakeConfig("datalake"), Silver: silverCfg, Brokers: brokers,
		Warehouse: wh, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	bf, err := activities.NewBackfiller(activities.BackfillerConfig{Lake: lk, Store: wh, UnitRecords: 500, Silver: silverCfg})
	if err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)

	// The producer: late events of the day (unique ids, a fifth payments),
	// received now, partitioned by user.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Hash{}, BatchSize: 100,
		BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var mu sync.Mutex
	want := map[[16]byte]bool{}
	payments := map[[16]byte]bool{}
	seq := 0
	produce := func(n int) error {
		msgs := make([]kafka.Message, n)
		ids := make([][16]byte, n)
		mu.Lock()
		for i := range msgs {
			seq++
			id := uuid.Must(uuid.NewV7())
			ev := event.Event{EventID: id.String(), Type: "page_view", Source: "web", UserID: fmt.Sprintf("u-%d", seq%97),
				OccurredAt: day.Add(time.Duration(seq%(24*60)) * time.Minute), ReceivedAt: time.Now().UTC()}
			if seq%5 == 0 {
				ev.Type = "payment.succeeded"
				ev.Properties = []byte(`{"amount":"1.25","currency":"EUR"}`)
				payments[id] = true
			}
			b, err := ev.Marshal()
			if err != nil {
				mu.Unlock()
				return err
			}
			msgs[i] = kafka.Message{Key: []byte(ev.UserID), Value: b}
			ids[i] = id
		}
		mu.Unlock()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return err
		}
		mu.Lock()
		for _, id := range ids {
			want[id] = true // accepted: the write returned
		}
		mu.Unlock()
		return nil
	}

	// The stream: one flush per cycle, small, so that it interleaves with
	// the backfill's steps.
	offsets := map[int32]int64{0: 0, 1: 0, 2: 0}
	var produced atomic.Int64
	var ts testsuite.WorkflowTestSuite
	cycles := ts.NewTestActivityEnvironment()
	cycles.RegisterActivity(acts)
	sm, err := activities.NewSilverMaintainer(activities.SilverMaintainerConfig{Silver: silverCfg, Store: wh})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Close()
	cycles.RegisterActivity(sm)
	cycle := func() error {
		v, err := cycles.ExecuteActivity(acts.CompactCycle, activities.CompactCycleInput{Topic: topic, Offsets: offsets,
			MaxRecords: 150, FlushWait: 30 * time.Millisecond, MaxFlushes: 1})
		if err != nil {
			return err
		}
		var res activities.CompactCycleResult
		if err := v.Get(&res); err != nil {
			return err
		}
		offsets = res.Offsets
		return nil
	}
	drained := func() bool {
		var n int64
		for _, o := range offsets {
			n += o
		}
		return n >= produced.Load()
	}

	// Some of the day is in before the first backfill.
	if err := produce(600); err != nil {
		t.Fatal(err)
	}
	produced.Add(600)
	for range 3 {
		if err := cycle(); err != nil {
			t.Fatal(err)
		}
	}

	rounds := []struct {
		delay  time.Duration // from the start of the round's traffic to the backfill's start
		layers []string
	}{
		{150 * time.Millisecond, nil},
		{400 * time.Millisecond, nil},
		{1500 * time.Millisecond, []string{"gold"}},
		{700 * time.Millisecond, []string{"silver", "gold"}},
	}
	for i, r := range rounds {
		// Traffic before, during and after the backfill.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				default:
				}
				n := 10 + 9*(k%5)
				if err := produce(n); err != nil {
					errs <- err
					return
				}
				produced.Add(int64(n))
				time.Sleep(time.Duration(20+15*(k%4)) * time.Millisecond)
			}
		}()
		streamStop := make(chan struct{})
		go func() {
			defer wg.Done()
			for {
				select {
				case <-streamStop:
					return
				default:
				}
				if err := cycle(); err != nil {
					errs <- fmt.Errorf("stream: %w", err)
					return
				}
			}
		}()
		time.Sleep(r.delay)
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(2 * time.Minute)
		env.RegisterActivity(bf)
		env.ExecuteWorkflow(Backfill, BackfillInput{From: day.Format(time.DateOnly), To: day.Format(time.DateOnly), Layers: r.layers, Concurrency: 3})
		var res BackfillResult
		if err := env.GetWorkflowError(); err != nil {
			t.Fatalf("round %d: backfill: %v", i, err)
		}
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // traffic after the backfill too
		close(stop)
		close(streamStop)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatalf("round %d: %v", i, err)
		default:
		}
		d := res.Days[0]
		t.Logf("round %d (delay %v, layers %v): %d units, %d rows rebuilt, gold %d replaced + %d inserted, %d of later offsets kept; silver.events %d rows overwritten (snapshot %d)",
			i, r.delay, res.Layers, d.Units, d.Rows, d.GoldDeleted, d.GoldInserted, d.GoldKept, d.SilverRows, d.SilverSnap)
		if i == 1 {
			// Compact silver.events (SilverMaintenance's step), so that the
			// next rounds overwrite compacted files as well as the stream's.
			if _, err := cycles.ExecuteActivity(sm.CompactSilver, activities.CompactSilverInput{Now: time.Now().Add(2 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for !drained() {
		if err := cycle(); err != nil {
			t.Fatal(err)
		}
	}

	// Gold: exactly the accepted ids, once each.
	rows, err := wh.Pool().Query(ctx, `SELECT event_id FROM gold.events`)
	if err != nil {
		t.Fatal(err)
	}
	var id [16]byte
	got := map[[16]byte]int{}
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id]++
	}
	checkIDs(t, "gold.events", want, got)
	rows, err = wh.Pool().Query(ctx, `SELECT p.event_id, e.event_id IS NOT NULL FROM gold.payments p LEFT JOIN gold.events e USING (event_id)`)
	if err != nil {
		t.Fatal(err)
	}
	gotPay := map[[16]byte]int{}
	var inEvents bool
	for rows.Next() {
		if err := rows.Scan(&id, &inEvents); err != nil {
			t.Fatal(err)
		}
		if !inEvents {
			t.Errorf("payment %s is not in gold.events", uuid.UUID(id))
		}
		gotPay[id]++
	}
	checkIDs(t, "gold.payments", payments, gotPay)

	// silver.events, the Iceberg table every outside reader reads: exactly
	// the accepted ids, once each, however the stream's appends and the
	// backfills' overwrites interleaved.
	iceIDs := map[[16]byte]int{}
	for id, n := range silvertest.IDs(t, silverCfg) {
		iceIDs[uuid.MustParse(id)] = n
	}
	checkIDs(t, "silver.events (Iceberg)", want, iceIDs)
	silvertest.CheckSameAsGold(t, wh.Pool(), silverCfg, 0)
	if !t.Failed() {
		t.Logf("%d events accepted, %d payments; gold and silver exact", len(want), len(payments))
	}
}

// checkIDs fails unless got holds exactly the ids of want, once each.
func checkIDs(t *testing.T, what string, want map[[16]byte]bool, got map[[16]byte]int) {
	t.Helper()
	var missing, doubled, extra []string
	for _, id := range slices.SortedFunc(maps.Keys(want), func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) }) {
		switch n := got[id]; {
		case n == 0:
			missing = append(missing, uuid.UUID(id).String())
		case n > 1:
			doubled = append(doubled, fmt.Sprintf("%s×%d", uuid.UUID(id), n))
		}
	}
	for id := range got {
		if !want[id] {
			extra = append(extra, uuid.UUID(id).String())
		}
	}
	if len(missing)+len(doubled)+len(extra) > 0 {
		t.Errorf("%s: %d ids expected, %d held; %d missing %v, %d doubled %v, %d unexpected %v", what, len(want), len(got),
			len(missing), head(missing), len(doubled), head(doubled), len(extra), head(extra))
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }
