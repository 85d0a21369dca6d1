package activities

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/acme/pipeline/internal/streamtest"
)

// TestOffsetsLostToRetentionAreRecorded: records that retention deletes
// before the stream reads them (DeleteRecords on the broker, as retention
// does) are skipped, and the gap is recorded with its partition and offset
// range in pipeline.lost_offsets; the rest loads.
func TestOffsetsLostToRetentionAreRecorded(t *testing.T) {
	s := newStack(t, 1)
	ctx := context.Background()
	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	msgs, _ := streamtest.Mix(100, 1, hour, 3)
	streamtest.Produce(t, s.brokers, s.topic, msgs)

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = s.topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 40
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete records: %+v %v", resp, err)
	}

	in := CompactCycleInput{Topic: s.topic, MaxRecords: 500, FlushWait: 50 * time.Millisecond, MaxFlushes: 1}
	_, sum := s.drain(startOffsets(1), in, len(msgs))
	lost, total, err := s.wh.LostOffsets(ctx, time.Now().Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) != 1 || lost[0].Partition != 0 || lost[0].First != 0 || lost[0].Last != 39 || total != 40 {
		t.Fatalf("lost offsets %+v (total %d); want partition 0 offsets 0..39", lost, total)
	}
	if sum.Records != int64(len(msgs)-40) {
		t.Fatalf("the stream read %d records, want the %d retained", sum.Records, len(msgs)-40)
	}
	// A cycle again from the same offsets (a retry) records the gap once.
	in.Offsets = startOffsets(1)
	if _, err := s.cycle(in); err != nil {
		t.Fatal(err)
	}
	if n := s.count(`SELECT count(*) FROM pipeline.lost_offsets`); n != 1 {
		t.Fatalf("%d gaps recorded after a retry, want 1", n)
	}
}
