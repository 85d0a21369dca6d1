package activities

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/acme/pipeline/event"
)

// TestAbortedTransactionsNeverReachGold covers issue 13 item 7: another
// producer writes to the topic in transactions, some committed and some
// aborted (one at the very end of the partition). The stream reads with
// read_committed: gold and silver hold exactly the committed and plain
// events, and the stream's offsets reach the partition's end, past the
// transaction markers and the aborted records.
func TestAbortedTransactionsNeverReachGold(t *testing.T) {
	s := newStack(t, 1)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	client := func(txn string) *kgo.Client {
		opts := []kgo.Opt{kgo.SeedBrokers(s.brokers...), kgo.DefaultProduceTopic(s.topic)}
		if txn != "" {
			opts = append(opts, kgo.TransactionalID(txn))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	plain, tx := client(""), client("other-producer")

	var want, aborted []string
	send := func(cl *kgo.Client, n int, ids *[]string) {
		recs := make([]*kgo.Record, n)
		for i := range recs {
			id := uuid.NewString()
			ev := event.Event{EventID: id, Type: "page_view", OccurredAt: hour.Add(time.Duration(len(*ids)) * time.Second),
				ReceivedAt: hour.Add(time.Hour), Properties: []byte(`{"path":"/p"}`)}
			b, err := ev.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			recs[i] = &kgo.Record{Value: b}
			*ids = append(*ids, id)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	txn := func(commit kgo.TransactionEndTry, n int, ids *[]string) {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		send(tx, n, ids)
		if err := tx.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	send(plain, 20, &want)
	txn(kgo.TryAbort, 15, &aborted)
	txn(kgo.TryCommit, 10, &want)
	send(plain, 5, &want)
	txn(kgo.TryAbort, 7, &aborted)

	b, err := s.acts.kafka.Bounds(ctx, s.topic, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	end := b[0].Next
	in := CompactCycleInput{Topic: s.topic, MaxRecords: 12, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}
	offsets, sum := s.drain(startOffsets(1), in, int(end))
	if offsets[0] != end {
		t.Fatalf("the stream stopped at offset %d, the partition ends at %d", offsets[0], end)
	}
	if sum.Records != int64(len(want)) {
		t.Errorf("the stream read %d records, want the %d committed", sum.Records, len(want))
	}
	got := s.strings(`SELECT event_id::text FROM gold.events ORDER BY 1`)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("gold holds %d events, want exactly the %d committed ones", len(got), len(want))
	}
	if n := s.count(`SELECT count(*) FROM gold.events WHERE event_id = ANY($1::uuid[])`, aborted); n != 0 {
		t.Fatalf("%d events of aborted transactions reached gold", n)
	}
	if n := s.count(`SELECT count(*) FROM pipeline.stream_offsets WHERE next_offset = $1`, end); n != 1 {
		t.Fatalf("pipeline.stream_offsets is not at the end (%d)", end)
	}
	s.checkLake(len(want), len(want))

	// Every bronze object reads back as its index says (what a retry and a
	// backfill do), though ranges start or end at markers and aborted
	// records.
	starts := s.strings(`SELECT start_offset FROM pipeline.bronze_objects ORDER BY start_offset`)
	var records int
	for _, st := range starts {
		var first int64
		fmt.Sscan(st, &first)
		obj, ok, err := s.wh.BronzeAt(ctx, s.topic, 0, 0, first)
		if err != nil || !ok {
			t.Fatalf("bronze at %d: %v %v", first, ok, err)
		}
		recs, err := readBronze(ctx, s.lake, obj)
		if err != nil {
			t.Fatalf("bronze object %s offsets %d..%d: %v", obj.Key, obj.First, obj.Last, err)
		}
		records += len(recs)
	}
	if records != len(want) {
		t.Fatalf("bronze objects read back %d records, want %d", records, len(want))
	}
}
