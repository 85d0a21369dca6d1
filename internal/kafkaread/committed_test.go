package kafkaread

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// txnProducer writes to one partition, in transactions when id is set.
func txnProducer(t *testing.T, brokers []string, id string) *kgo.Client {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("events"),
		kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if id != "" {
		opts = append(opts, kgo.TransactionalID(id))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func send(t *testing.T, cl *kgo.Client, values ...string) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Partition: 0, Value: []byte(v)}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func inTxn(t *testing.T, cl *kgo.Client, commit kgo.TransactionEndTry, values ...string) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	send(t, cl, values...)
	if err := cl.EndTransaction(context.Background(), commit); err != nil {
		t.Fatal(err)
	}
}

func values(b Batch) []string {
	var out []string
	for _, r := range b.Records {
		out = append(out, string(r.Value))
	}
	return out
}

// TestReadCommittedLeavesOutAbortedTransactions writes plain records and
// committed, aborted and open transactions of other producers to one
// partition, and reads it from several offsets: only committed records come
// back, and Next moves past markers and aborted records.
func TestReadCommittedLeavesOutAbortedTransactions(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, "events", 1)
	plain := txnProducer(t, brokers, "")
	tx := txnProducer(t, brokers, "tx-a")
	tx2 := txnProducer(t, brokers, "tx-b")

	send(t, plain, "p0", "p1")
	inTxn(t, tx, kgo.TryAbort, "a0", "a1", "a2")
	inTxn(t, tx, kgo.TryCommit, "c0", "c1")
	send(t, plain, "p2")
	inTxn(t, tx2, kgo.TryAbort, "b0")
	inTxn(t, tx, kgo.TryAbort, "z0", "z1") // the partition ends with an aborted transaction

	c, err := New(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	end, err := c.Bounds(ctx, "events", []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	hwm := end[0].Next
	all, err := c.Read(ctx, ReadRequest{Topic: "events", Partition: 0, Offset: 0, MaxRecords: 100, Wait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"p0", "p1", "c0", "c1", "p2"}
	if got := values(all); !slices.Equal(got, want) || all.Next != hwm {
		t.Fatalf("read %v, next %d (high watermark %d); want %v and next at the end", got, all.Next, hwm, want)
	}
	offsetOf := map[string]int64{}
	for _, r := range all.Records {
		offsetOf[string(r.Value)] = r.Offset
	}

	tests := []struct {
		name string
		from int64
		max  int
		want []string
		next int64 // -1: the high watermark
	}{
		{"from the first record", 0, 100, want, -1},
		{"stops at MaxRecords", 0, 3, []string{"p0", "p1", "c0"}, offsetOf["c0"] + 1},
		{"from inside the aborted transaction", offsetOf["p1"] + 2, 100, []string{"c0", "c1", "p2"}, -1},
		{"from the committed transaction's second record", offsetOf["c1"], 100, []string{"c1", "p2"}, -1},
		{"only aborted records and markers left", offsetOf["p2"] + 1, 100, nil, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := c.Read(ctx, ReadRequest{Topic: "events", Partition: 0, Offset: tt.from, MaxRecords: tt.max, Wait: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			next := tt.next
			if next < 0 {
				next = hwm
			}
			if got := values(b); !slices.Equal(got, tt.want) || b.Next != next {
				t.Fatalf("read %v next %d; want %v next %d", got, b.Next, tt.want, next)
			}
		})
	}

	// An open transaction holds the read at the last stable offset until it
	// commits.
	if err := tx2.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	send(t, tx2, "o0")
	send(t, plain, "p3")
	b, err := c.Read(ctx, ReadRequest{Topic: "events", Partition: 0, Offset: hwm, MaxRecords: 100, Wait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 0 || b.Next != hwm {
		t.Fatalf("read %v next %d past an open transaction at %d", values(b), b.Next, hwm)
	}
	if err := tx2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	b, err = c.Read(ctx, ReadRequest{Topic: "events", Partition: 0, Offset: hwm, MaxRecords: 100, Wait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(values(b)); got != "[o0 p3]" {
		t.Fatalf("after the commit read %s", got)
	}
}
