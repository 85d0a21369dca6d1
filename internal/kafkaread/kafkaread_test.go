package kafkaread

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func startBroker(t *testing.T, topic string, partitions int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func produce(t *testing.T, brokers []string, topic string, partition int, n int) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchSize: 1000, RequiredAcks: kafka.RequireAll,
		Balancer: kafka.BalancerFunc(func(kafka.Message, ...int) int { return partition })}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint("k", i)), Value: []byte(fmt.Sprintf(`{"i":%d}`, i)),
			Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}}
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func TestReadCommit(t *testing.T) {
	ctx := context.Background()
	brokers := startBroker(t, "events", 3)
	produce(t, brokers, "events", 1, 2500)
	c, err := New(Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ps, err := c.Partitions(ctx, "events")
	if err != nil || len(ps) != 3 {
		t.Fatalf("partitions %v %v", ps, err)
	}
	bs, err := c.Bounds(ctx, "events", ps)
	if err != nil {
		t.Fatal(err)
	}
	if bs[1] != (Bounds{0, 2500}) || bs[0] != (Bounds{0, 0}) {
		t.Fatalf("bounds %v", bs)
	}

	t0 := time.Now()
	b, err := c.Read(ctx, ReadRequest{Topic: "events", Partition: 1, Offset: 100, MaxRecords: 1000, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Records) != 1000 || b.Records[0].Offset != 100 || b.Next != 1100 || b.HighWatermark != 2500 {
		t.Fatalf("read %d records from %d, next %d hwm %d", len(b.Records), b.Records[0].Offset, b.Next, b.HighWatermark)
	}
	if string(b.Records[5].Value) != `{"i":105}` || string(b.Records[5].Key) != "k105" || len(b.Records[5].Headers) != 1 {
		t.Fatalf("record %+v", b.Records[5])
	}
	t.Logf("1000 records in %v, %d fetches", time.Since(t0), b.Fetches)

	// The tail: fewer than asked, returns after the wait.
	t0 = time.Now()
	b, err = c.Read(ctx, ReadRequest{Topic: "events", Partition: 1, Offset: 2000, MaxRecords: 1000, Wait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(t0); len(b.Records) != 500 || b.Next != 2500 || el < 250*time.Millisecond || el > 2*time.Second {
		t.Fatalf("tail: %d records, next %d, took %v, %d fetches", len(b.Records), b.Next, el, b.Fetches)
	}
	t.Logf("tail read took %v, %d fetches", time.Since(t0), b.Fetches)

	// Idle partition.
	t0 = time.Now()
	b, err = c.Read(ctx, ReadRequest{Topic: "events", Partition: 0, Offset: 0, MaxRecords: 1000, Wait: 300 * time.Millisecond})
	if err != nil || len(b.Records) != 0 || b.Next != 0 {
		t.Fatalf("idle: %v %d %d", err, len(b.Records), b.Next)
	}
	t.Logf("idle read took %v, %d fetches", time.Since(t0), b.Fetches)

	// Beyond the end.
	_, err = c.Read(ctx, ReadRequest{Topic: "events", Partition: 1, Offset: 9999, MaxRecords: 10, Wait: 100 * time.Millisecond})
	var oor *OutOfRangeError
	if !errors.As(err, &oor) {
		t.Fatalf("want OutOfRangeError, got %v", err)
	}

	if err := c.Commit(ctx, "pipeline-stream", "events", map[int32]int64{1: 1100, 2: 0}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Committed(ctx, "pipeline-stream", "events", ps)
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != 1100 || got[2] != 0 {
		t.Fatalf("committed %v", got)
	}
}
